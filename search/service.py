"""One search, shared by the page and the API: a picture (or a catalog image) in, a verdict and neighbours out."""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from catalog.classstats import stats_of
from catalog.embedding import MODEL_NAME, MODEL_VERSION, get_embedder
from catalog.models import CatalogImage, WikidataClass
from catalog.replicas import search_read

from . import verdict

DEFAULT_K = 10
# Where a search spends its time: the model, the nearest-neighbour query (through the ORM), the verdict.
PHASES = ("embedding", "neighbours", "verdict")
MAX_K = 100
# Classes listed with an answer: past the first few, the scores of the verdict are only noise.
MAX_CLASSES = 10
# What a result shows (page and API), and no more: vectors and descriptions are large, and every search
# loads 50 rows. width/height keep Django's ImageField from opening files to measure them.
RESULT_FIELDS = (
    "wikidata_class_id", "file", "thumbnail", "width", "height", "source_url", "license", "license_url",
    "artist", "attribution", "wikidata_class__qid", "wikidata_class__label", "wikidata_class__enwiki_title",
)  # fmt: skip


@dataclass
class ClassHit:
    wikidata_class: WikidataClass
    score: float


@dataclass
class ImageHit:
    image: CatalogImage  # with wikidata_class loaded
    similarity: float


@dataclass
class SearchResult:
    model: str
    match: bool
    confidence: float
    took_ms: float
    classes: list[ClassHit]  # best first
    results: list[ImageHit]  # most similar first
    query_image: CatalogImage | None = None  # set for "more like this"
    # Seconds per phase (PHASES), for whoever watches the service; "more like this" embeds nothing.
    timings: dict[str, float] = field(default_factory=dict)
    vector: object = (
        None  # the query's vector, so a search can be kept (search.shared) without embedding again
    )


def model_label():
    return f"{MODEL_NAME}/{MODEL_VERSION}"


def search_image(image, k=DEFAULT_K):
    """Search the catalog for a decoded RGB PIL image."""
    started, timings = time.perf_counter(), {}
    with _timed(timings, "embedding"):
        vector = get_embedder().embed([image])[0]
    return search_vector(vector, k, started, timings)


def search_vector(vector, k=DEFAULT_K, started=None, timings=None):
    """Search the catalog from a vector the embedder made for a query picture."""
    started = time.perf_counter() if started is None else started
    return search_read(lambda using: _answer(vector, k, started, using, timings=timings))


def search_similar(image_id, k=DEFAULT_K):
    """ "More like this": search from a catalog image's stored vector, leaving the image itself out.

    Raises CatalogImage.DoesNotExist when it is not a searchable image.
    """
    started = time.perf_counter()
    return search_read(lambda using: _similar(image_id, k, started, using))


def _similar(image_id, k, started, using):
    query = CatalogImage.objects.using(using).searchable().select_related("wikidata_class").get(pk=image_id)
    result = _answer(query.embedding, k, started, using, leave_out=query.pk)
    result.query_image = query
    return result


def _answer(vector, k, started, using, leave_out=None, timings=None):
    """The neighbours and verdict, read on the database alias using (catalog.replicas)."""
    timings = {} if timings is None else timings
    with _timed(timings, "neighbours"):
        hits = _neighbours(vector, max(k, verdict.NEIGHBOURS), leave_out, using)
    with _timed(timings, "verdict"):
        judged = _judge(hits[: verdict.NEIGHBOURS], vector, using)
    return SearchResult(
        model=model_label(),
        match=judged.match,
        confidence=judged.confidence,
        classes=_class_hits(judged.classes, hits),
        results=hits[:k],
        took_ms=(time.perf_counter() - started) * 1000,
        timings=timings,
        vector=vector,
    )


@contextmanager
def _timed(timings, phase):
    started = time.perf_counter()
    yield
    timings[phase] = time.perf_counter() - started


def _judge(hits, vector, using):
    return verdict.judge(
        [verdict.Neighbour(h.image.pk, h.image.wikidata_class_id, h.similarity) for h in hits],
        query=vector,
        class_stats_of=partial(stats_of, using=using),
    )


def _neighbours(vector, n, leave_out, using):
    images = (
        CatalogImage.objects.using(using)
        .select_related("wikidata_class")
        .only(*RESULT_FIELDS)
        .nearest(vector, n + 1 if leave_out is not None else n)
    )
    return [ImageHit(image, 1.0 - image.distance) for image in images if image.pk != leave_out][:n]


def _class_hits(scores, hits):
    # Every class the verdict names comes from a neighbour, whose class row is already loaded.
    classes = {hit.image.wikidata_class_id: hit.image.wikidata_class for hit in hits}
    return [ClassHit(classes[score.class_id], score.score) for score in scores[:MAX_CLASSES]]
