"""The whole crawl command, end to end against the local Wikimedia stand-in: classes, galleries,
licences, files and embeddings."""

from io import StringIO

import pytest
from django.core.management import call_command

from catalog.embedding import EMBEDDING_DIM, MODEL_NAME
from catalog.models import CatalogImage, WikidataClass
from tests.crawl_server import ADAMS, ADMONT, standard_scenario

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def crawl(**options):
    out = StringIO()
    call_command("crawl", "--no-progress", stdout=out, **options)
    return out.getvalue()


def test_the_crawl_command_fills_the_catalog_and_a_rerun_changes_nothing(wiki):
    standard_scenario(wiki)
    summary = crawl(classes=3, per_class=3)
    assert "classes: 3 created" in summary
    assert "images: 4 created" in summary
    # Each picture is embedded as it is stored: the embedding step finds none left.
    assert "embeddings: 0 created, 0 skipped, 0 failed" in summary
    book = WikidataClass.objects.get(qid="Q571")
    assert book.main_image.commons_file == ADMONT
    assert sorted(book.images.values_list("origin", flat=True)) == ["instance", "instance", "p18"]
    adams = CatalogImage.objects.get(commons_file=ADAMS)
    assert adams.origin == "wikipedia"
    # Every picture gets its own file's metadata: Douglas Adams' is the captured Commons answer's...
    assert (adams.license, adams.license_url, adams.attribution_required, adams.artist) == (
        "CC BY-SA 2.0",
        "https://creativecommons.org/licenses/by-sa/2.0",
        True,
        "Douglas_adams_portrait.jpg: michael hughes from berlin, germany derivative work: Beao",
    )
    # ...and each other one what the stand-in said of that file alone.
    others = CatalogImage.objects.exclude(commons_file=ADAMS)
    for image in others:
        stored = (
            image.license,
            image.license_url,
            image.attribution_required,
            image.artist,
            image.attribution,
        )
        assert stored == wiki.stored_metadata(image.commons_file)
    assert len({image.artist for image in others}) == len(others) == 3
    for image in CatalogImage.objects.all():
        assert image.embedding is not None and len(image.embedding) == EMBEDDING_DIM
        assert image.embedding_model == MODEL_NAME

    requests_before = len(wiki.log)
    summary = crawl(classes=3, per_class=3)
    assert "images: 0 created, 0 skipped, 0 failed" in summary
    assert len(wiki.log) == requests_before  # nothing asked of Wikimedia twice
    assert CatalogImage.objects.count() == 4
