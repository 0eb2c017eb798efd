"""The catalog: Wikidata classes and the images that stand for them, each with its embedding."""

from contextlib import contextmanager
from urllib.parse import quote

import numpy as np
from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.indexes import OpClass
from django.db import connections, models, transaction
from django.db.models import Case, Count, F, Func, Q, Subquery, Sum, Value, When
from django.db.models.functions import Cast, JSONObject, Lower
from pgvector import HalfVector
from pgvector.django import CosineDistance, HalfVectorField, HnswIndex, VectorField

from .embedding import EMBEDDING_DIM, MODEL_NAME, MODEL_VERSION
from .weburl import WebURLValidator, web_url_or_none

# What MediaWiki leaves readable in the links it writes (wfUrlencode): everything else in a title, ? # % "
# and non-ASCII letters among it, is percent-encoded as UTF-8, so that the whole title stays the path.
WIKI_PATH_SAFE = "/:;@$!*(),~"


def wiki_path(title):
    """A page title as the path of its /wiki/ address: spaces become underscores, as in MediaWiki's links."""
    return quote(title.replace(" ", "_"), safe=WIKI_PATH_SAFE)


class WikidataClassQuerySet(models.QuerySet):
    def with_image_counts(self):
        """These classes, each with image_count: how many of its images are searchable (searchable_q())."""
        return self.annotate(image_count=Count("images", filter=searchable_q("images__")))

    def in_catalog(self):
        """Classes with at least one searchable image, each with image_count: those the pages show."""
        return self.with_image_counts().filter(image_count__gt=0)

    def with_cover(self):
        """These classes, each with cover_id: the id of the searchable image that stands for it, its
        main image (P18) when that one is searchable, else its first searchable image; None: it has none."""
        own_images = CatalogImage.objects.searchable().filter(wikidata_class=models.OuterRef("pk"))
        is_other = models.Case(models.When(pk=models.OuterRef("main_image"), then=0), default=1)
        cover = own_images.annotate(is_other=is_other).order_by("is_other", "id").values("pk")[:1]
        return self.annotate(cover_id=Subquery(cover))

    def alphabetical(self):
        """By label as people read it, ignoring case (the database's own collation puts every capital
        first); ties in the order of their creation."""
        return self.order_by(Lower("label"), "label", "id")

    def stale_statistics(self):
        """The one rule of stale class statistics: classes whose stored ClassStatistics are not those of their
        searchable images now (a row computed from other images, a row while they have none, no row while
        they have some). Each comes with current_fingerprint, that of its searchable images (None: none).

        catalog.classstats.stats_of applies the same comparison to the one row it reads.
        """
        current = CatalogImage.objects.searchable().class_fingerprint(models.OuterRef("pk"))
        stored = F("statistics__fingerprint")
        return self.annotate(current_fingerprint=current).filter(
            Q(statistics__isnull=True, current_fingerprint__isnull=False)
            | Q(statistics__isnull=False, current_fingerprint__isnull=True)
            # Both there and different: one of the two holds (either is false when a side is null).
            | Q(current_fingerprint__lt=stored)
            | Q(current_fingerprint__gt=stored)
        )


class WikidataClass(models.Model):
    """A class of things (what Wikidata items are an "instance of", P31): cat, lighthouse, espresso."""

    qid = models.CharField("QID", max_length=20, unique=True, null=True, blank=True)
    label = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    enwiki_title = models.CharField("English Wikipedia title", max_length=255, blank=True)
    instance_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Items that are instances of it"
    )
    main_image = models.ForeignKey(
        "CatalogImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Which revision of the item the crawl last read: upkeep re-crawls the class once Wikidata has another.
    wikidata_revision = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The item's revision (lastrevid) when last crawled"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WikidataClassQuerySet.as_manager()

    class Meta:
        verbose_name = "Wikidata class"
        verbose_name_plural = "Wikidata classes"
        ordering = ["label"]
        constraints = [
            # Classes imported from a local folder have no QID: their label is their natural key.
            models.UniqueConstraint(
                fields=["label"], condition=Q(qid__isnull=True), name="class_label_unique_without_qid"
            ),
        ]

    def __str__(self):
        return f"{self.label} ({self.qid})" if self.qid else self.label

    @property
    def wikidata_url(self):
        return f"https://www.wikidata.org/wiki/{wiki_path(self.qid)}" if self.qid else None

    @property
    def wikipedia_url(self):
        return f"https://en.wikipedia.org/wiki/{wiki_path(self.enwiki_title)}" if self.enwiki_title else None


def _epoch(field):
    return Func(F(field), template="extract(epoch from %(expressions)s)", output_field=models.DecimalField())


def fingerprint_of():
    """The aggregate behind CatalogImageQuerySet.fingerprint(), also usable in a subquery.

    Count and sum of ids change when an image comes or goes; the (exact, numeric) sums of the change and
    embedding times change whenever any one image is saved, curated or re-embedded, since its own time only
    grows. Unlike a maximum, a sum also moves when a late commit carries an earlier timestamp.
    """
    parts = [Count("id"), Sum("id"), Sum(_epoch("updated_at")), Sum(_epoch("embedded_at"))]
    return Func(*parts, template="concat_ws(':', %(expressions)s)", output_field=models.TextField())


class VectorBytes(Func):
    """A vector column in pgvector's binary form (big-endian int16 dimensions, int16 unused, float4s)."""

    function = "vector_send"
    output_field = models.BinaryField()

    @staticmethod
    def to_array(data):
        return np.frombuffer(data, dtype=">f4", offset=4).astype(np.float32)


def half_embedding():
    """The embedding cast to halfvec: the expression the HNSW index is built on, so the one to order by.

    The column keeps full precision (statistics, centroids, exports read it); only the index holds 16-bit
    floats, which halves its size at no loss of recall (README "Search at scale").
    """
    return Cast("embedding", HalfVectorField(dimensions=EMBEDDING_DIM))


def half_distance(vector):
    """Cosine distance from half_embedding() to vector (a sequence of floats) cast to halfvec too: the
    ORDER BY the index answers. Measured at most 3.2e-5 from the full-precision distance (unit vectors)."""
    query = Value(HalfVector(list(map(float, vector))).to_text())
    return CosineDistance(half_embedding(), Cast(query, HalfVectorField(dimensions=EMBEDDING_DIM)))


def _related(prefix, **lookups):
    return Q(**{prefix + name: value for name, value in lookups.items()})


def searchable_q(prefix=""):
    """The one rule of what search may return: an image not excluded by a curator, and embedded.

    A Q on CatalogImage, or across a relation to it with prefix (e.g. "images__" from WikidataClass, for a
    Count's filter). CatalogImageQuerySet.searchable() filters on it; searchable_sql() compiles it for raw SQL.
    """
    return _related(prefix, embedding__isnull=False) & ~_related(prefix, status=CatalogImage.Status.EXCLUDED)


def searchable_sql(alias, using="default"):
    """searchable_q() as a raw SQL condition on the catalog_catalogimage row named alias: (sql, params).

    Compiled from the very Q, for the queries the ORM cannot write (catalog.suspects' lateral join).
    """
    query = CatalogImage.objects.filter(searchable_q()).query
    where = query.where.relabeled_clone({CatalogImage._meta.db_table: alias})
    return where.as_sql(query.get_compiler(using), connections[using])


def stale_q(prefix=""):
    """The one rule of a stale embedding: a vector made by another model (or version) than the current one."""
    current = _related(prefix, embedding_model=MODEL_NAME, embedding_version=MODEL_VERSION)
    return _related(prefix, embedding__isnull=False) & ~current


class CatalogImageQuerySet(models.QuerySet):
    def searchable(self):
        """Images search may return (searchable_q())."""
        return self.filter(searchable_q())

    def needing_embedding(self):
        """Images with no vector, or a stale one (stale_q())."""
        return self.filter(Q(embedding__isnull=True) | stale_q())

    def stale(self):
        return self.filter(stale_q())

    def stored_hashes(self, sha256s):
        """The set of these content hashes (SHA-256) the catalog holds, in one query."""
        return set(self.filter(sha256__in=sha256s).values_list("sha256", flat=True))

    def credits(self):
        """In one query: how many of these images (pictures), of how many classes, and their distinct
        sources, each a dict of name, license and license_url. A picture crawled from Commons has the source
        COMMONS whatever its own licence (each card shows that); an imported one is named by its attribution
        ("" when none was given) under its licence."""
        from_commons = Q(origin__in=COMMONS_ORIGINS)

        def unless_from_commons(value, field):
            return Case(
                When(from_commons, then=Value(value)), default=F(field), output_field=models.TextField()
            )

        source = JSONObject(
            name=unless_from_commons(COMMONS, "attribution"),
            license=unless_from_commons("", "license"),
            license_url=unless_from_commons("", "license_url"),
        )
        return self.aggregate(
            pictures=Count("id"),
            classes=Count("wikidata_class", distinct=True),
            sources=ArrayAgg(source, distinct=True, default=Value([])),
        )

    def unlicensed_imports(self):
        """Pictures of a local import stored with no licence and no credit: the ones a later import of
        their folder, told the licence, may complete (anything already stated is never overwritten)."""
        return self.filter(origin=CatalogImage.Origin.LOCAL, license="", license_url="", attribution="")

    def fingerprint(self):
        """A text that changes after any add, removal, move, curation or re-embedding of these images, so it
        can key what is computed from them (catalog.classstats). See fingerprint_of()."""
        return self.order_by().aggregate(fingerprint=fingerprint_of())["fingerprint"]

    def class_fingerprint(self, class_ref):
        """The fingerprint() of these images in one class, as a subquery for annotate(): class_ref is an
        OuterRef to a class id, so a row and its class's current fingerprint come in one query."""
        images = (
            self.filter(wikidata_class=class_ref)
            .order_by()
            .values("wikidata_class")
            .annotate(fingerprint=fingerprint_of())
        )
        return Subquery(images.values("fingerprint"))

    def vectors(self):
        """These images' embeddings as one (n, EMBEDDING_DIM) float32 array, in id order.

        Read in pgvector's binary form: parsing the text form into Python floats costs about 1 ms a vector.
        """
        rows = self.order_by("id").values_list(VectorBytes("embedding"), flat=True)
        vectors = np.empty((len(rows), EMBEDDING_DIM), dtype=np.float32)
        for i, data in enumerate(rows):
            vectors[i] = VectorBytes.to_array(data)
        return vectors

    def nearest(self, vector, k=10):
        """The k searchable images closest to vector, nearest first, each with .distance (cosine).

        Runs at once (a list, not a lazy QuerySet) because the HNSW scan needs per-transaction settings;
        chain select_related/defer before it.
        """
        with hnsw_scan(k, self.db):
            images = list(self.nearest_query(vector, k))
        # A relaxed-order scan may hand rows back slightly out of order: put them right.
        return sorted(images, key=lambda image: image.distance)

    def nearest_query(self, vector, k=10):
        """The SQL behind nearest(), left lazy for EXPLAIN; evaluate it inside hnsw_scan(k)."""
        # Ordered by the halfvec distance the index answers; the distance handed back is the full-precision
        # one, computed for the k rows only.
        return (
            self.searchable()
            .annotate(distance=CosineDistance("embedding", list(map(float, vector))))
            .order_by(half_distance(vector))[:k]
        )


# pgvector's largest hnsw.ef_search.
MAX_EF_SEARCH = 1000


@contextmanager
def hnsw_scan(k, using="default"):
    """A transaction in which the nearest-neighbour query uses the HNSW index and gets its k rows.

    - ef_search: settings.REVIMG_HNSW_EF_SEARCH, read per query (big catalogs need more), and at least k: the
      index returns at most ef_search rows.
    - iterative_scan: without it the index yields ef_search candidates and the WHERE clause then drops the
      excluded ones, so a query could return fewer than k rows. relaxed_order keeps scanning until k rows
      pass the filter, for a slightly unordered stream that nearest() sorts again.
    - enable_sort off: the planner does not count the cost of reading each 5 kB vector out of TOAST and
      comparing it, so on a catalog of a few thousand images it prefers reading every row and sorting
      them by distance, measured 30x slower than the index (31 ms against 0.8 ms for 3,000 images). The
      index is the one plan that needs no sort.

    For reading only: the block is rolled back on exit (a savepoint when the caller is already in a
    transaction), so these settings never outlive it.
    """
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true),"
            " set_config('enable_sort', 'off', true)",
            [
                str(min(MAX_EF_SEARCH, max(int(k), settings.REVIMG_HNSW_EF_SEARCH))),
                "relaxed_order",
            ],
        )
        yield
        transaction.set_rollback(True, using=using)


# The media folders the two upload paths below write into; catalog.sweep removes orphans in these only.
IMAGES_FOLDER = "images"
THUMBS_FOLDER = "thumbs"


def image_upload_path(instance, filename):
    # Files are named by content hash: the same picture is stored once, and names never collide.
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "jpg"
    return f"{IMAGES_FOLDER}/{instance.sha256[:2]}/{instance.sha256}.{ext}"


def thumbnail_upload_path(instance, filename):
    return f"{THUMBS_FOLDER}/{instance.sha256[:2]}/{instance.sha256}.jpg"


class CatalogImage(models.Model):
    class Origin(models.TextChoices):
        WIKIDATA_P18 = "p18", "Wikidata image (P18)"
        WIKIPEDIA = "wikipedia", "Wikipedia article"
        INSTANCE_P18 = "instance", "Image of an instance (gallery)"
        LOCAL = "local", "Local import"
        UPLOAD = "upload", "Upload"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FLAGGED = "flagged", "Flagged for review"
        EXCLUDED = "excluded", "Excluded"

    wikidata_class = models.ForeignKey(WikidataClass, on_delete=models.CASCADE, related_name="images")
    file = models.ImageField(upload_to=image_upload_path, width_field="width", height_field="height")
    thumbnail = models.ImageField(upload_to=thumbnail_upload_path, blank=True)
    sha256 = models.CharField("content hash (SHA-256)", max_length=64, unique=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices)
    origin_detail = models.CharField(
        max_length=255, blank=True, help_text="Where it came from: a file path, or the QID of the instance"
    )

    # Untrusted text from crawls and imports, shown as links: http(s) only (catalog.weburl).
    source_url = models.URLField(max_length=1000, blank=True, validators=[WebURLValidator()])
    commons_file = models.CharField("Commons file name", max_length=255, blank=True)
    license = models.CharField(max_length=100, blank=True)
    license_url = models.URLField(max_length=500, blank=True, validators=[WebURLValidator()])
    artist = models.TextField(blank=True)
    attribution = models.TextField(blank=True)
    attribution_required = models.BooleanField(null=True, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True)

    embedding = VectorField(dimensions=EMBEDDING_DIM, null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=64, blank=True)
    embedding_version = models.CharField(max_length=64, blank=True)
    embedded_at = models.DateTimeField(null=True, blank=True)
    # 64-bit perceptual hash (imagehash.phash) as 16 hex digits: equal or close for the same picture
    # re-encoded or resized. Indexed for the duplicate finder's exact-match grouping.
    phash = models.CharField("perceptual hash", max_length=16, blank=True, db_index=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CatalogImageQuerySet.as_manager()

    class Meta:
        # No default ordering: it would join the class and sort on every lookup. Lists order explicitly.
        indexes = [
            # Used by CatalogImageQuerySet.nearest(): approximate cosine nearest neighbours.
            # m=24, ef_construction=100: at 1M grown dev-set vectors, recall@10 0.952 at p50 5 ms with
            # ef_search 400, which m=16/64 never reached (0.921 at best); same index size, 24% longer
            # build (bench/search_scale.py, README "Search at scale"). On the halfvec cast of the column
            # (half_embedding()): half the size of a vector index, equal or better recall and latency there.
            HnswIndex(
                OpClass(half_embedding(), name="halfvec_cosine_ops"),
                name="image_embedding_hnsw",
                m=24,
                ef_construction=100,
            ),
            # Used by the curation admin's status filter and by searchable().
            models.Index(fields=["status"], name="image_status"),
            # The crawl's "is this Commons file stored already?" (ingest.crawl._to_fetch): its first()
            # (lowest id) is read from this index alone, with no sort.
            models.Index(fields=["commons_file", "id"], name="image_commons_file"),
        ]

    def __str__(self):
        return f"{self.wikidata_class.label} #{self.pk}"

    @property
    def source_link(self):
        """source_url if it is safe to link to, else None: rows stored before the rule was are not trusted."""
        return web_url_or_none(self.source_url)

    @property
    def license_link(self):
        """license_url if it is safe to link to, else None (see source_link)."""
        return web_url_or_none(self.license_url)

    @property
    def is_stale(self):
        """stale_q() for this loaded row, without a query."""
        return self.embedding is not None and (
            self.embedding_model != MODEL_NAME or self.embedding_version != MODEL_VERSION
        )


# The origins of the pictures the crawler fetches, all from Wikimedia Commons: their source is COMMONS.
COMMONS_ORIGINS = (
    CatalogImage.Origin.WIKIDATA_P18,
    CatalogImage.Origin.WIKIPEDIA,
    CatalogImage.Origin.INSTANCE_P18,
)
COMMONS = "Wikimedia Commons"


class SuspectQuerySet(models.QuerySet):
    def open(self):
        """Suspects still waiting for a curator: not dismissed, with their picture still searchable (an
        outlier) or at least two of their copies still searchable (a duplicate cluster: keeping one closes it).
        """
        live = Suspect.members.through.objects.exclude(catalogimage__status=CatalogImage.Status.EXCLUDED)
        live_counts = live.values("suspect").annotate(n=Count("*")).order_by()
        outliers = Q(kind=Suspect.Kind.OUTLIER, pk__in=live_counts.values("suspect"))
        clusters = Q(kind=Suspect.Kind.DUPLICATE, pk__in=live_counts.filter(n__gte=2).values("suspect"))
        return self.filter(dismissed_at__isnull=True).filter(outliers | clusters)

    def involving(self, image):
        """Suspects about image (an id, an image or an OuterRef), whichever kind."""
        return self.filter(members=image)


class Suspect(models.Model):
    """Pictures the suspect finder (catalog.suspects) thinks a curator should look at, with a score: one
    picture out of place (an outlier), or a cluster of copies of one picture (a duplicate)."""

    class Kind(models.TextChoices):
        OUTLIER = "outlier", "Outlier"
        DUPLICATE = "duplicate", "Duplicate"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The outlier; for a duplicate cluster its lowest id, which keys it (clusters never overlap).
    image = models.ForeignKey(CatalogImage, on_delete=models.CASCADE, related_name="suspicions")
    # Every picture the suspect is about, image included: one for an outlier, the copies of a cluster.
    members = models.ManyToManyField(CatalogImage, related_name="+")
    # For an outlier whose nearest neighbours are mostly of one other class: where it may belong.
    suggested_class = models.ForeignKey(
        WikidataClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.FloatField(help_text="Higher is more suspicious; comparable within a kind")
    reason = models.TextField(blank=True, help_text="Why, in plain words")
    detail = models.TextField(blank=True, help_text="The measures behind the reason, for the curious")
    computed_at = models.DateTimeField(auto_now=True)
    # A curator said "this is fine": kept across re-computations so it is not raised again.
    dismissed_at = models.DateTimeField(null=True, blank=True)

    objects = SuspectQuerySet.as_manager()

    class Meta:
        ordering = ["-score"]
        indexes = [
            # The admin's suspect list: one kind, most suspicious first.
            models.Index(fields=["kind", "-score"], name="suspect_kind_score"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["kind", "image"], name="suspect_one_per_image"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.image_id}"


class SuspectSearch(models.Model):
    """One run of the suspect finder, so the admin can say when the list was last made."""

    finished_at = models.DateTimeField(auto_now_add=True)
    summary = models.TextField()

    class Meta:
        ordering = ["-finished_at"]
        get_latest_by = "finished_at"

    def __str__(self):
        return f"suspect search {self.finished_at:%Y-%m-%d %H:%M}"


class ClassStatistics(models.Model):
    """A class's searchable images as a whole, as the verdict weighs them (catalog.classstats computes them),
    with the fingerprint of the images they were computed from: a row whose fingerprint is no longer the
    class's is stale and never used."""

    wikidata_class = models.OneToOneField(
        WikidataClass, on_delete=models.CASCADE, primary_key=True, related_name="statistics"
    )
    image_count = models.PositiveIntegerField()
    tightness = models.FloatField(
        null=True, help_text="Mean similarity of an image to its closest classmates; empty for a single image"
    )
    tightness_sample = models.PositiveIntegerField(
        help_text="Images whose closest classmates were measured: all of them, or a seeded sample of a big class"
    )
    centroid = VectorField(dimensions=EMBEDDING_DIM, help_text="Unit-length mean of the images' vectors")
    fingerprint = models.TextField(help_text="CatalogImageQuerySet.fingerprint() of the images used")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "class statistics"

    def __str__(self):
        return f"statistics of class {self.wikidata_class_id}"
