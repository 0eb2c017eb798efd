"""The drop zone's file chooser in Chromium: what was chosen is said at once, a file that cannot be searched
is never sent, and without JavaScript the native control shows the chosen file and Search sends it."""

import pytest
from django.core.cache import cache
from PIL import Image
from playwright.sync_api import expect
from skimage import data as skimage_data

from tests.catalog_factories import make_catalog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def unlimited_searches(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    cache.clear()


def open_page(browser, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.set_default_timeout(60_000)  # the first search loads the image model
    return context, page


def test_a_chosen_file_that_is_not_a_picture_is_refused_at_once_and_never_sent(
    browser, live_server, tmp_path
):
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4\n% a report, not a picture\n")
    context, page = open_page(browser)
    page.goto(live_server.url)
    requests = []
    # The page's icon may load at any moment; any other request would be the refused file being sent.
    page.on(
        "request",
        lambda request: None if request.url.endswith("/favicon.svg") else requests.append(request.url),
    )

    page.set_input_files("#image-input", str(report))

    status = page.locator("#drop-status")
    expect(status).to_have_text("report.pdf is not a picture: choose a JPEG, PNG, WebP, GIF, BMP or TIFF.")
    assert page.locator("#image-input").evaluate("input => input.files.length") == 0
    page.click("#search-button")  # nothing is left to send: the form asks for a picture instead
    page.wait_for_timeout(500)
    assert requests == []
    context.close()


# What the drop zone said when the form was sent, kept in sessionStorage, which outlives the navigation.
KEEP_WHAT_WAS_SAID = """() => document.getElementById("search-form").addEventListener("submit", () => {
    sessionStorage.setItem("said", document.getElementById("drop-status").textContent);
})"""


def test_a_chosen_picture_is_named_with_its_size_as_it_is_searched(
    browser, live_server, tmp_path, unlimited_searches
):
    make_catalog(classes=2, per_class=3)
    coffee = tmp_path / "coffee.jpg"
    Image.fromarray(skimage_data.coffee()).save(coffee, format="JPEG")
    kilobytes = round(coffee.stat().st_size / 1000)
    context, page = open_page(browser)
    page.goto(live_server.url)
    page.evaluate(KEEP_WHAT_WAS_SAID)

    page.set_input_files("#image-input", str(coffee))
    page.wait_for_selector("#answer")

    assert page.evaluate("sessionStorage.getItem('said')") == f"coffee.jpg ({kilobytes} kB): searching…"
    context.close()


def test_without_javascript_the_chosen_file_is_shown_and_search_sends_it(
    browser, live_server, tmp_path, unlimited_searches
):
    make_catalog(classes=2, per_class=3)
    coffee = tmp_path / "coffee.jpg"
    Image.fromarray(skimage_data.coffee()).save(coffee, format="JPEG")
    context, page = open_page(browser, java_script_enabled=False)
    page.goto(live_server.url)

    page.set_input_files("#image-input", str(coffee))

    chooser = page.locator("#image-input")
    assert chooser.is_visible()
    assert chooser.evaluate("input => getComputedStyle(input).opacity") == "1"
    assert chooser.bounding_box()["width"] >= 100  # wide enough for the control to show the name
    assert chooser.evaluate("input => input.files[0].name") == "coffee.jpg"
    page.click("#search-button")
    page.wait_for_selector("#answer")
    assert page.locator("#results .card").count() == 6
    context.close()
