"""One log line per search (logger revimg.search), from the page and the API, that says how the search went
and nothing of what was searched: no picture, no file name, no address, no query string.

The image model is replaced by a fixed vector (the line is what is tested; the model has its own tests).
"""

import logging
import re
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from search import service
from tests.catalog_factories import centre, make_catalog, picture_bytes

pytestmark = pytest.mark.django_db

LINE = re.compile(
    r"search kind=(?P<kind>\w+) status=(?P<status>\d+) took_ms=(?P<took_ms>\d+\.\d) k=(?P<k>\d+|-)"
    r" match=(?P<match>true|false|-) state=(?P<state>\w+|-)( error=(?P<error>\w+))?"
)


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


@pytest.fixture
def catalog(monkeypatch):
    """A small catalog, and a model that sees every picture as its first class's centre."""
    catalog = make_catalog(classes=2, per_class=4)
    vector = centre(next(iter(catalog)).pk)

    class FixedEmbedder:
        def embed(self, images):
            return [vector for _ in images]

    monkeypatch.setattr(service, "get_embedder", FixedEmbedder)
    return catalog


@pytest.fixture
def search_log(caplog):
    """The fields of each line logged for a search, in order."""
    caplog.set_level(logging.INFO, logger="revimg.search")

    def lines():
        records = [r for r in caplog.records if r.name == "revimg.search"]
        assert all(r.levelno == logging.INFO for r in records)
        return [LINE.fullmatch(r.getMessage()).groupdict() for r in records]

    return lines


def holiday_photo():
    return SimpleUploadedFile("alice-in-paris-2026.jpg", picture_bytes(3), content_type="image/jpeg")


def test_an_api_search_logs_one_line_with_its_fields(catalog, search_log, caplog):
    response = APIClient().post("/api/search/", {"image": holiday_photo(), "k": "3"}, format="multipart")

    assert response.status_code == 200
    [line] = search_log()
    assert line["kind"] == "upload" and line["status"] == "200" and line["k"] == "3"
    assert line["match"] == str(response.json()["match"]).lower()
    assert line["state"] == response.json()["state"]
    assert line["error"] is None and float(line["took_ms"]) > 0
    assert "alice" not in caplog.text and "paris" not in caplog.text


def test_a_refused_search_logs_its_code_and_status(catalog, search_log):
    APIClient().post("/api/search/", {"image": holiday_photo(), "k": "500"}, format="multipart")
    APIClient().post("/api/search/", {"image": SimpleUploadedFile("notes.txt", b"hello")}, format="multipart")

    bad_k, not_a_picture = search_log()
    assert bad_k == {
        **bad_k,
        "kind": "upload",
        "status": "400",
        "k": "-",
        "match": "-",
        "state": "-",
        "error": "invalid_k",
    }
    assert not_a_picture["k"] == "10" and not_a_picture["error"] and not_a_picture["status"] in ("400", "415")


def test_more_like_this_is_logged_as_similar(catalog, search_log):
    image = next(iter(catalog.values()))[0]

    APIClient().get(f"/api/images/{image.pk}/similar/?k=4")
    APIClient().get("/api/images/999999/similar/")

    found, missing = search_log()
    assert (found["kind"], found["status"], found["k"], found["error"]) == ("similar", "200", "4", None)
    assert (found["match"], found["state"]) == ("true", "catalog")
    assert (missing["kind"], missing["status"], missing["error"]) == ("similar", "404", "not_found")


def test_the_page_logs_its_searches_the_same_way(catalog, search_log):
    image = next(iter(catalog.values()))[0]

    Client().post("/", {"image": holiday_photo()})
    Client().get(f"/?similar={image.pk}")
    Client().post("/", {})

    upload, similar, empty = search_log()
    assert (upload["kind"], upload["status"], upload["k"]) == ("upload", "200", "20")
    assert (similar["kind"], similar["status"]) == ("similar", "200")
    assert (empty["kind"], empty["status"], empty["error"]) == ("upload", "400", "no_image")


def test_a_search_that_crashes_is_logged_as_a_server_error(catalog, search_log, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "search_similar", crash)

    Client(raise_request_exception=False).get("/api/images/1/similar/")

    [line] = search_log()
    assert (line["kind"], line["status"], line["error"]) == ("similar", "500", "server_error")


# --- Search by URL: the address is the person's, not the log's ---------------------------------------


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


def url_parts(url):
    """Every piece of url that could tell someone what was fetched."""
    parts = urlsplit(url)
    pieces = re.split(r"[/?&=.]+", f"{parts.path}?{parts.query}")
    return {url, parts.netloc, parts.hostname, *pieces} - {""}


def assert_nothing_of(url, caplog):
    for record in (r for r in caplog.records if r.name == "revimg.search"):
        logged = record.getMessage() + repr(record.args)
        leaked = {part for part in url_parts(url) if part in logged}
        assert not leaked, (leaked, logged)


def test_a_url_search_logs_nothing_of_the_url(catalog, search_log, caplog, httpserver, settings):
    httpserver.expect_request("/albums/alice-smith/holiday.jpg").respond_with_data(
        picture_bytes(5), content_type="image/jpeg"
    )
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    url = httpserver.url_for("/albums/alice-smith/holiday.jpg") + "?token=s3cr3tvalue&user=alice"

    api = APIClient().post("/api/search/", {"url": url, "k": 2}, format="json")
    page = Client().get("/", {"url": url})

    assert api.status_code == 200 and page.status_code == 200
    assert_nothing_of(url, caplog)
    assert [(line["kind"], line["status"]) for line in search_log()] == [("url", "200"), ("url", "200")]


def test_a_refused_url_logs_its_code_and_nothing_of_the_url(catalog, search_log, caplog):
    url = "http://10.98.76.54/private-album/bob-jones.jpg?session=abcdef123456"

    response = APIClient().post("/api/search/", {"url": url}, format="json")

    assert response.status_code == 400
    assert_nothing_of(url, caplog)
    [line] = search_log()
    assert (line["kind"], line["error"]) == ("url", "url_forbidden")
