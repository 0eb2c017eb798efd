"""The search page without a browser: the form, its CSRF protection, errors in words, "more like this"."""

import pytest
from django.core.cache import cache
from django.test import Client

from tests.catalog_factories import make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


def test_the_page_offers_a_file_a_camera_and_a_url(client):
    page = client.get("/").content.decode()

    assert 'type="file" name="image"' in page and 'accept="image/*"' in page
    assert 'name="url"' in page and 'enctype="multipart/form-data"' in page
    assert "csrfmiddlewaretoken" in page
    assert 'name="viewport"' in page  # phone-sized screens


def test_a_post_without_the_csrf_token_is_refused():
    strict = Client(enforce_csrf_checks=True)

    assert strict.post("/", {"url": "https://example.org/a.jpg"}).status_code == 403


def test_an_empty_search_says_what_to_do(client):
    response = client.post("/", {})

    assert response.status_code == 400
    assert "Choose a picture, or give the address of one." in response.content.decode()


def test_a_file_that_is_not_a_picture_is_explained(client, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("shopping list: eggs, milk")

    with text.open("rb") as upload:
        response = client.post("/", {"image": upload})

    assert response.status_code == 400
    assert "That file is not a picture we can read." in response.content.decode()


def test_more_like_this_shows_the_catalog_picture_and_its_neighbours(client):
    catalog = make_catalog(classes=2, per_class=5)
    first_class, images = next(iter(catalog.items()))

    response = client.get(f"/?similar={images[0].pk}")

    page = response.content.decode()
    assert response.status_code == 200
    assert images[0].thumbnail.url in page  # the query, shown back
    assert page.count('<li class="card') == 9  # every other image
    assert f"https://www.wikidata.org/wiki/{first_class.qid}" in page
    assert f"?similar={images[1].pk}" in page


def test_more_like_this_of_an_unknown_picture_is_a_404_page(client):
    response = client.get("/?similar=424242")

    assert response.status_code == 404 and "no longer in the catalog" in response.content.decode()


def test_the_page_is_throttled_like_the_api(client, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "1/minute"
    cache.clear()

    client.post("/", {})
    response = client.post("/", {})

    assert response.status_code == 429 and "wait a minute" in response.content.decode()
    cache.clear()
