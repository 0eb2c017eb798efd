"""The suspect finder: images a curator should look at, scored so the worst come first.

Two kinds, both computed over searchable images (excluded ones are already dealt with):

- outliers: an image far from the rest of its class (cosine distance to the class centroid, as a robust
  z-score within the class: median and MAD, so one bad image does not hide another), or whose nearest
  neighbours in the whole catalog belong to other classes (the wrong article's picture looks like the
  class it really shows);
- duplicates: rows holding the same picture, re-encoded or resized, within or across classes: pairs with
  close embeddings (found through the HNSW index) or equal/close perceptual hashes, joined into clusters
  (the connected pairs: four copies of one picture are one cluster of four, not six pairs; catalog.duplicates).

The result is stored as Suspect rows so the admin sorts and filters without recomputing; a curator's
"this is fine" (Suspect.dismissed_at) survives a re-run.
"""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import Count

from .duplicates import DuplicatePairs, clusters_of
from .embedding import EMBEDDING_DIM
from .imagefile import ImageError, open_image
from .models import (
    CatalogImage,
    Suspect,
    SuspectSearch,
    VectorBytes,
    WikidataClass,
    hnsw_scan,
    searchable_q,
    searchable_sql,
)
from .progress import no_progress
from .store import perceptual_hash

log = logging.getLogger(__name__)

NEIGHBOURS = 10  # k of the kNN label vote and of the duplicate candidates
MIN_CLASS_SIZE = 5  # below this a class has no "rest" to be far from
# Outliers: a score is half the kNN vote (share of foreign neighbours), half the centroid z-score squashed
# into [0, 1) (z / (z + Z_HALF): Z_HALF counts one half), so the far-out keep their order instead of tying.
Z_HALF = 3.0
OUTLIER_MIN_SCORE = 0.25


# -- perceptual hashes ---------------------------------------------------------------------------------


def backfill_phashes(queryset=None, progress=no_progress):
    """Compute the perceptual hash of images stored before it existed; returns (done, failed)."""
    if queryset is None:  # an empty queryset means no images, not all of them
        queryset = CatalogImage.objects.all()
    queryset = queryset.filter(phash="").only("id", "file")
    done = failed = 0
    rows = queryset.iterator(chunk_size=200)
    for image in progress(rows):
        try:
            with image.file.open("rb") as f:
                value = perceptual_hash(open_image(f.read()))
        except (OSError, ImageError) as exc:
            log.warning("phash of image %s: %s", image.pk, exc)
            failed += 1
            continue
        CatalogImage.objects.filter(pk=image.pk).update(phash=value)
        done += 1
    return done, failed


# -- nearest neighbours ----------------------------------------------------------------------------------


def neighbours_sql(k, after, upto):
    """For every searchable image with after < id <= upto, its k nearest searchable neighbours by cosine
    distance: (sql, params). "Searchable" is models.searchable_sql(), the same rule as search's.

    The inner ORDER BY ... LIMIT is what the HNSW index (image_embedding_hnsw) answers, one index scan per
    image. The index is on the halfvec cast of embedding (models.half_embedding), so the ORDER BY must be
    that very expression; the distance returned is the full-precision one, computed for the k rows only.
    """
    image_searchable, image_params = searchable_sql("a")
    other_searchable, other_params = searchable_sql("b")
    sql = f"""
SELECT a.id, a.wikidata_class_id, n.id, n.wikidata_class_id, n.distance
FROM catalog_catalogimage a
CROSS JOIN LATERAL (
    SELECT b.id, b.wikidata_class_id, b.embedding <=> a.embedding AS distance
    FROM catalog_catalogimage b
    WHERE b.id <> a.id AND {other_searchable}
    ORDER BY b.embedding::halfvec({EMBEDDING_DIM}) <=> a.embedding::halfvec({EMBEDDING_DIM})
    LIMIT %s
) n
WHERE {image_searchable} AND a.id > %s AND a.id <= %s
"""
    return sql, [*other_params, k, *image_params, after, upto]


@dataclass(frozen=True)
class Neighbour:
    image_id: int
    class_id: int
    other_id: int
    other_class_id: int
    distance: float


def neighbours(k=NEIGHBOURS, chunk=500):
    """Yield Neighbour rows for every searchable image, in chunks of ids so memory stays flat."""
    ids = list(CatalogImage.objects.searchable().order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        sql, params = neighbours_sql(k, part[0] - 1, part[-1])
        # The search's own index settings: each inner ORDER BY ... LIMIT k is an HNSW scan that gets k rows.
        with hnsw_scan(k), connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        # Nearest first within each image: the relaxed-order index scan may hand rows back slightly unsorted.
        rows.sort(key=lambda row: (row[0], row[4]))
        for row in rows:
            yield Neighbour(*row)


# -- outliers ----------------------------------------------------------------------------------------------


@dataclass
class OutlierScore:
    image_id: int
    class_id: int
    z: float = 0.0
    foreign: int = 0  # neighbours in another class
    voted: int = 0  # neighbours seen
    foreign_classes: Counter = None

    @property
    def suggested_class(self):
        """The class most of its neighbours are in, when that is most of them; else None."""
        if not self.foreign:
            return None
        class_id, count = self.foreign_classes.most_common(1)[0]
        return class_id if count * 2 > self.voted else None

    @property
    def score(self):
        vote = self.foreign / self.voted if self.voted else 0.0
        z = max(self.z, 0.0)
        return 0.5 * vote + 0.5 * z / (z + Z_HALF)


def centroid_zscores(class_id):
    """{image id: robust z-score of its cosine distance to its class centroid} for one class."""
    rows = list(
        CatalogImage.objects.searchable()
        .filter(wikidata_class_id=class_id)
        .order_by()
        .values_list("id", VectorBytes("embedding"))
    )
    if len(rows) < MIN_CLASS_SIZE:
        return {}
    ids = [row[0] for row in rows]
    # pgvector's binary form: parsing the text form into Python floats costs about 1 ms a vector.
    vectors = np.stack([VectorBytes.to_array(row[1]) for row in rows])
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    distance = 1.0 - vectors @ centroid
    median = np.median(distance)
    # 1.4826 * MAD estimates a standard deviation that a few outliers cannot inflate.
    spread = 1.4826 * np.median(np.abs(distance - median)) or 1e-6
    return dict(zip(ids, ((distance - median) / spread).tolist(), strict=True))


class OutlierScores:
    """OutlierScore per searchable image, from centroid z-scores and the kNN label vote: the z-scores at
    once, the vote one neighbour row at a time (add), so the rows never need to be held."""

    def __init__(self):
        self.scores = {}
        self.class_sizes = dict(
            WikidataClass.objects.annotate(n=Count("images", filter=searchable_q("images__")))
            .filter(n__gte=MIN_CLASS_SIZE)
            .values_list("id", "n")
        )
        for class_id in self.class_sizes:
            for image_id, z in centroid_zscores(class_id).items():
                self.scores[image_id] = OutlierScore(image_id, class_id, z=z, foreign_classes=Counter())

    def add(self, row):
        """Count one Neighbour row; an image's rows come nearest first."""
        entry = self.scores.get(row.image_id)
        if entry is None:
            return  # its class is too small to judge
        # A class of n images can fill only n - 1 places: later neighbours are foreign by necessity.
        if entry.voted >= self.class_sizes[row.class_id] - 1:
            return
        entry.voted += 1
        if row.other_class_id != row.class_id:
            entry.foreign += 1
            entry.foreign_classes[row.other_class_id] += 1


# A z-score past this is "far from the other pictures" in words (about 1 picture in 700 of a normal class).
FAR_Z = 3.0


def outlier_reason(entry, labels, class_id):
    """Why an image is an outlier, in words a curator reads at a glance: the strongest sign alone (the
    detail line has every measure)."""
    own = labels.get(class_id, class_id)
    if entry.suggested_class:
        return f"looks more like {labels.get(entry.suggested_class)} than like its own class ({own})"
    if entry.voted and entry.foreign * 2 > entry.voted:
        return f"its closest pictures are mostly of other classes than {own}"
    if entry.z >= FAR_Z:
        return f"far from the other pictures of {own}"
    return f"a little unlike the other pictures of {own}"


def outlier_detail(entry, labels):
    """The measures behind outlier_reason."""
    parts = [f"distance to class centre: robust z {entry.z:.1f}"]
    if entry.foreign:
        top_class, _ = entry.foreign_classes.most_common(1)[0]
        parts.append(
            f"{entry.foreign} of {entry.voted} nearest neighbours in other classes "
            f"(mostly {labels.get(top_class, top_class)!r})"
        )
    return "; ".join(parts)


# -- storing -------------------------------------------------------------------------------------------------


@dataclass
class SuspectSummary:
    outliers: int = 0
    duplicates: int = 0
    phashes: int = 0

    def __str__(self):
        return (
            f"{self.outliers} outliers, {self.duplicates} duplicate clusters "
            f"({self.phashes} perceptual hashes computed)"
        )


def find_suspects(k=NEIGHBOURS):
    """Recompute every suspect and store them; dismissed ones stay dismissed. Returns a SuspectSummary."""
    summary = SuspectSummary()
    summary.phashes, _ = backfill_phashes()
    scores, duplicate_finder = OutlierScores(), DuplicatePairs()
    # One pass over the neighbour rows, never held: about k rows for each of a million pictures.
    for row in neighbours(k):
        scores.add(row)
        duplicate_finder.add(row)
    outliers = outlier_suspects(scores)
    duplicates = duplicate_suspects(clusters_of(duplicate_finder.pairs()))
    with transaction.atomic():
        Suspect.objects.filter(dismissed_at__isnull=True).delete()
        stored = store_suspects(outliers + duplicates)
        summary.outliers = sum(1 for s in stored if s.kind == Suspect.Kind.OUTLIER)
        summary.duplicates = len(stored) - summary.outliers
        SuspectSearch.objects.create(summary=str(summary))
    return summary


def outlier_suspects(scores):
    """(Suspect, its member ids) for every image scored past OUTLIER_MIN_SCORE."""
    labels = dict(WikidataClass.objects.values_list("id", "label"))
    return [
        (
            Suspect(
                kind=Suspect.Kind.OUTLIER,
                image_id=e.image_id,
                score=e.score,
                reason=outlier_reason(e, labels, e.class_id),
                detail=outlier_detail(e, labels),
                suggested_class_id=e.suggested_class,
            ),
            [e.image_id],
        )
        for e in scores.scores.values()
        if e.score >= OUTLIER_MIN_SCORE
    ]


def duplicate_suspects(clusters):
    """(Suspect, its member ids) for every cluster of copies."""
    ids = [i for cluster in clusters for i in cluster.image_ids]
    class_labels = dict(CatalogImage.objects.filter(pk__in=ids).values_list("id", "wikidata_class__label"))
    return [
        (
            Suspect(
                kind=Suspect.Kind.DUPLICATE,
                image_id=cluster.image_ids[0],
                score=cluster.score,
                reason=cluster.reason(class_labels),
                detail=cluster.detail,
            ),
            cluster.image_ids,
        )
        for cluster in clusters
    ]


def store_suspects(found):
    """Store (Suspect, member ids) pairs but those a curator dismissed already; returns the stored ones.

    A dismissed suspect covers the same outlier, or a cluster within its members ("these are not copies").
    A cluster that grew past a dismissed one (a new copy arrived) is asked again, and replaces it.
    """
    dismissed = defaultdict(list)
    for suspect in Suspect.objects.filter(dismissed_at__isnull=False).prefetch_related("members"):
        dismissed[suspect.kind].append((suspect.pk, {m.pk for m in suspect.members.all()}))
    fresh, replaced = [], set()
    for suspect, members in found:
        overlapping = [(pk, old) for pk, old in dismissed[suspect.kind] if old & set(members)]
        if any(set(members) <= old for _, old in overlapping):
            continue
        replaced.update(pk for pk, _ in overlapping)
        fresh.append((suspect, members))
    Suspect.objects.filter(pk__in=replaced).delete()
    stored = Suspect.objects.bulk_create([suspect for suspect, _ in fresh], batch_size=1000)
    Suspect.members.through.objects.bulk_create(
        [
            Suspect.members.through(suspect_id=suspect.pk, catalogimage_id=image_id)
            for suspect, members in zip(stored, (m for _, m in fresh), strict=True)
            for image_id in members
        ],
        batch_size=5000,
    )
    return stored
