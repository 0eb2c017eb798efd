"""A gallery picture that proves unusable at fetch time (non-free, broken, not on Commons, gone from the file
server, another class's file) is replaced by the next best-known instance's picture, so a class gets
--per-class pictures whenever that many usable ones exist: from the crawl's pipeline and from the Celery
tasks alike. A class with fewer usable pictures gets those, each once."""

from collections import Counter

import pytest

from catalog.models import CatalogImage, WikidataClass
from ingest import tasks
from ingest.models import ClassCrawl, ImageSource
from ingest.pipeline import run_classes, run_images
from tests.catalog_factories import make_class, make_image
from tests.crawl_server import picture_bytes

pytestmark = pytest.mark.django_db

PER_CLASS = 5
OWN = "Vermeer - Girl with a Pearl Earring.jpg"
# The instances' pictures, best-known instance first, and what each proves to be at fetch time.
PICTURES = [f"Painting {n}.jpg" for n in range(1, 13)]
NON_FREE, USABLE_2, NOT_ON_COMMONS, TRUNCATED, GONE, USABLE_6, NOT_AN_IMAGE = PICTURES[:7]
# Stored: the class's own picture and the first four usable ones; the later instances are not needed.
EXPECTED = {OWN, USABLE_2, USABLE_6, PICTURES[7], PICTURES[8]}


def spoil_pictures(wiki):
    wiki.nonfree.add(NON_FREE)
    wiki.missing_files.add(NOT_ON_COMMONS)
    wiki.file_bytes[TRUNCATED] = picture_bytes(4)[:300]
    wiki.gone_files.add(GONE)
    wiki.file_bytes[NOT_AN_IMAGE] = b"<!DOCTYPE html><html><body>Not a picture</body></html>"


@pytest.fixture
def paintings(wiki):
    """Q3305213 "painting": its own picture and twelve instances with one picture each, five of the first
    seven unusable. The first plan asks for 2 x 4 instances: too few once those five are skipped."""
    wiki.add_gallery_class("Q3305213", "painting", OWN, PICTURES)
    spoil_pictures(wiki)
    return wiki


def gallery_limits(wiki):
    return [
        p["query"].rsplit("LIMIT ", 1)[1].strip() for p in wiki.requests_to("sparql") if "wd:Q" in p["query"]
    ]


def statuses(qid):
    sources = ImageSource.objects.filter(wikidata_class__qid=qid)
    return {s.commons_file: (s.status, s.reason) for s in sources}


def assert_replaced(wiki):
    painting = WikidataClass.objects.get(qid="Q3305213")
    assert set(painting.images.values_list("commons_file", flat=True)) == EXPECTED
    assert painting.main_image.commons_file == OWN
    found = statuses("Q3305213")
    assert found[NON_FREE][0] == "skipped" and "NonFree" in found[NON_FREE][1]
    assert found[NOT_ON_COMMONS][0] == "skipped" and "not on Commons" in found[NOT_ON_COMMONS][1]
    assert found[TRUNCATED][0] == "failed" and "not a usable image" in found[TRUNCATED][1]
    assert found[GONE][0] == "failed" and "HTTP 404" in found[GONE][1]
    assert found[NOT_AN_IMAGE][0] == "failed" and "not a usable image" in found[NOT_AN_IMAGE][1]
    assert found[PICTURES[9]] == ("spare", "")  # read, kept in reserve, never fetched
    assert PICTURES[10] not in found and PICTURES[11] not in found  # never asked for
    # Each candidate asked of Commons once, none past the ninth; nothing downloaded of what Commons refused.
    asked = [p["titles"].removeprefix("File:") for p in wiki.requests_to("commons")]
    assert sorted(asked) == sorted([OWN, *PICTURES[:9]])
    downloaded = [name for name in asked if name not in (NON_FREE, NOT_ON_COMMONS)]
    assert len(wiki.requests_to("file")) == len(downloaded)
    # The spares of the first answer ran out: the gallery query was asked once more, for the two missing.
    assert gallery_limits(wiki) == ["8", "10"]
    assert ClassCrawl.objects.get(wikidata_class=painting).reason == ""


def test_unusable_gallery_pictures_are_replaced_by_the_next_best_known_instances(paintings):
    ids, _ = run_classes(1)

    recorder = run_images(ids, per_class=PER_CLASS)

    assert_replaced(paintings)
    assert (recorder.run.created, recorder.run.skipped, recorder.run.failed) == (5, 2, 3)
    assert recorder.run.total == recorder.run.processed == 10
    requests = len(paintings.log)
    again = run_images(ids, per_class=PER_CLASS)
    assert again.run.processed == 0 and len(paintings.log) == requests  # nothing asked twice


@pytest.mark.slow
def test_the_crawl_tasks_replace_unusable_gallery_pictures_too(paintings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.crawl_task.apply(args=[1, PER_CLASS]).get()

    assert_replaced(paintings)
    assert not CatalogImage.objects.filter(embedding__isnull=True).exists()


def test_a_class_with_too_few_usable_pictures_gets_each_of_them_once(wiki):
    first = Counter()
    pictures = [
        "Statue 1.jpg",
        "Statue 1.jpg",
        "Statue 3.jpg",
        "Statue 4.jpg",
        "Statue 5.jpg",
        "Statue 6.jpg",
    ]
    wiki.add_gallery_class("Q179700", "statue", "Statue 0.jpg", [*pictures, "Statue 7.jpg"])
    wiki.file_bytes["Statue 3.jpg"] = wiki.file_bytes["Statue 1.jpg"] = picture_bytes(
        1
    )  # one content, 2 names
    wiki.nonfree.add("Statue 4.jpg")
    wiki.missing_files.add("Statue 6.jpg")
    make_image(make_class("monument", "Q4989906"), 9, commons_file="Statue 7.jpg")  # another class's file
    ids, _ = run_classes(1)

    run_images(ids, per_class=8)

    statue = WikidataClass.objects.get(qid="Q179700")
    assert sorted(statue.images.values_list("commons_file", flat=True)) == [
        "Statue 0.jpg",
        "Statue 1.jpg",
        "Statue 5.jpg",
    ]
    assert CatalogImage.objects.count() == 4 and CatalogImage.objects.values("sha256").distinct().count() == 4
    assert ClassCrawl.objects.get(wikidata_class=statue).reason == "only 3 usable pictures found"
    assert statuses("Q179700")["Statue 3.jpg"][0] == "done"  # its content was stored once, as Statue 1's
    first.update(p["titles"] for p in wiki.requests_to("commons"))
    assert set(first.values()) == {1}  # no file asked for twice
    assert len(first) == 6  # every distinct file but the one already in the catalog
    assert gallery_limits(wiki) == ["14"]  # a short answer: there are no more instances to ask for
    requests = len(wiki.log)
    run_images(ids, per_class=8)
    assert len(wiki.log) == requests
