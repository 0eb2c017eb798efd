"""Crawled or imported addresses are links only when they are http(s): on the page, in the admin, in the
API, in what the crawl stores, and in rows stored before the rule (the migration and the renderers)."""

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.models import CatalogImage
from ingest import commons, crawl
from tests import crawl_server
from tests.catalog_factories import make_catalog
from tests.links import links_in, unsafe_json_urls, unsafe_links

pytestmark = pytest.mark.django_db

HOSTILE = [
    "javascript:alert(3)",
    " JaVaScRiPt:alert(3)",
    "java\tscript:alert(3)",
    "java\nscript:alert(3)",
    "\x01\x1f javascript:alert(3)",
    "data:text/html,<script>alert(3)</script>",
    "vbscript:msgbox(3)",
    "ftp://example.org/licence.txt",  # harmless, but not the web: Django's own admin widget would link it
]
SAFE = "https://example.org/licence/"


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


@pytest.fixture
def images():
    """A query image, then one image per hostile address (as its source and its licence), then a safe one:
    rows written as an old crawl wrote them, past any validation."""
    (query, *others) = make_catalog(classes=1, per_class=len(HOSTILE) + 2).popitem()[1]
    for image, url in zip(others, [*HOSTILE, SAFE], strict=True):
        CatalogImage.objects.filter(pk=image.pk).update(source_url=url, license_url=url, license="CC BY 4.0")
    return query, others


def test_the_page_links_no_hostile_address(client, images):
    query, _ = images

    page = client.get(f"/?similar={query.pk}").content.decode()

    assert page.count('<li class="card') == len(HOSTILE) + 1
    assert unsafe_links(page) == []
    assert links_in(page).count(SAFE) == 2  # the safe image's licence and source are still links


def test_the_api_gives_no_hostile_address(images):
    query, others = images
    api = APIClient()

    similar = api.get(f"/api/images/{query.pk}/similar/?k=50").json()
    listed = api.get("/api/images/").json()
    single = api.get(f"/api/images/{others[0].pk}/").json()

    assert len(similar["results"]) == len(HOSTILE) + 1
    assert unsafe_json_urls([similar, listed, single]) == []
    assert (single["source_url"], single["license_url"]) == (None, None)
    safe = api.get(f"/api/images/{others[-1].pk}/").json()
    assert (safe["source_url"], safe["license_url"]) == (SAFE, SAFE)


def test_the_admin_lists_and_forms_link_no_hostile_address(admin_client, images):
    _, others = images

    listing = admin_client.get(reverse("admin:catalog_catalogimage_changelist") + "?all=")
    forms = [admin_client.get(reverse("admin:catalog_catalogimage_change", args=[i.pk])) for i in others]

    assert listing.status_code == 200 and unsafe_links(listing.text) == []
    for image, form in zip(others[:-1], forms, strict=False):
        assert form.status_code == 200
        assert unsafe_links(form.text) == [], image.source_url
    assert links_in(forms[-1].text).count(SAFE) == 2  # "Currently:" links for an http(s) address


@pytest.mark.parametrize("url", HOSTILE)
def test_the_model_refuses_a_hostile_address(images, url):
    image = images[1][-1]
    image.source_url = url

    with pytest.raises(ValidationError) as refused:
        image.full_clean(exclude=["embedding"])  # as the admin's form does: the vector is not editable

    assert "source_url" in refused.value.message_dict


def test_the_model_accepts_a_web_address(images):
    image = images[1][-1]
    image.source_url = image.license_url = "http://example.org/a.jpg"

    image.full_clean(exclude=["embedding"])


def test_the_migration_blanks_stored_hostile_addresses_and_keeps_web_ones(images):
    _, others = images
    CatalogImage.objects.filter(pk=others[-1].pk).update(source_url="\t " + SAFE + "\n")
    migration = importlib.import_module("catalog.migrations.0007_web_urls_only")

    migration.clear_non_web_urls(apps, None)

    rows = dict(CatalogImage.objects.filter(pk__in=[i.pk for i in others]).values_list("pk", "license_url"))
    assert [rows[image.pk] for image in others] == [""] * len(HOSTILE) + [SAFE]
    assert set(CatalogImage.objects.filter(pk__in=[i.pk for i in others[:-1]]).values_list("source_url")) == {
        ("",)
    }
    assert CatalogImage.objects.get(pk=others[-1].pk).source_url == SAFE  # stored as a browser reads it


@pytest.mark.parametrize("url", HOSTILE)
def test_commons_metadata_keeps_no_hostile_licence_address(url):
    info = {
        "thumburl": "https://upload.wikimedia.org/a.jpg",
        "mediatype": "BITMAP",
        "extmetadata": {"LicenseShortName": {"value": "CC BY 4.0"}, "LicenseUrl": {"value": url}},
    }

    assert commons.parse_imageinfo("A.jpg", info, 640).license_url == ""


def test_commons_metadata_keeps_a_web_licence_address():
    info = {"thumburl": "https://upload.wikimedia.org/a.jpg", "extmetadata": {"LicenseUrl": {"value": SAFE}}}

    assert commons.parse_imageinfo("A.jpg", info, 640).license_url == SAFE


def test_the_crawl_stores_no_hostile_licence_address(wiki, monkeypatch):
    monkeypatch.setitem(crawl_server.LICENCES, "Hostile", (" JaVaScRiPt:alert(3)", "hostile", "true"))
    crawl_server.standard_scenario(wiki)
    wiki.licences[crawl_server.ADMONT] = "Hostile"
    from ingest.pipeline import run_classes

    run_classes(3)
    book = apps.get_model("catalog", "WikidataClass").objects.get(qid="Q571")
    crawl.plan_images(book.pk, per_class=1)
    source = book.image_sources.get()

    assert crawl.fetch_source(source.id)[0] == "created"
    image = CatalogImage.objects.get(commons_file=crawl_server.ADMONT)
    assert (image.license, image.license_url) == ("Hostile", "")
    assert image.source_url.startswith("http://")  # the file it was fetched from
