"""The search page without a browser: the form, its CSRF protection, errors in words, "more like this",
the words of each state of an answer."""

import io
import re

import numpy as np
import pytest
from django.core.cache import cache
from django.test import Client
from PIL import Image
from skimage import data as skimage_data

from catalog.embedding import get_embedder
from catalog.imagefile import open_image
from search.verdict import CLOSEST_CONFIDENCE, MATCH_THRESHOLD
from tests.catalog_factories import centre, make_catalog, make_class, make_image, near, toward

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


def text_of(page, css_class):
    """The text of the first element of that class, tags and runs of spaces removed."""
    found = re.search(rf'class="{css_class}"[^>]*>(.*?)</(p|h1|h2|span)>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_more_like_this_names_the_catalog_picture_s_own_class_even_among_another_class_s_pictures(client):
    catalog = make_catalog(classes=2, per_class=5)
    (own, _), (other, _) = catalog.items()
    stray = make_image(own, 99, vector=near(centre(other.pk), 99))  # looks like the other class

    page = client.get(f"/?similar={stray.pk}").content.decode()

    assert 'class="answer is-catalog"' in page
    assert text_of(page, "verdict-title") == own.label
    assert (
        text_of(page, "from") == f"A {own.label} picture from the catalog: its class is known, not guessed."
    )
    assert text_of(page, "results-title") == "More pictures like this one"
    assert "Nothing in the catalog" not in page and "confidence" not in page.lower()


def test_each_card_says_its_similarity_in_words_and_a_legend_says_what_it_means(client):
    images = next(iter(make_catalog(classes=2, per_class=5).values()))

    page = client.get(f"/?similar={images[0].pk}").content.decode()

    similarities = re.findall(r'<span class="similarity">(-?\d+)% similar</span>', page)
    assert len(similarities) == 9
    assert text_of(page, "legend") == (
        "The percentage on each picture says how similar it is to the catalog picture you chose: "
        "100% is the same picture."
    )


def jpeg(array):
    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def search_page(client, picture):
    upload = io.BytesIO(picture)
    upload.name = "picture.jpg"
    # The post answers 303 to the upload's own address (search.shared); the answer is shown there.
    return client.post("/", {"image": upload}, follow=True).content.decode()


@pytest.mark.slow
def test_a_picture_whose_neighbours_agree_from_afar_gets_its_closest_class_with_low_confidence(client):
    picture = jpeg(skimage_data.coffee())
    query = get_embedder().embed([open_image(picture)])[0].astype(np.float64)
    far_cups = make_class("cup", qid="Q81727")  # its pictures at 0.47 from the query, all alike
    point = toward(query, 0.6, seed=1)
    for seed in range(4):
        make_image(far_cups, seed, vector=near(point, seed))
    others = make_class("lighthouse", qid="Q39715")
    for seed in range(4):
        make_image(others, 10 + seed)

    page = search_page(client, picture)

    assert 'class="answer is-closest"' in page
    assert text_of(page, "eyebrow") == "Closest class"
    assert text_of(page, "verdict-title") == "cup"
    sure = re.fullmatch(r"Low confidence: (\d+)% sure that “cup” is right\.", text_of(page, "confidence"))
    assert CLOSEST_CONFIDENCE * 100 - 1 <= int(sure.group(1)) < MATCH_THRESHOLD * 100
    assert text_of(page, "explain").startswith("Most of the nearest pictures are of this class, but none")
    assert text_of(page, "results-title") == "Closest pictures — not matches"
    assert "not a match" not in page and page.count("not matches") == 1  # said once, not on each card


@pytest.mark.slow
def test_a_picture_like_nothing_in_the_catalog_says_so_once(client):
    make_catalog(classes=3, per_class=4)  # made-up vectors: no photo looks like any of them

    page = search_page(client, jpeg(skimage_data.coffee()))

    assert 'class="answer is-no-match"' in page
    assert text_of(page, "verdict-title") == "Nothing in the catalog looks like this."
    assert "confidence" not in page.lower()
    assert page.count("not matches") == 1 and "not a match" not in page
    assert text_of(page, "legend").startswith(
        "The percentage on each picture says how similar it is to your picture"
    )


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
