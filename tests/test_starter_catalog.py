"""`manage.py starter_catalog` (run by `make run`): crawl when Wikimedia answers, else a local folder."""

import socket
from io import StringIO

import pytest
from django.core.management import call_command

from catalog import store
from catalog.http import crawler as http
from catalog.models import CatalogImage, WikidataClass
from tests.crawl_server import picture_bytes, standard_scenario

pytestmark = pytest.mark.django_db


@pytest.fixture
def offline(monkeypatch, settings):
    """No name resolves, as on the build machines: nothing leaves this machine."""

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    settings.REVIMG_WIKIDATA_API_URL = "https://www.wikidata.org/w/api.php"
    http.reset_session()


def starter():
    out = StringIO()
    call_command("starter_catalog", "--no-progress", stdout=out)
    return out.getvalue().splitlines()


def test_a_catalog_with_images_is_left_alone(offline):
    wikidata_class = WikidataClass.objects.create(label="mug")
    store.save(wikidata_class, store.prepare(picture_bytes(1), origin="local"), None)
    assert starter() == ["The catalog already has 1 images; starter catalog not needed."]


def test_offline_without_a_folder_it_says_so_in_one_line_and_tells_how_to_import(offline, settings, tmp_path):
    settings.REVIMG_STARTER_DIR = str(tmp_path / "absent")
    lines = starter()
    assert (
        lines[0]
        == "Wikimedia is unreachable from here (www.wikidata.org: its name does not resolve (no DNS)); skipping the crawl."
    )
    assert len([line for line in lines if "unreachable" in line]) == 1
    assert "python manage.py import_images DIR" in lines[1]
    assert not CatalogImage.objects.exists()


@pytest.mark.slow
def test_offline_it_imports_the_starter_folder(offline, settings, tmp_path):
    for n, label in enumerate(["red_fox", "teapot"]):
        (tmp_path / label).mkdir()
        (tmp_path / label / "1.jpg").write_bytes(picture_bytes(10 + n))
    settings.REVIMG_STARTER_DIR = str(tmp_path)
    lines = starter()
    assert "unreachable" in lines[0]
    assert lines[1].startswith(f"Importing the starter catalog from {tmp_path}")
    assert lines[2].startswith("2 images imported")
    assert CatalogImage.objects.searchable().count() == 2


@pytest.mark.slow
def test_online_it_crawls_a_starter_catalog(wiki, settings):
    standard_scenario(wiki)
    settings.REVIMG_STARTER_CLASSES = 3
    lines = starter()
    assert lines[0] == "Crawling a starter catalog of 3 classes from Wikimedia..."
    assert CatalogImage.objects.searchable().count() == 2  # book's own image and Douglas Adams'
