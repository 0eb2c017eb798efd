"""Nearest-neighbour search runs in Postgres on the HNSW index, over searchable images only."""

import numpy as np
import pytest
from django.db import connection

from catalog.embedding import EMBEDDING_DIM
from catalog.models import CatalogImage, hnsw_scan
from tests.catalog_factories import make_class, unit

pytestmark = pytest.mark.django_db

Status = CatalogImage.Status


def random_vectors(n, seed=0):
    rng = np.random.default_rng(seed)
    return [unit(v) for v in rng.standard_normal((n, EMBEDDING_DIM))]


def add_rows(wikidata_class, vectors, status=Status.ACTIVE, prefix="a"):
    """Rows with vectors and no real file: this is about SQL, not pictures."""
    rows = [
        CatalogImage(
            wikidata_class=wikidata_class,
            file=f"images/{prefix}{i}.jpg",
            width=1,
            height=1,
            sha256=f"{prefix}{i:063d}"[-64:],
            origin=CatalogImage.Origin.LOCAL,
            status=status,
            embedding=vector,
        )
        for i, vector in enumerate(vectors)
    ]
    return CatalogImage.objects.bulk_create(rows)


@pytest.fixture
def things():
    return make_class("thing", qid="Q35120")


def test_nearest_returns_the_closest_images_first_with_their_distance(things):
    vectors = random_vectors(40)
    rows = add_rows(things, vectors)
    query = unit(vectors[7] + 0.2 * random_vectors(1, seed=99)[0])

    found = CatalogImage.objects.nearest(query, 5)

    exact = sorted(rows, key=lambda row: -float(np.dot(row.embedding, query)))
    assert found[0].pk == exact[0].pk == rows[7].pk
    assert [image.distance for image in found] == sorted(image.distance for image in found)
    assert found[0].distance == pytest.approx(1 - float(np.dot(vectors[7], query)), abs=1e-5)
    assert len(found) == 5


def test_excluded_and_unembedded_images_are_never_returned(things):
    vectors = random_vectors(12)
    add_rows(things, vectors[:6], status=Status.EXCLUDED, prefix="x")
    flagged = add_rows(things, vectors[6:9], status=Status.FLAGGED, prefix="f")
    active = add_rows(things, vectors[9:], prefix="a")
    add_rows(things, [None] * 3, prefix="n")

    found = CatalogImage.objects.nearest(vectors[0], 50)

    assert {image.pk for image in found} == {image.pk for image in flagged + active}


def test_k_images_come_back_even_when_the_closest_hundreds_are_excluded(things):
    # The excluded rows are all nearer the query than every active one, and more than ef_search of them:
    # a plain HNSW scan would return its candidates, drop them all in the filter and answer nothing.
    centre = random_vectors(1, seed=5)[0]
    close = [unit(centre + 0.3 * v) for v in random_vectors(250, seed=6)]
    add_rows(things, close, status=Status.EXCLUDED, prefix="x")
    far = add_rows(things, random_vectors(300, seed=7), prefix="a")

    found = CatalogImage.objects.nearest(centre, 20)

    assert len(found) == 20
    assert {image.pk for image in found} <= {image.pk for image in far}


def test_the_nearest_query_uses_the_hnsw_index(things):
    add_rows(things, random_vectors(200))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_catalogimage")  # what autovacuum does after a bulk import

    # Honest about the set-up: hnsw_scan turns enable_sort off for this one transaction, because the planner
    # underestimates sorting TOASTed vectors by distance (see its docstring); nearest() runs in it.
    with hnsw_scan(10):
        plan = CatalogImage.objects.select_related("wikidata_class").nearest_query(random_vectors(1)[0], 10)
        plan = plan.explain()

    assert "Index Scan using image_embedding_hnsw" in plan


def test_the_scan_settings_last_only_for_the_search(things):
    add_rows(things, random_vectors(3))
    CatalogImage.objects.nearest(random_vectors(1)[0], 3)

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_sort'), current_setting('hnsw.iterative_scan')")
        assert cursor.fetchone() == ("on", "off")
