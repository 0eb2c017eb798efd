"""What one search query may cost a process: a picture decoded only as large as a search needs, a lower
pixel cap than imports have, and no more than REVIMG_DECODE_CONCURRENCY decodes at once (then 503 busy)."""

import io
import threading

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from catalog import store
from catalog.imagefile import ImageError
from search.decoding import decode_started
from search.inputs import decode_query, query_image
from tests.test_imagefile import png_with_declared_size

pytestmark = pytest.mark.django_db

HELD = 2
WAIT = 30  # seconds: a bound for a broken test, never reached when the code works


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None


def encoded(size, image_format, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=image_format)
    return out.getvalue()


def upload(data, name="query.png"):
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_the_trial_png_of_49_megapixels_is_refused_from_its_header_saying_the_limit():
    # What the trial sent: 7000x7000 declared. These bytes hold one pixel, so only the header was read.
    bomb = png_with_declared_size(7000, 7000)

    response = APIClient().post("/api/search/", {"image": upload(bomb)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_pixels"
    assert "7000x7000" in response.json()["error"]["message"]
    assert "16,000,000" in response.json()["error"]["message"]


def test_a_query_png_over_the_query_cap_is_refused_though_imports_accept_it(settings):
    settings.REVIMG_QUERY_MAX_PIXELS = 1_000_000
    data = encoded((1200, 1000), "PNG")

    with pytest.raises(ImageError) as refused:
        decode_query(data)

    assert refused.value.code == "too_many_pixels" and "1,000,000" in refused.value.message
    assert store.prepare(data).image.size == (1200, 1000)


def test_a_query_jpeg_over_the_query_cap_is_decoded_reduced_while_imports_keep_every_pixel(settings):
    # 12 MP in the file, decoded at half size (3 MP), kept at the query's short side.
    settings.REVIMG_QUERY_MAX_PIXELS = 4_000_000
    data = encoded((4000, 3000), "JPEG")

    assert decode_query(data).size == (1195, 896)
    assert store.prepare(data).image.size == (4000, 3000)


@pytest.fixture
def decodes_held(settings):
    """HELD query decodes running in threads, each held inside its slot until the test lets go."""
    settings.REVIMG_DECODE_CONCURRENCY = HELD
    settings.REVIMG_DECODE_WAIT_SECONDS = 0.2
    inside, release, decoded = threading.Semaphore(0), threading.Event(), []

    def hold(**kwargs):
        inside.release()
        release.wait(WAIT)

    decode_started.connect(hold)
    threads = [
        threading.Thread(target=lambda: decoded.append(query_image(upload=upload(encoded((64, 48), "PNG")))))
        for _ in range(HELD)
    ]
    for thread in threads:
        thread.start()
    for _ in range(HELD):
        assert inside.acquire(timeout=WAIT)
    yield release
    release.set()
    for thread in threads:
        thread.join(WAIT)
    decode_started.disconnect(hold)
    assert len(decoded) == HELD  # the held decodes finished too


def test_a_query_finding_every_decode_slot_taken_is_answered_busy_with_retry_after(decodes_held):
    response = APIClient().post(
        "/api/search/", {"image": upload(encoded((64, 48), "PNG"))}, format="multipart"
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "error": {
            "code": "busy",
            "message": "Too many pictures are being read right now. Please try again in a moment.",
        }
    }


def test_the_page_says_busy_and_when_to_try_again(client, decodes_held):
    response = client.post("/", {"image": upload(encoded((64, 48), "PNG"))})

    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert "Please try again in a few seconds." in response.content.decode()
    assert 'id="search-form"' in response.content.decode()


def test_a_decode_slot_let_go_serves_the_next_query(decodes_held):
    decodes_held.set()

    assert query_image(upload=upload(encoded((64, 48), "PNG"))).size == (64, 48)


def test_a_url_query_is_fetched_then_answered_busy_while_every_slot_is_taken(
    decodes_held, httpserver, settings
):
    httpserver.expect_request("/p.png").respond_with_data(encoded((64, 48), "PNG"), content_type="image/png")
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    response = APIClient().post("/api/search/", {"url": httpserver.url_for("/p.png")}, format="json")

    assert response.status_code == 503 and response.json()["error"]["code"] == "busy"
    assert len(httpserver.log) == 1  # the slot was waited for after the download, not during it
