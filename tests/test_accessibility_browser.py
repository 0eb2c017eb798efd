"""Every page, at desktop and phone width, has no serious or critical accessibility violation as axe-core
finds them in Chromium (tests/axe.py).

Each page is reached by a builder that takes the browser page to it as a person would; a new page is one
more builder in PAGES.
"""

import pytest
from django.core.cache import cache
from PIL import Image
from skimage import data as skimage_data

from catalog.models import CatalogImage
from tests.axe import assert_no_serious_violations, axe_context
from tests.catalog_factories import make_catalog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def home(page, url, tmp_path):
    page.goto(url)


def results_of_a_match(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)
    # "More like this" on a catalog picture: the picture itself is found, a certain match.
    page.goto(f"{url}/?similar={CatalogImage.objects.order_by('pk').first().pk}")
    page.wait_for_selector("#answer.is-match")


def no_match(page, url, tmp_path):
    make_catalog(classes=3, per_class=4)  # made-up vectors: no photo looks like any of them
    coffee = tmp_path / "coffee.jpg"
    Image.fromarray(skimage_data.coffee()).save(coffee, format="JPEG")
    page.goto(url)
    page.set_input_files("#image-input", str(coffee))
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


PAGES = [home, results_of_a_match, no_match, refused_upload, refused_choice, not_found]


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
