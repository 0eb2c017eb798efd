"""Every page, at desktop and phone width, has no serious or critical accessibility violation as axe-core
finds them in Chromium (tests/axe.py).

Each page is reached by a builder that takes the browser page to it as a person would; a new page is one
more builder in PAGES.
"""

import numpy as np
import pytest
from django.core.cache import cache
from PIL import Image
from skimage import data as skimage_data

from catalog.embedding import get_embedder
from catalog.imagefile import open_image
from catalog.models import CatalogImage, WikidataClass
from tests.axe import assert_no_serious_violations, axe_context
from tests.catalog_factories import make_catalog, make_class, make_image, near, toward

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def home(page, url, tmp_path):
    page.goto(url)


def coffee_photo(tmp_path):
    coffee = tmp_path / "coffee.jpg"
    Image.fromarray(skimage_data.coffee()).save(coffee, format="JPEG")
    return coffee


def cups_around_the_coffee(coffee, similarity):
    """A class "cup" whose pictures lie at about similarity from the coffee photo's vector."""
    query = get_embedder().embed([open_image(coffee.read_bytes())])[0].astype(np.float64)
    cups = make_class("cup", qid="Q81727")
    point = toward(query, similarity, seed=1)
    for seed in range(4):
        make_image(cups, seed, vector=near(point, seed))
    others = make_class("lighthouse", qid="Q39715")
    for seed in range(4):
        make_image(others, 10 + seed)


def search_the_coffee(page, url, tmp_path, similarity, state):
    coffee = coffee_photo(tmp_path)
    cups_around_the_coffee(coffee, similarity)
    page.goto(url)
    page.set_input_files("#image-input", str(coffee))
    page.wait_for_selector(f"#answer.is-{state}")


def results_of_a_match(page, url, tmp_path):
    search_the_coffee(page, url, tmp_path, similarity=0.9, state="match")


def results_of_the_closest_class(page, url, tmp_path):
    search_the_coffee(page, url, tmp_path, similarity=0.6, state="closest")


def more_like_a_catalog_picture(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)
    page.goto(f"{url}/?similar={CatalogImage.objects.order_by('pk').first().pk}")
    page.wait_for_selector("#answer.is-catalog")


def a_part_of_an_upload(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)
    page.goto(url)
    page.set_input_files("#image-input", str(coffee_photo(tmp_path)))
    page.wait_for_selector("#answer")
    page.goto(page.url + "&box=0.2,0.2,0.7,0.7")
    page.wait_for_selector("#box-searched", state="attached")  # the region tool draws its own box over it


def an_expired_link(page, url, tmp_path):
    response = page.goto(f"{url}/?upload={'x' * 32}")
    assert response.status == 404


def picture_page(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)
    page.goto(f"{url}/images/{CatalogImage.objects.order_by('pk').first().pk}/")


def class_page(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)
    page.goto(f"{url}/classes/{WikidataClass.objects.order_by('pk').first().pk}/")


def class_list(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)
    page.goto(f"{url}/classes/")


def class_list_filtered_to_nothing(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)
    page.goto(f"{url}/classes/?q=zeppelin")


def no_match(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)  # made-up vectors: no photo looks like any of them
    page.goto(url)
    page.set_input_files("#image-input", str(coffee_photo(tmp_path)))
    page.wait_for_selector("#answer.is-no-match")


def refused_upload(page, url, tmp_path):
    notes = tmp_path / "holiday.jpg"
    notes.write_text("this is not really a photo")
    page.goto(url)
    page.set_input_files("#image-input", str(notes))
    page.wait_for_selector("#error")


def refused_choice(page, url, tmp_path):
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4\n")
    page.goto(url)
    page.set_input_files("#image-input", str(report))
    page.wait_for_selector("#drop-status.is-refused")


def not_found(page, url, tmp_path):
    response = page.goto(f"{url}/no-such-page/")
    assert response.status == 404


PAGES = [
    home,
    results_of_a_match,
    results_of_the_closest_class,
    more_like_a_catalog_picture,
    no_match,
    a_part_of_an_upload,
    refused_upload,
    refused_choice,
    not_found,
    an_expired_link,
    picture_page,
    class_page,
    class_list,
    class_list_filtered_to_nothing,
]


@pytest.fixture
def unlimited_searches(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    cache.clear()


@pytest.mark.parametrize("screen", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("reach", PAGES, ids=[builder.__name__ for builder in PAGES])
def test_the_page_has_no_serious_accessibility_violation(
    browser, live_server, tmp_path, unlimited_searches, reach, screen
):
    context = axe_context(browser, **screen)
    page = context.new_page()
    page.set_default_timeout(60_000)  # the first search loads the image model
    try:
        reach(page, live_server.url, tmp_path)
        assert page.locator("h1").count() == 1  # axe calls a missing one moderate; we want one
        assert_no_serious_violations(page)
    finally:
        context.close()
