"""The suspect finder: planted outliers and duplicates come first, and curators' decisions stick."""

import io
import re
import weakref

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import curation, suspects
from catalog.models import CatalogImage, Suspect, hnsw_scan
from catalog.suspects import backfill_phashes, find_suspects, neighbours_sql
from tests.catalog_factories import (
    centre,
    make_catalog,
    make_image,
    near,
    picture_bytes,
    same_pixels_other_bytes,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    return make_catalog(classes=3, per_class=10)


def open_suspects(kind):
    return list(Suspect.objects.open().filter(kind=kind).order_by("-score"))


def test_an_image_that_looks_like_another_class_is_the_top_outlier(catalog):
    first, second = list(catalog)[:2]
    stray = make_image(first, 500, vector=near(centre(second.pk), 500))

    find_suspects()

    top = open_suspects(Suspect.Kind.OUTLIER)[0]
    assert top.image == stray
    assert top.reason == "looks more like class 1 than like its own class (class 0)"


def test_the_same_picture_stored_twice_is_the_top_duplicate_even_across_classes(catalog):
    first, second = list(catalog)[:2]
    data = picture_bytes(600)
    original = make_image(first, 600, data=data)
    copy = make_image(
        second, 601, data=same_pixels_other_bytes(data), vector=near(original.embedding, 601, 0.05)
    )

    find_suspects()

    top = open_suspects(Suspect.Kind.DUPLICATE)[0]
    assert set(top.members.all()) == {original, copy}
    assert top.reason == "the same picture stored 2 times, in class 0 and class 1"
    assert "perceptual hashes 0 bits apart" in top.detail


def test_equal_perceptual_hashes_make_duplicates_even_when_the_vectors_disagree(catalog):
    first = list(catalog)[0]
    data = picture_bytes(700)
    original = make_image(first, 700, data=data)
    copy = make_image(first, 701, data=same_pixels_other_bytes(data))  # unrelated synthetic vector

    find_suspects()

    clusters = [set(s.members.all()) for s in open_suspects(Suspect.Kind.DUPLICATE)]
    assert {original, copy} in clusters


def test_a_catalog_of_distinct_pictures_has_no_duplicates(catalog):
    find_suspects()

    assert open_suspects(Suspect.Kind.DUPLICATE) == []


def test_a_dismissed_suspect_stays_dismissed_when_scores_are_computed_again(catalog):
    first, second = list(catalog)[:2]
    stray = make_image(first, 800, vector=near(centre(second.pk), 800))
    find_suspects()
    Suspect.objects.filter(image=stray).update(dismissed_at="2026-01-01T00:00Z")

    find_suspects()

    assert stray not in [s.image for s in open_suspects(Suspect.Kind.OUTLIER)]
    assert Suspect.objects.filter(image=stray, dismissed_at__isnull=False).count() == 1


def test_excluding_an_image_closes_its_suspicions_and_keeps_it_out_of_the_next_run(catalog):
    first, second = list(catalog)[:2]
    stray = make_image(first, 900, vector=near(centre(second.pk), 900))
    find_suspects()

    curation.exclude([stray.pk], "wrong class")
    assert stray not in [s.image for s in open_suspects(Suspect.Kind.OUTLIER)]
    find_suspects()

    assert not Suspect.objects.filter(image=stray).exists()


def test_images_stored_before_perceptual_hashes_get_one(catalog):
    CatalogImage.objects.update(phash="")

    find_suspects()

    assert not CatalogImage.objects.filter(phash="").exists()
    assert len(set(CatalogImage.objects.values_list("phash", flat=True))) == CatalogImage.objects.count()


def test_images_of_a_class_smaller_than_k_are_not_outliers_for_lacking_neighbours():
    first, second, *_ = make_catalog(classes=4, per_class=6)
    # The first class now has 7 images: only 6 same-class places among 10 neighbours, so only the first 6
    # neighbours of its images are counted; the stray's first 6 are the second class's 6 images.
    stray = make_image(first, 500, vector=near(centre(second.pk), 500))

    find_suspects()

    votes = [
        (s.image, re.search(r"(\d+) of (\d+) nearest neighbours in other classes", s.detail))
        for s in open_suspects(Suspect.Kind.OUTLIER)
    ]
    counted = {image: (int(found[1]), int(found[2])) for image, found in votes if found}
    assert counted.pop(stray) == (6, 6)
    # The others count at most the stray among the places their class can fill, never the places beyond.
    assert all(foreign <= 1 and voted <= 6 for foreign, voted in counted.values())


def test_the_commands_report_what_they_did(catalog):
    CatalogImage.objects.update(phash="")
    out = io.StringIO()

    call_command("backfill_phash", "--no-progress", stdout=out)
    call_command("find_suspects", stdout=out)

    assert "30 hashed, 0 failed" in out.getvalue()
    assert "duplicate clusters (0 perceptual hashes computed)" in out.getvalue()


def test_the_neighbour_query_scans_the_hnsw_index_for_each_image(catalog):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_catalogimage")
    sql, params = neighbours_sql(10, 0, 10**9)

    # The same scan settings as suspects.neighbours() runs it in.
    with hnsw_scan(10), connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Scan using image_embedding_hnsw" in plan


def test_backfilling_an_empty_queryset_hashes_nothing(catalog):
    CatalogImage.objects.update(phash="")

    assert backfill_phashes(CatalogImage.objects.none()) == (0, 0)
    assert not CatalogImage.objects.exclude(phash="").exists()


def test_neighbour_rows_are_used_as_they_come_never_held_together(catalog, monkeypatch):
    alive, seen, most_alive = weakref.WeakSet(), 0, 0
    every_row = suspects.neighbours

    def watched(k):
        nonlocal seen, most_alive
        for row in every_row(k):
            most_alive = max(most_alive, len(alive))
            alive.add(row)
            seen += 1
            yield row

    monkeypatch.setattr(suspects, "neighbours", watched)
    find_suspects()

    assert seen == 30 * 10 and most_alive <= 1


def test_vectors_are_read_in_binary_form_never_parsed_from_text(catalog):
    with CaptureQueriesContext(connection) as queries:
        find_suspects()

    selected = [re.split(r"\sFROM\s", q["sql"], maxsplit=1)[0] for q in queries.captured_queries]
    as_text = re.compile(r'(?<!vector_send\()"catalog_catalogimage"\."embedding"(?=,|$| AS )')
    assert [s for s in selected if as_text.search(s)] == []
    assert any("vector_send(" in s for s in selected)
