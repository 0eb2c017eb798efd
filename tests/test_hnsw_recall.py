"""The HNSW index finds the true nearest neighbours, and a class filter still gets k rows of that class.

A catalog of 2,000 vectors in 20 clusters, shaped like the real embeddings (non-negative features, skewed,
jittered per feature within a class, unit length), searched through CatalogImage.objects.nearest() at the
app's own settings and compared with exact search in numpy.
"""

import numpy as np
import pytest
from django.db import connection

from catalog.embedding import EMBEDDING_DIM
from catalog.models import CatalogImage, hnsw_scan
from tests.catalog_factories import make_class

pytestmark = pytest.mark.django_db

CLASSES = 20
PER_CLASS = 100
K = 10


def clustered(centres, labels, rng, jitter=1.0):
    """One unit vector per label: its class centre with every feature scaled by a log-normal factor."""
    vectors = centres[labels] * np.exp(rng.normal(0, jitter, (len(labels), EMBEDDING_DIM)))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def catalog():
    """(classes, images in insertion order, their vectors, centres): the index is filled row by row."""
    rng = np.random.default_rng(6)
    # Gamma(0.5) features: mostly small with a few strong ones, as pooled ReLU6 activations are.
    centres = rng.gamma(0.5, size=(CLASSES, EMBEDDING_DIM))
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    vectors = clustered(centres, labels, rng)
    classes = [make_class(f"class {c}") for c in range(CLASSES)]
    images = CatalogImage.objects.bulk_create(
        CatalogImage(
            wikidata_class=classes[label],
            file=f"images/r{i}.jpg",
            width=1,
            height=1,
            sha256=f"r{i:063d}",
            origin=CatalogImage.Origin.LOCAL,
            embedding=vector,
        )
        for i, (label, vector) in enumerate(zip(labels, vectors, strict=True))
    )
    return classes, images, vectors, centres


def exact_ids(images, vectors, query, k=K):
    return {images[i].pk for i in np.argsort(-(vectors @ query))[:k]}


def test_hnsw_finds_at_least_95_percent_of_the_exact_top_10(catalog):
    classes, images, vectors, centres = catalog
    rng = np.random.default_rng(7)
    # Queries are new members of the clusters, not rows of the table.
    queries = clustered(centres, rng.integers(0, CLASSES, 60), rng)

    overlaps = [
        len({image.pk for image in CatalogImage.objects.nearest(q, K)} & exact_ids(images, vectors, q)) / K
        for q in queries
    ]

    assert np.mean(overlaps) >= 0.95


def test_a_search_filtered_to_a_far_class_returns_k_images_of_that_class(catalog):
    classes, images, vectors, centres = catalog
    rng = np.random.default_rng(8)
    query = clustered(centres, np.array([0]), rng)[0]
    # The class least like the query: every one of the index's first candidates belongs to other classes.
    far = int(np.argmin(centres @ query / np.linalg.norm(centres, axis=1)))
    members = np.flatnonzero([image.wikidata_class_id == classes[far].pk for image in images])

    found = CatalogImage.objects.filter(wikidata_class=classes[far]).nearest(query, K)

    assert len(found) == K
    assert {image.wikidata_class_id for image in found} == {classes[far].pk}
    exact = {images[i].pk for i in members[np.argsort(-(vectors[members] @ query))[:K]]}
    assert len({image.pk for image in found} & exact) >= 0.9 * K


def test_ef_search_is_the_setting_or_k_whichever_is_larger(settings):
    settings.REVIMG_HNSW_EF_SEARCH = 321
    with hnsw_scan(10), connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == "321"
    with hnsw_scan(500), connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == "500"
