"""`manage.py starter_catalog` (run by `make run`): crawl when Wikimedia answers, else a local folder."""

import socket
from io import StringIO

import pytest
from django.core.management import call_command

from catalog import store
from catalog.http import crawler as http
from catalog.models import CatalogImage, Suspect, WikidataClass
from ingest.folder_metadata import METADATA_FILE
from ingest.models import IngestRun
from tests.catalog_factories import make_image, same_pixels_other_bytes
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


def test_a_catalog_embedded_by_an_earlier_model_is_left_alone_with_a_hint_to_embed_it_again(offline):
    mugs = WikidataClass.objects.create(label="mug")
    make_image(mugs, 1)
    earlier = make_image(mugs, 2)
    CatalogImage.objects.filter(pk=earlier.pk).update(embedding_version="imagenet-57934424/v1")

    assert starter() == [
        "The catalog already has 2 images; starter catalog not needed.",
        "1 of them were embedded by an earlier model version; run `python manage.py embed_images` to embed"
        " them again (search answers meanwhile).",
    ]


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


def caltech_like_folder(tmp_path, pictures):
    """A starter folder named as the Caltech-101 subset, whose metadata the repository keeps; pictures maps
    a class folder to its files' bytes."""
    root = tmp_path / "caltech101-dev"
    for label, files in pictures.items():
        (root / label).mkdir(parents=True)
        for n, data in enumerate(files):
            (root / label / f"image_{n:04}.jpg").write_bytes(data)
    return root


@pytest.mark.slow
def test_offline_the_caltech_subset_is_imported_under_its_licence_and_credited_on_every_card(
    offline, settings, tmp_path, client
):
    settings.REVIMG_STARTER_DIR = str(caltech_like_folder(tmp_path, {"dalmatian": [picture_bytes(20)]}))

    starter()

    image = CatalogImage.objects.get()
    assert (image.license, image.license_url) == ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/")
    card = client.get(f"/?similar={image.pk}").content.decode()
    assert '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>' in card
    assert "Fei-Fei Li, Marco Andreetto" in card and "Licence unknown" not in card


@pytest.mark.slow
def test_the_starter_import_is_recorded_and_followed_by_a_search_for_suspects(offline, settings, tmp_path):
    copied = picture_bytes(30)
    pictures = {"ant": [copied, picture_bytes(31)], "bass": [same_pixels_other_bytes(copied)]}
    settings.REVIMG_STARTER_DIR = str(caltech_like_folder(tmp_path, pictures))

    lines = starter()

    runs = {run.kind: run for run in IngestRun.objects.all()}
    assert set(runs) == {"import", "upkeep:suspects"}
    assert runs["import"].status == IngestRun.Status.DONE and runs["import"].created == 3
    assert runs["import"].arguments["license"] == "CC BY 4.0"
    assert runs["upkeep:suspects"].status == IngestRun.Status.DONE
    copies = {store.content_hash(copied), store.content_hash(same_pixels_other_bytes(copied))}
    clusters = Suspect.objects.filter(kind=Suspect.Kind.DUPLICATE).prefetch_related("members")
    assert any(copies <= {member.sha256 for member in cluster.members.all()} for cluster in clusters)
    assert lines[-2] == "Looking for suspects (outliers, duplicates) for the admin's Suspects page..."
    assert lines[-1].startswith("suspects: done: ") and " duplicate clusters " in lines[-1]


@pytest.mark.slow
def test_a_starter_folders_own_metadata_file_wins_over_the_one_kept_for_its_name(offline, settings, tmp_path):
    folder = caltech_like_folder(tmp_path, {"ant": [picture_bytes(40)]})
    (folder / METADATA_FILE).write_text('{"license": "CC0 1.0", "attribution": "Our own photos"}')
    settings.REVIMG_STARTER_DIR = str(folder)

    starter()

    assert CatalogImage.objects.values_list("license", "attribution").get() == ("CC0 1.0", "Our own photos")


def test_a_starter_folder_with_a_wrong_metadata_file_is_not_imported_and_says_why(
    offline, settings, tmp_path
):
    folder = caltech_like_folder(tmp_path, {"ant": [picture_bytes(41)]})
    (folder / METADATA_FILE).write_text('{"licence": "CC0 1.0"}')
    settings.REVIMG_STARTER_DIR = str(folder)

    lines = starter()

    assert lines[
        1
    ] == f'Not importing the starter folder: {folder / METADATA_FILE}: unknown key "licence" ' + (
        "(known: license, license_url, attribution, source_url, note)"
    )
    assert not CatalogImage.objects.exists() and not IngestRun.objects.exists()
