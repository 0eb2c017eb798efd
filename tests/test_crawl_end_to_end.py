"""The whole crawl command, end to end against the local Wikimedia stand-in: classes, galleries,
licences, files and embeddings."""

from io import StringIO

import pytest
from crawl_server import ADAMS, ADMONT, fake_wikimedia, standard_scenario
from django.core.management import call_command

from catalog.embedding import EMBEDDING_DIM, MODEL_NAME
from catalog.models import CatalogImage, WikidataClass

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def wiki(httpserver, wikimedia_fixtures, settings):
    yield from fake_wikimedia(httpserver, wikimedia_fixtures, settings)


def crawl(**options):
    out = StringIO()
    call_command("crawl", "--no-progress", stdout=out, **options)
    return out.getvalue()


def test_the_crawl_command_fills_the_catalog_and_a_rerun_changes_nothing(wiki):
    standard_scenario(wiki)
    summary = crawl(classes=3, per_class=3)
    assert "classes: 3 created" in summary
    assert "images: 4 created" in summary
    assert "embeddings: 4 created" in summary
    book = WikidataClass.objects.get(qid="Q571")
    assert book.main_image.commons_file == ADMONT
    assert sorted(book.images.values_list("origin", flat=True)) == ["instance", "instance", "p18"]
    adams = CatalogImage.objects.get(commons_file=ADAMS)
    assert (adams.origin, adams.license) == ("wikipedia", "CC BY-SA 2.0")
    for image in CatalogImage.objects.all():
        assert image.embedding is not None and len(image.embedding) == EMBEDDING_DIM
        assert image.embedding_model == MODEL_NAME

    requests_before = len(wiki.log)
    summary = crawl(classes=3, per_class=3)
    assert "images: 0 created, 0 skipped, 0 failed" in summary
    assert len(wiki.log) == requests_before  # nothing asked of Wikimedia twice
    assert CatalogImage.objects.count() == 4
