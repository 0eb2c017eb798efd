"""Shareable searches and boxes through the real image model: an upload's link answers as the upload did,
a search by URL as a GET, and a box is cropped before the model sees the picture (page and API)."""

import io

import numpy as np
import pytest
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient
from skimage import data as skimage_data

from catalog.embedding import get_embedder
from search.models import SharedQuery
from tests.catalog_factories import make_catalog

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def catalog(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    return make_catalog(classes=3, per_class=5)


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


def cat_picture():
    """A real photo, 450x300 (even sides: a half is a whole number of pixels), small enough to be decoded
    as it is."""
    return Image.fromarray(skimage_data.chelsea()).crop((0, 0, 450, 300))


def png(image, name="cat.png"):
    out = io.BytesIO()
    image.save(out, format="PNG")
    out.seek(0)
    out.name = name
    return out


def hits(result):
    return [(hit.image.pk, round(hit.similarity, 5)) for hit in result.results]


def cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def api_hits(response):
    assert response.status_code == 200, response.content
    return [(hit["id"], round(hit["similarity"], 5)) for hit in response.json()["results"]]


def test_an_upload_answers_at_a_link_that_reloads_to_the_same_answer():
    client = Client()

    posted = client.post("/", {"image": png(cat_picture())})
    first, again = client.get(posted["Location"]), client.get(posted["Location"])

    assert posted.status_code == 303 and posted["Location"].startswith("/?upload=")
    assert first.status_code == again.status_code == 200
    assert hits(first.context["result"]) == hits(again.context["result"])
    direct = APIClient().post("/api/search/", {"image": png(cat_picture()), "k": 20}, format="multipart")
    assert hits(first.context["result"]) == api_hits(direct)  # the stored vector is the picture's own
    assert SharedQuery.objects.count() == 1


def test_a_search_by_url_is_a_get_that_shows_the_address(httpserver, settings):
    httpserver.expect_request("/cats/chelsea.png").respond_with_data(
        png(cat_picture()).getvalue(), content_type="image/png"
    )
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    url = httpserver.url_for("/cats/chelsea.png")

    response = Client().get("/", {"url": url})

    page = response.content.decode()
    assert response.status_code == 200 and len(response.context["result"].results) == 15
    assert (
        f'id="url-input" inputmode="url" placeholder="…or paste the address of a picture" value="{url}"'
        in page
    )
    assert f'<input type="hidden" name="url" value="{url}">' in page  # the region tool searches it again
    assert "X-Robots-Tag" not in response  # an address anyone can type is no secret


def test_a_box_searches_only_that_part_of_a_kept_upload():
    client = Client()
    link = client.post("/", {"image": png(cat_picture())})["Location"]

    right_half = client.get(link + "&box=0.5,0,1,1")

    searched = right_half.context["result"].vector
    right, left, whole = get_embedder().embed(
        [cat_picture().crop((225, 0, 450, 300)), cat_picture().crop((0, 0, 225, 300)), cat_picture()]
    )
    # The kept picture is a JPEG of the upload, so its half is the upload's half but for small losses.
    assert cosine(searched, right) > 0.98
    assert cosine(searched, right) > max(cosine(searched, left), cosine(searched, whole)) + 0.05
    page = right_half.content.decode()
    assert '<rect x="0.5" y="0.0" width="0.5" height="1.0"/>' in page  # the part searched, drawn
    assert 'name="box" id="region-box" value="0.5,0,1,1"' in page


def test_the_api_crops_the_box_before_the_model_sees_the_picture(httpserver, settings):
    httpserver.expect_request("/cat.png").respond_with_data(
        png(cat_picture()).getvalue(), content_type="image/png"
    )
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    api = APIClient()

    from_form = api.post(
        "/api/search/", {"image": png(cat_picture()), "box": "0,0.5,0.5,1"}, format="multipart"
    )
    from_json = api.post(
        "/api/search/", {"url": httpserver.url_for("/cat.png"), "box": "0,0.5,0.5,1"}, format="json"
    )
    bottom_left = api.post(
        "/api/search/", {"image": png(cat_picture().crop((0, 150, 225, 300)))}, format="multipart"
    )
    whole = api.post("/api/search/", {"image": png(cat_picture())}, format="multipart")

    assert api_hits(from_form) == api_hits(from_json) == api_hits(bottom_left) != api_hits(whole)


def test_a_box_on_a_catalog_picture_searches_that_part_of_its_file(catalog):
    image = next(iter(catalog.values()))[0]

    response = Client().get("/", {"similar": image.pk, "box": "0,0,1,1"})

    assert response.status_code == 200 and response.context["result"].query_image == image
    assert image.thumbnail.url in response.content.decode()
    # Searched as a picture (the model ran on the file), not from the stored vector.
    assert response.context["result"].timings.get("embedding", 0) > 0
