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
    state: str  # one of verdict.STATES
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

    @property
    def match(self):
        """Something like the query is in the catalog: a match, or a catalog picture itself."""
        return verdict.is_match(self.state)


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

    The picture is in the catalog, so its class is known, not guessed: the answer's state is "catalog",
    its first class the picture's own (scored by its share of the neighbours' vote, 0 when none of them is
    of that class) and its confidence 1. The neighbours are those of any search.
    Raises CatalogImage.DoesNotExist when it is not a searchable image.
    """
    started = time.perf_counter()
    return search_read(lambda using: _similar(image_id, k, started, using))


def _similar(image_id, k, started, using):
    query = CatalogImage.objects.using(using).searchable().select_related("wikidata_class").get(pk=image_id)
    result = _answer(query.embedding, k, started, using, leave_out=query.pk, known_class=query.wikidata_class)
    result.query_image = query
    return result


def _answer(vector, k, started, using, leave_out=None, timings=None, known_class=None):
    """The neighbours and verdict, read on the database alias using (catalog.replicas).

    known_class: the query's class when the query is a catalog picture (verdict.known).
    """
    timings = {} if timings is None else timings
    with _timed(timings, "neighbours"):
        hits = _neighbours(vector, max(k, verdict.NEIGHBOURS), leave_out, using)
    with _timed(timings, "verdict"):
        judged = _judge(hits[: verdict.NEIGHBOURS], vector, using)
    if known_class is not None:
        judged = verdict.known(judged, known_class.pk)
    return SearchResult(
        model=model_label(),
        state=judged.state,
        confidence=judged.confidence,
        classes=_class_hits(judged.classes, hits, known_class),
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


def _class_hits(scores, hits, known_class=None):
    # Every class the verdict names comes from a neighbour, whose class row is already loaded, or is the
    # query's own.
    classes = {hit.image.wikidata_class_id: hit.image.wikidata_class for hit in hits}
    if known_class is not None:
        classes[known_class.pk] = known_class
    return [ClassHit(classes[score.class_id], score.score) for score in scores[:MAX_CLASSES]]
