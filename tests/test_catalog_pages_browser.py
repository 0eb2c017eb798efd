"""The catalog's pages in a real browser (Debian's Chromium through Playwright) against a live server:
from a result to its picture page, its class, "more like this"; the filter box; phone and desktop widths.

Screenshots of each page at both widths are left in the test's tmp dir (printed) for a person to look at.
"""

import re

import pytest
from django.core.cache import cache

from tests import test_search_page_browser as search_page_browser
from tests.catalog_factories import make_image
from tests.pagewait import wait_until_true

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

photo_catalog = search_page_browser.photo_catalog

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def open_page(browser, settings):
    """A function opening a page of the given viewport; every context is closed after the test."""
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    cache.clear()
    contexts = []

    def open_page(viewport):
        phone = viewport == PHONE
        context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)  # the first search loads the image model
        return page

    yield open_page
    for context in contexts:
        context.close()


def shoot(page, tmp_path, name):
    wait_until_true(page, "[...document.images].every(img => img.complete)")
    path = tmp_path / f"{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


def images_loaded(page, selector):
    return page.locator(selector).evaluate_all(
        "imgs => imgs.every(img => img.complete && img.naturalWidth > 0)"
    )


def test_a_result_leads_to_its_picture_page_its_class_and_more_like_this(
    open_page, live_server, photo_catalog, tmp_path
):
    page = open_page(DESKTOP)
    page.goto(live_server.url)
    page.set_input_files("#image-input", str(sorted((photo_catalog / "Faces").iterdir())[20]))
    page.wait_for_selector("#answer")

    page.locator("#results .card .thumb").first.click()
    page.wait_for_url(re.compile(r"/images/\d+/$"))
    assert page.locator("h1").inner_text() == "Faces"
    assert images_loaded(page, ".picture img")
    assert page.locator("#full-picture").get_attribute("href").startswith("/media/images/")
    shoot(page, tmp_path, "picture")

    page.locator("#class-link").click()
    page.wait_for_url(re.compile(r"/classes/\d+/$"))
    assert page.locator("h1").inner_text() == "Faces"
    assert page.locator("a[href='https://www.wikidata.org/wiki/Q1373131']").count() == 1
    assert page.locator("#pictures .tile").count() == 8
    assert images_loaded(page, "#pictures img")
    shoot(page, tmp_path, "class")

    page.locator("#pictures .tile").nth(3).click()
    page.wait_for_url(re.compile(r"/images/\d+/$"))
    picture_id = re.search(r"/images/(\d+)/$", page.url).group(1)
    page.locator("#more-like-this").click()
    page.wait_for_selector("#answer .from")
    assert page.url.endswith(f"/?similar={picture_id}")
    assert page.locator("#results .card").count() == 20


def test_the_class_list_is_reached_from_the_home_and_filtered(
    open_page, live_server, photo_catalog, tmp_path
):
    page = open_page(DESKTOP)
    page.goto(live_server.url)
    assert "The catalog holds 32 pictures of 4 classes" in page.locator("#catalog-summary").inner_text()

    page.get_by_role("link", name="Browse all classes").click()
    page.wait_for_url(re.compile(r"/classes/$"))
    assert page.locator("#classes .class-name").all_inner_texts() == [
        "airplanes",
        "Faces",
        "Motorbikes",
        "strawberry",
    ]
    assert images_loaded(page, "#classes img")
    shoot(page, tmp_path, "classes")

    page.get_by_label("Filter by name").fill("MOTOR")
    page.get_by_label("Filter by name").press("Enter")
    page.wait_for_url(re.compile(r"\?q=MOTOR$"))
    assert page.locator("#classes .class-name").all_inner_texts() == ["Motorbikes"]

    page.get_by_label("Filter by name").fill("zeppelin")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_selector("#no-classes")
    page.get_by_role("link", name="Clear the filter").click()
    page.wait_for_url(re.compile(r"/classes/$"))
    assert page.locator("#classes .class-name").count() == 4


def test_the_catalog_pages_fit_a_phone_and_a_desktop(open_page, live_server, photo_catalog, tmp_path):
    from catalog.models import CatalogImage, WikidataClass

    # A label longer than a phone's width, with no place to break it.
    long_label = WikidataClass.objects.create(label="Pneumonoultramicroscopicsilicovolcanoconiosis" * 2)
    make_image(long_label, 1)
    picture = CatalogImage.objects.filter(wikidata_class__label="Faces").order_by("id").first()
    addresses = {
        "home": "/",
        "picture": f"/images/{picture.pk}/",
        "class": f"/classes/{picture.wikidata_class_id}/",
        "long-class": f"/classes/{long_label.pk}/",
        "classes": "/classes/",
    }

    for viewport in (PHONE, DESKTOP):
        page = open_page(viewport)
        for name, address in addresses.items():
            page.goto(live_server.url + address)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], name
            if name != "home":  # the search page's headings are not these pages' business
                assert page.locator("h1").count() == 1, name
            shoot(page, tmp_path, name)
