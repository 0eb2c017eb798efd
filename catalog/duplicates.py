"""Duplicates for the suspect finder (catalog.suspects): pairs of rows holding the same picture, re-encoded or
resized, judged by their perceptual hashes and their vectors, and joined into clusters of copies (the
connected pairs), so four copies of one picture are one suspect, not six pairs.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count

from .models import CatalogImage
from .phash import hamming

# Duplicates: a pair is kept when its vectors are this close (cosine) or its 64-bit perceptual hashes differ
# in at most this many bits. The hash is the stronger witness of "the same picture": a copy scaled down
# to 60 % keeps its hash (0-2 bits) while its vector may move by 0.1-0.2, as much as a similar photo's.
DUPLICATE_MAX_DISTANCE = 0.10
DUPLICATE_MAX_BITS = 10
# Scoring: closeness falls linearly to 0 at these, and the hash weighs HASH_WEIGHT of the score.
SCORE_DISTANCE = 0.25
SCORE_BITS = 16
HASH_WEIGHT = 0.6
# Images sharing one hash are paired only in groups up to this size: a bigger group is a degenerate hash
# (blank or uniform pictures), not one picture stored many times.
MAX_HASH_GROUP = 20


@dataclass
class DuplicatePair:
    image_id: int  # the lower id
    other_id: int
    distance: float | None = None
    bits: int | None = None

    @property
    def score(self):
        """1 for the same pixels, falling as the hashes and the vectors drift apart (each in [0, 1])."""
        near_vector = None if self.distance is None else max(0.0, 1.0 - self.distance / SCORE_DISTANCE)
        near_hash = None if self.bits is None else max(0.0, 1.0 - self.bits / SCORE_BITS)
        if near_hash is None or near_vector is None:
            return near_vector if near_hash is None else near_hash
        return HASH_WEIGHT * near_hash + (1.0 - HASH_WEIGHT) * near_vector


def _is_duplicate(pair):
    return (pair.distance is not None and pair.distance <= DUPLICATE_MAX_DISTANCE) or (
        pair.bits is not None and pair.bits <= DUPLICATE_MAX_BITS
    )


class DuplicatePairs:
    """Duplicate pairs among the kNN rows (add, one at a time: a pair is judged as it comes and only
    duplicates are kept) and the groups of equal perceptual hashes (pairs), either signal enough."""

    def __init__(self):
        self.hashes = dict(CatalogImage.objects.searchable().exclude(phash="").values_list("id", "phash"))
        self.found = {}

    def _bits(self, key):
        if key[0] in self.hashes and key[1] in self.hashes:
            return hamming(self.hashes[key[0]], self.hashes[key[1]])
        return None

    def add(self, row):
        """Judge one Neighbour row's pair: its distance, and its hashes' bits."""
        key = (min(row.image_id, row.other_id), max(row.image_id, row.other_id))
        pair = DuplicatePair(*key, distance=float(row.distance), bits=self._bits(key))
        if _is_duplicate(pair):
            self.found[key] = pair

    def pairs(self):
        """Every duplicate pair: the kNN ones, and equal hashes completed with their vectors' distance."""
        hashed = {}
        for ids in _equal_phash_groups():
            if len(ids) > MAX_HASH_GROUP:
                continue
            for i, a in enumerate(ids):
                for b in ids[i + 1 :]:
                    if (a, b) not in self.found:
                        hashed[(a, b)] = DuplicatePair(a, b, bits=self._bits((a, b)))
        for key, distance in _pair_distances(list(hashed)).items():
            hashed[key].distance = distance
        self.found.update((key, pair) for key, pair in hashed.items() if _is_duplicate(pair))
        return list(self.found.values())


def _equal_phash_groups():
    searchable = CatalogImage.objects.searchable().exclude(phash="")
    repeated = (
        searchable.values("phash").annotate(n=Count("id")).filter(n__gt=1).values_list("phash", flat=True)
    )
    groups = defaultdict(list)
    for image_id, value in searchable.filter(phash__in=repeated).order_by("id").values_list("id", "phash"):
        groups[value].append(image_id)
    return groups.values()


def _pair_distances(keys):
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, b.id, a.embedding <=> b.embedding FROM catalog_catalogimage a, catalog_catalogimage b,"
            " unnest(%s::bigint[], %s::bigint[]) AS k(x, y) WHERE a.id = k.x AND b.id = k.y"
            " AND a.embedding IS NOT NULL AND b.embedding IS NOT NULL",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )
        return {(a, b): float(d) for a, b, d in cursor.fetchall()}


@dataclass
class DuplicateCluster:
    """Copies of one picture: the duplicate pairs that connect them."""

    pairs: list

    @property
    def image_ids(self):
        return sorted({i for pair in self.pairs for i in (pair.image_id, pair.other_id)})

    @property
    def score(self):
        return max(pair.score for pair in self.pairs)

    def reason(self, class_labels):
        """In words, with the classes the copies are filed under when they differ (class_labels: image id ->
        label)."""
        ids = self.image_ids
        labels = sorted({class_labels[i] for i in ids})
        where = f", in {' and '.join(labels)}" if len(labels) > 1 else ""
        return f"the same picture stored {len(ids)} times{where}"

    @property
    def detail(self):
        """The measures behind the reason: how far apart the closest-judged copies are."""
        bits = [p.bits for p in self.pairs if p.bits is not None]
        distances = [p.distance for p in self.pairs if p.distance is not None]
        parts = []
        if bits:
            parts.append(f"perceptual hashes {_spread(bits, '{}')} bits apart")
        if distances:
            parts.append(f"embedding distance {_spread(distances, '{:.3f}')}")
        return "; ".join(parts)


def _spread(values, template):
    low, high = template.format(min(values)), template.format(max(values))
    return low if low == high else f"{low}-{high}"


def clusters_of(pairs):
    """The connected components of the duplicate pairs, as DuplicateClusters, largest score first."""
    parent = {}

    def root(i):
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]  # halve the path, so long chains stay cheap
            i = parent[i]
        return i

    for pair in pairs:
        parent[root(pair.other_id)] = root(pair.image_id)
    grouped = defaultdict(list)
    for pair in pairs:
        grouped[root(pair.image_id)].append(pair)
    return sorted((DuplicateCluster(group) for group in grouped.values()), key=lambda c: -c.score)
