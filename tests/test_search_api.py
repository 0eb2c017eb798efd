"""The JSON API: answer shapes, catalog listings, refusals that are never 5xx, throttling, the schema.

Search itself needs the image model, so searches by picture are in test_search_api_images.py (slow);
here "more like this" exercises the same search path from stored synthetic vectors.
"""

import io
import re
import struct
import zlib

import pytest
from django.core.cache import cache
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from PIL import Image
from rest_framework.test import APIClient

from catalog import classstats
from catalog.models import CatalogImage, WikidataClass
from search import service
from search.verdict import STATES
from tests.catalog_factories import centre, make_catalog, make_image, near

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def catalog():
    return make_catalog(classes=3, per_class=6)


def png_bytes(size=(8, 8)):
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def png_header_only(width, height):
    """A valid PNG header declaring width x height pixels, with almost no data: a decompression bomb."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def named(data, name):
    file = io.BytesIO(data)
    file.name = name
    return file


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# --- "More like this": the shape of every search answer ---------------------------------------------


def test_similar_answers_with_the_search_shape(api, catalog):
    first_class, images = next(iter(catalog.items()))

    response = api.get(f"/api/images/{images[0].pk}/similar/?k=4")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"model", "state", "match", "confidence", "took_ms", "classes", "results"}
    assert (body["state"], body["match"], body["confidence"]) == ("catalog", True, 1.0)
    assert body["took_ms"] >= 0
    assert body["model"].startswith("efficientnet-lite0/")
    assert len(body["results"]) == 4
    result = body["results"][0]
    assert set(result) == {
        "id", "similarity", "class", "image_url", "thumbnail_url", "source_url", "license", "attribution"
    }  # fmt: skip
    assert result["class"] == {"id": first_class.pk, "qid": first_class.qid, "label": first_class.label}
    assert result["image_url"].startswith("http://testserver/media/images/")
    assert result["thumbnail_url"].startswith("http://testserver/media/thumbs/")
    assert body["classes"][0] == {
        "id": first_class.pk, "qid": first_class.qid, "label": first_class.label, "score": body["classes"][0]["score"]
    }  # fmt: skip
    similarities = [r["similarity"] for r in body["results"]]
    assert similarities == sorted(similarities, reverse=True)


def test_similar_names_the_picture_s_own_class_first_even_among_another_class_s_pictures(api, catalog):
    """A catalog picture's class is known: its neighbours' vote does not decide it."""
    (own, _), (other, _) = list(catalog.items())[:2]
    stray = make_image(own, 99, vector=near(centre(other.pk), 99))  # looks like the other class

    body = api.get(f"/api/images/{stray.pk}/similar/?k=6").json()

    assert [c["id"] for c in body["classes"]][:2] == [own.pk, other.pk]
    assert body["classes"][0]["score"] < body["classes"][1]["score"]
    assert {r["class"]["id"] for r in body["results"]} == {other.pk}
    assert (body["state"], body["match"], body["confidence"]) == ("catalog", True, 1.0)


def test_similar_leaves_the_image_itself_out(api, catalog):
    images = next(iter(catalog.values()))

    body = api.get(f"/api/images/{images[0].pk}/similar/?k=100").json()

    assert images[0].pk not in [r["id"] for r in body["results"]]
    assert len(body["results"]) == 17  # 3 classes x 6 images, less the query


def test_similar_of_an_excluded_or_unknown_image_is_404(api, catalog):
    image = next(iter(catalog.values()))[0]
    CatalogImage.objects.filter(pk=image.pk).update(status=CatalogImage.Status.EXCLUDED)

    assert_error(api.get(f"/api/images/{image.pk}/similar/"), 404, "not_found")
    assert_error(api.get("/api/images/999999/similar/"), 404, "not_found")


def test_excluded_images_are_never_in_results(api, catalog):
    images = next(iter(catalog.values()))
    CatalogImage.objects.filter(pk__in=[i.pk for i in images[1:3]]).update(
        status=CatalogImage.Status.EXCLUDED
    )

    body = api.get(f"/api/images/{images[0].pk}/similar/?k=100").json()

    assert not {images[1].pk, images[2].pk} & {r["id"] for r in body["results"]}


# "" is k given without a value: refused, not read as "k left out" (the default is had by leaving k out).
@pytest.mark.parametrize("k", ["0", "101", "ten", "-3", "2.5", "", "+5", "\u0665", "9" * 5000])
def test_k_out_of_range_is_refused(api, catalog, k):
    image = next(iter(catalog.values()))[0]

    assert_error(api.get(f"/api/images/{image.pk}/similar/?k={k}"), 400, "invalid_k")


# --- The catalog ------------------------------------------------------------------------------------


def test_classes_are_listed_with_their_searchable_image_count(api, catalog):
    first_class, images = next(iter(catalog.items()))
    CatalogImage.objects.filter(pk=images[0].pk).update(status=CatalogImage.Status.EXCLUDED)
    CatalogImage.objects.filter(pk=images[1].pk).update(embedding=None)
    CatalogImage.objects.filter(pk=images[2].pk).update(status=CatalogImage.Status.FLAGGED)

    body = api.get("/api/classes/").json()

    assert body["count"] == 3 and len(body["results"]) == 3
    listed = {c["id"]: c for c in body["results"]}[first_class.pk]
    assert listed["image_count"] == 4  # neither the excluded image nor the one with no vector
    assert listed["wikidata_url"] == f"https://www.wikidata.org/wiki/{first_class.qid}"
    assert api.get(f"/api/classes/{first_class.pk}/").json()["label"] == first_class.label
    assert [c["id"] for c in api.get(f"/api/classes/?qid={first_class.qid}").json()["results"]] == [
        first_class.pk
    ]


@pytest.mark.filterwarnings("error::django.core.paginator.UnorderedObjectListWarning")
def test_images_are_paginated_and_filterable_by_class(api, catalog):
    first_class, images = next(iter(catalog.items()))

    everything = api.get("/api/images/").json()
    of_class = api.get(f"/api/images/?class={first_class.pk}").json()
    one = api.get(f"/api/images/{images[0].pk}/").json()

    assert everything["count"] == 18 and "next" in everything
    assert of_class["count"] == 6 and {i["class"]["id"] for i in of_class["results"]} == {first_class.pk}
    assert one["id"] == images[0].pk and one["image_url"].endswith(images[0].file.name)
    assert_error(api.get("/api/images/?class=cats"), 400, "invalid_class")
    assert_error(api.get("/api/images/999999/"), 404, "not_found")


@pytest.mark.parametrize("value", ["0", "-4445583", "", "+1", "\u0663", "1.0", "last"])
def test_a_class_or_page_that_is_not_a_whole_number_from_1_is_refused(api, catalog, value):
    assert_error(api.get(f"/api/images/?class={value}"), 400, "invalid_class")
    assert_error(api.get(f"/api/images/?page={value}"), 400, "invalid_page")
    assert_error(api.get(f"/api/classes/?page={value}"), 400, "invalid_page")


@pytest.mark.parametrize("qid", ["", "\x00", "cat", "Q", "Q0", "q146", "Q146 "])
def test_a_qid_that_is_no_wikidata_id_is_refused(api, catalog, qid):
    assert_error(api.get("/api/classes/", {"qid": qid}), 400, "invalid_qid")


def test_a_page_past_the_last_is_not_found_in_the_error_shape(api, catalog):
    assert api.get("/api/images/?page=1").status_code == 200
    assert_error(api.get("/api/images/?page=2"), 404, "not_found")  # 18 images, 50 a page
    assert_error(api.get("/api/classes/?page=4503599627370497"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    ["/api/classes/null%2Cnull/", "/api/images/0.5/", "/api/images/0.5/similar/", "/api/images/x/similar/"],
)
def test_an_id_that_is_not_a_number_is_not_found_in_the_error_shape(api, catalog, path):
    # Not found before anything else is read: a bad k on an address that does not exist is still a 404.
    assert_error(api.get(path + "?k="), 404, "not_found")


def test_wiki_links_keep_the_whole_title(api):
    # ? would start a query, # a fragment, % an escape and " end an HTML attribute, were they left raw.
    made = WikidataClass.objects.create(label="odd", qid="Q42", enwiki_title='Is "C#" 100% Café?')

    listed = api.get(f"/api/classes/{made.pk}/").json()

    assert listed["wikipedia_url"] == "https://en.wikipedia.org/wiki/Is_%22C%23%22_100%25_Caf%C3%A9%3F"
    assert listed["wikidata_url"] == "https://www.wikidata.org/wiki/Q42"


def test_wiki_links_keep_slashes_and_colons_readable():
    made = WikidataClass(label="AC/DC", enwiki_title="Category:AC/DC (band)")

    assert made.wikipedia_url == "https://en.wikipedia.org/wiki/Category:AC/DC_(band)"


# --- Refusals: 4xx with {"error": {"code", "message"}}, never 5xx ------------------------------------


def test_a_search_without_a_picture_is_refused(api):
    assert_error(api.post("/api/search/", {}, format="multipart"), 400, "no_image")
    assert_error(api.post("/api/search/", {}, format="json"), 400, "no_image")


def test_a_picture_and_a_url_together_are_refused(api):
    response = api.post(
        "/api/search/",
        {"image": named(png_bytes(), "a.png"), "url": "https://example.org/a.png"},
        format="multipart",
    )

    assert_error(response, 400, "ambiguous_query")


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"hello, this is text", 400, "not_an_image"),
        (b"", 400, "empty"),
        (png_bytes((64, 64))[:60], 400, "truncated"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            415,
            "unsupported_type",
        ),
        (b"%PDF-1.7\n...", 415, "unsupported_type"),
        (png_header_only(100_000, 100_000), 400, "too_many_pixels"),
    ],
    ids=["text", "empty", "truncated", "svg", "pdf", "bomb"],
)
def test_bad_files_are_refused_with_a_reason(api, data, status, code):
    assert_error(api.post("/api/search/", {"image": named(data, "x.png")}, format="multipart"), status, code)


def test_a_file_over_the_upload_limit_is_refused_with_413(api, settings):
    settings.REVIMG_MAX_UPLOAD_MB = 1

    response = api.post(
        "/api/search/", {"image": named(b"\xff" * (2**20 + 1), "big.jpg")}, format="multipart"
    )

    assert_error(response, 413, "too_large")


def test_an_empty_url_beside_a_file_is_refused_not_ignored(api):
    response = api.post(
        "/api/search/", {"image": named(b"not a picture", "a.png"), "url": ""}, format="multipart"
    )

    assert_error(response, 400, "url_invalid")


def test_an_image_field_that_is_not_a_file_is_refused(api):
    assert_error(api.post("/api/search/", {"image": "cat.jpg"}, format="multipart"), 400, "invalid_image")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "parse_error"),
        ('["https://example.org/a.png"]', "application/json", 400, "invalid_body"),
        ('{"url": 42}', "application/json", 400, "url_invalid"),
        ('{"url": "http://127.0.0.1/a.png", "k": 0}', "application/json", 400, "invalid_k"),
        ('{"url": "http://127.0.0.1/a.png", "k": true}', "application/json", 400, "invalid_k"),
        ('{"url": "http://127.0.0.1/a.png", "k": null}', "application/json", 400, "invalid_k"),
        ('{"url": "http://127.0.0.1/a.png", "k": ""}', "application/json", 400, "invalid_k"),
        ("url=x", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_malformed_requests_are_refused(api, body, content_type, status, code):
    # The urls are loopback: were k misread, the guard refuses them before any lookup or connection.
    assert_error(api.generic("POST", "/api/search/", body, content_type=content_type), status, code)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://169.254.169.254/latest/meta-data/", "url_forbidden"),
        ("http://[::1]/x.png", "url_forbidden"),
        ("http://0x7f000001/x.png", "url_forbidden"),
        ("file:///etc/passwd", "url_scheme"),
        ("not a url", "url_invalid"),
    ],
)
def test_urls_to_private_places_are_refused(api, url, code):
    # Refused when the address is classified, before any connection (see test_url_fetch.py).
    assert_error(api.post("/api/search/", {"url": url}, format="json"), 400, code)
    assert_error(api.post("/api/search/", {"url": url}, format="multipart"), 400, code)


def test_other_methods_get_an_error_body_too(api):
    assert_error(api.get("/api/search/"), 405, "method_not_allowed")


# --- Throttling -------------------------------------------------------------------------------------


def test_anonymous_searches_are_throttled(api, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "2/minute"
    cache.clear()

    statuses = [api.post("/api/search/", {}, format="json").status_code for _ in range(3)]
    refused = api.post("/api/search/", {}, format="json")

    assert statuses == [400, 400, 429]
    assert_error(refused, 429, "throttled")
    assert int(refused["Retry-After"]) > 0
    cache.clear()


def test_an_empty_rate_means_no_throttle(api, settings):
    cache.clear()

    assert {api.post("/api/search/", {}, format="json").status_code for _ in range(40)} == {400}


# --- Schema, docs, health ---------------------------------------------------------------------------


def test_the_openapi_schema_is_valid_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/search/:" in schema and "/api/images/{id}/similar/:" in schema


def openapi_schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_schema_lists_and_explains_every_state_of_an_answer():
    schemas = openapi_schema()["components"]["schemas"]
    state = schemas["SearchResult"]["properties"]["state"]
    (ref,) = state["allOf"]

    assert schemas[ref["$ref"].split("/")[-1]]["enum"] == ["match", "closest", "no_match", "catalog"]
    for name, meaning in STATES.items():
        assert f"* `{name}` - {meaning}" in state["description"]


def test_the_schema_names_every_error_each_endpoint_can_answer():
    documented = {
        f"{method.upper()} {path}": sorted(operation["responses"])
        for path, methods in openapi_schema()["paths"].items()
        for method, operation in methods.items()
    }

    assert documented == {
        "GET /api/classes/": ["200", "400", "404", "503"],
        "GET /api/classes/{id}/": ["200", "404", "503"],
        "GET /api/images/": ["200", "400", "404", "503"],
        "GET /api/images/{id}/": ["200", "404", "503"],
        "GET /api/images/{id}/similar/": ["200", "400", "404", "429", "503"],
        "POST /api/search/": ["200", "400", "413", "415", "429", "503"],
    }


def test_the_schema_states_the_range_of_every_number_it_takes():
    paths = openapi_schema()["paths"]
    parameters = {
        (path, parameter["name"]): parameter["schema"]
        for path, methods in paths.items()
        for operation in methods.values()
        for parameter in operation.get("parameters", [])
        if parameter["schema"]["type"] == "integer"
    }

    whole_from_1 = {"type": "integer", "minimum": 1}
    assert parameters == {
        ("/api/classes/", "page"): whole_from_1,
        ("/api/classes/{id}/", "id"): whole_from_1,
        ("/api/images/", "class"): whole_from_1,
        ("/api/images/", "page"): whole_from_1,
        ("/api/images/{id}/", "id"): whole_from_1,
        ("/api/images/{id}/similar/", "id"): whole_from_1,
        ("/api/images/{id}/similar/", "k"): {**whole_from_1, "maximum": service.MAX_K},
    }


def test_the_api_docs_page_uses_no_cdn(client):
    response = client.get("/api/docs/")

    page = response.content.decode()
    assert response.status_code == 200 and "swagger-ui" in page
    assets = re.findall(r'(?:src|href)="([^"]+swagger-ui[^"]*)"', page)
    assert assets and all(asset.startswith("/static/") for asset in assets)
    assert all(client.get(asset).status_code == 200 for asset in assets)
    assert client.get("/api/schema/").status_code == 200


def test_a_search_makes_the_same_few_queries_whatever_k(api, catalog, django_assert_max_num_queries):
    image = next(iter(catalog.values()))[0]
    classstats.refresh()  # as an import leaves them

    # 7 at most: 1 of them reads the best class's stored statistics with its current fingerprint.
    with django_assert_max_num_queries(7) as few:
        api.get(f"/api/images/{image.pk}/similar/?k=2")
    with django_assert_max_num_queries(len(few.captured_queries)):
        api.get(f"/api/images/{image.pk}/similar/?k=17")  # no query per result row
