"""POST /api/search/ with real pictures through the real image model: awkward formats, uploads and URLs.

The catalog here has synthetic vectors (the answers' shape is what is tested); the query goes through
decoding and the embedder for real.
"""

import io

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from tests.catalog_factories import make_catalog

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


@pytest.fixture
def api():
    make_catalog(classes=2, per_class=6)
    return APIClient()


def photo(size=(320, 240), mode="RGB"):
    """A smooth picture (gradients and a disc), so that large sizes stay small once compressed."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb)
    return image.convert(mode) if mode != "RGB" else image


def encoded(image, format, **options):
    out = io.BytesIO()
    image.save(out, format=format, **options)
    return out.getvalue()


def exif_rotated_jpeg():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    return encoded(photo(), "JPEG", exif=exif.tobytes())


def animated_gif():
    frames = [photo((64, 48)).convert("P"), photo((64, 48)).rotate(180).convert("P")]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


AWKWARD = {
    "cmyk.jpg": lambda: encoded(photo(mode="CMYK"), "JPEG"),
    "16bit.png": lambda: encoded(
        Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16)), "PNG"
    ),
    "alpha.png": lambda: encoded(photo(mode="RGBA"), "PNG"),
    "animated.gif": animated_gif,
    "photo.webp": lambda: encoded(photo(), "WEBP"),
    "photo.bmp": lambda: encoded(photo(), "BMP"),
    "photo.tiff": lambda: encoded(photo(), "TIFF"),
    "rotated.jpg": exif_rotated_jpeg,
    "tiny.png": lambda: encoded(photo((1, 1)), "PNG"),
    "12mp.jpg": lambda: encoded(photo((4000, 3000)), "JPEG", quality=80),
}


@pytest.mark.parametrize("name", list(AWKWARD))
def test_awkward_but_real_pictures_are_searched(api, name):
    upload = io.BytesIO(AWKWARD[name]())
    upload.name = name

    response = api.post("/api/search/", {"image": upload, "k": "3"}, format="multipart")

    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) == 3 and body["classes"]
    assert all(-1 <= r["similarity"] <= 1 for r in body["results"])


def test_a_picture_is_searched_by_url_from_an_allowed_server(api, httpserver, settings):
    httpserver.expect_request("/pictures/p.jpg").respond_with_data(
        encoded(photo(), "JPEG"), content_type="image/jpeg"
    )
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    url = httpserver.url_for("/pictures/p.jpg")

    as_json = api.post("/api/search/", {"url": url, "k": 2}, format="json")
    as_form = api.post("/api/search/", {"url": url}, format="multipart")

    assert as_json.status_code == 200 and len(as_json.json()["results"]) == 2
    assert as_form.status_code == 200 and len(as_form.json()["results"]) == 10
    assert as_json.json()["results"] == as_form.json()["results"][:2]


def test_a_url_that_is_not_a_picture_is_refused_like_an_upload(api, httpserver, settings):
    httpserver.expect_request("/page.html").respond_with_data(
        "<!doctype html><p>hello", content_type="text/html"
    )
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    response = api.post("/api/search/", {"url": httpserver.url_for("/page.html")}, format="json")

    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_type"


def test_an_empty_catalog_answers_that_nothing_matches():
    upload = io.BytesIO(encoded(photo(), "JPEG"))
    upload.name = "photo.jpg"

    response = APIClient().post("/api/search/", {"image": upload}, format="multipart")

    body = response.json()
    assert response.status_code == 200
    assert (body["state"], body["match"], body["confidence"]) == ("no_match", False, 0.0)
    assert (body["classes"], body["results"]) == ([], [])


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)
