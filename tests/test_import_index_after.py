"""A large import builds the HNSW index after its load (catalog.hnswbuild); searches answer meanwhile."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from catalog import hnswbuild
from catalog.models import CatalogImage, hnsw_scan
from ingest import local
from tests.catalog_factories import picture_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for class_name, seeds in {"red_things": (1, 2, 3), "blue_things": (4, 5, 6)}.items():
        (root / class_name).mkdir(parents=True)
        for seed in seeds:
            (root / class_name / f"img_{seed}.jpg").write_bytes(picture_bytes(seed))
    return root


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Batches of two, so six pictures make several: the index is dropped after a stored batch."""
    monkeypatch.setattr(local, "BATCH_SIZE", 2)


@pytest.fixture
def drops(monkeypatch):
    """Each drop of the index during an import: what a search found then, and the index's state."""
    seen = []
    drop = hnswbuild.drop

    def drop_and_search(using="default"):
        drop(using)
        stored = CatalogImage.objects.exclude(embedding=None).first()
        found = CatalogImage.objects.nearest(stored.embedding, 1) if stored else []
        seen.append((hnswbuild.index_state(using), [image.pk for image in found], stored and stored.pk))
        return None

    monkeypatch.setattr(hnswbuild, "drop", drop_and_search)
    return seen


def run_import(path):
    call_command("import_images", str(path), stdout=io.StringIO(), stderr=io.StringIO())


def uses_the_index():
    with hnsw_scan(10):
        plan = CatalogImage.objects.nearest_query([0.1] * 1280, 10).explain()
    return "image_embedding_hnsw" in plan


def test_a_large_import_drops_the_index_searches_exactly_meanwhile_and_builds_it_at_the_end(
    folder, drops, settings
):
    settings.REVIMG_IMPORT_INDEX_AFTER_ROWS = 4

    run_import(folder)

    assert len(drops) == 1
    state, found, stored = drops[0]
    assert state == "missing" and found == [stored]  # the exact scan finds the picture itself
    assert hnswbuild.index_state() == "valid" and uses_the_index()
    assert CatalogImage.objects.count() == 6


def test_an_import_under_the_threshold_keeps_the_index(folder, drops, settings):
    settings.REVIMG_IMPORT_INDEX_AFTER_ROWS = 7

    run_import(folder)

    assert drops == [] and hnswbuild.index_state() == "valid"


def test_running_the_same_import_again_keeps_the_index(folder, drops, settings):
    settings.REVIMG_IMPORT_INDEX_AFTER_ROWS = 1
    run_import(folder)
    drops.clear()

    run_import(folder)

    assert drops == []


@pytest.mark.parametrize("left_by", ["missing", "invalid"])
def test_an_import_after_a_killed_one_builds_the_index_it_left_missing_or_invalid(folder, left_by, settings):
    settings.REVIMG_IMPORT_INDEX_AFTER_ROWS = 10**6
    run_import(folder)
    with connection.cursor() as cursor:
        if left_by == "missing":  # killed during the load
            cursor.execute("DROP INDEX image_embedding_hnsw")
        else:  # killed during a concurrent build, which leaves the index marked invalid
            cursor.execute(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'image_embedding_hnsw'::regclass"
            )
    assert hnswbuild.index_state() == left_by

    run_import(folder)  # everything already stored

    assert hnswbuild.index_state() == "valid" and uses_the_index()


def test_the_share_of_the_catalog_decides_with_the_floor(settings):
    settings.REVIMG_IMPORT_INDEX_AFTER_ROWS = 1000
    settings.REVIMG_IMPORT_INDEX_AFTER_SHARE = 0.5

    assert hnswbuild.worth_deferring(1000, 0) and hnswbuild.worth_deferring(5000, 10_000)
    assert not hnswbuild.worth_deferring(999, 0) and not hnswbuild.worth_deferring(4999, 10_000)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_index_is_dropped_and_built_concurrently(folder, settings):
    settings.REVIMG_IMPORT_INDEX_AFTER_ROWS = 1

    run_import(folder)

    assert hnswbuild.index_state() == "valid" and uses_the_index()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('maintenance_work_mem')")
        assert cursor.fetchone()[0] != settings.REVIMG_INDEX_BUILD_MEMORY  # reset after the build
