"""The search page in a real browser (Debian's Chromium through Playwright) against a live server."""

import io

import pytest
from django.core.cache import cache
from PIL import Image
from skimage import data as skimage_data

from catalog import store
from tests.catalog_factories import make_catalog, make_class

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def page(browser, settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    cache.clear()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)  # the first search loads the image model
    yield page
    context.close()


def jpeg_file(tmp_path, image, name):
    path = tmp_path / name
    image.convert("RGB").save(path, format="JPEG", quality=90)
    return path


@pytest.fixture
def photo_catalog(caltech):
    """A small catalog of real photos, embedded for real: 4 classes of 8."""
    for folder in ("Faces", "Motorbikes", "airplanes", "strawberry"):
        wikidata_class = make_class(folder, qid={"Faces": "Q1373131"}.get(folder))
        for path in sorted((caltech / folder).iterdir())[:8]:
            store.add_image(wikidata_class, path.read_bytes(), origin="local")
    return caltech


def test_uploading_a_photo_shows_the_verdict_and_similar_pictures(page, live_server, photo_catalog):
    query = sorted((photo_catalog / "Faces").iterdir())[20]  # not in the catalog itself

    page.goto(live_server.url)
    page.set_input_files("#image-input", str(query))  # choosing a file searches at once
    page.wait_for_selector("#answer")

    assert page.locator("#answer").get_attribute("class").split()[-1] == "is-match"
    assert page.locator(".verdict-title").inner_text() == "Faces"
    assert page.locator("#answer a[href='https://www.wikidata.org/wiki/Q1373131']").count() == 1
    cards = page.locator("#results .card")
    assert cards.count() == 20
    assert cards.first.locator(".label").inner_text() == "Faces"
    assert cards.first.locator(".more").get_attribute("href").startswith("/?similar=")
    assert page.locator("#results img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    sure = page.locator("#answer .confidence").inner_text()
    assert sure.endswith("% sure that “Faces” is right.") and 36 <= int(sure.split("%")[0]) <= 100
    assert (
        page.locator("#answer .explain").inner_text()
        == "The confidence says how likely this answer is right."
    )


def test_more_like_this_from_a_result_card_answers_with_the_catalog_picture_s_own_class(
    page, live_server, photo_catalog
):
    query = sorted((photo_catalog / "strawberry").iterdir())[20]
    page.goto(live_server.url)
    page.set_input_files("#image-input", str(query))
    page.wait_for_selector("#answer")
    card = page.locator("#results .card").nth(1)
    label = card.locator(".label").inner_text()

    card.locator(".more").click()
    page.wait_for_selector("#answer.is-catalog")

    assert page.locator(".eyebrow").inner_text().lower() == "more like this"
    assert page.locator(".verdict-title").inner_text() == label
    assert page.locator("#answer .from").inner_text() == (
        f"A {label} picture from the catalog: its class is known, not guessed."
    )
    assert page.locator("#results .card").count() == 20
    assert (
        page.locator(".legend")
        .inner_text()
        .startswith("The percentage on each picture says how similar it is to the catalog picture you chose")
    )


def test_a_photo_of_nothing_in_the_catalog_says_so_once_above_the_closest(page, live_server, tmp_path):
    make_catalog(classes=3, per_class=4)  # made-up vectors: no photo looks like any of them
    coffee = jpeg_file(tmp_path, Image.fromarray(skimage_data.coffee()), "coffee.jpg")

    page.goto(live_server.url)
    page.set_input_files("#image-input", str(coffee))
    page.wait_for_selector("#answer")

    assert "is-no-match" in page.locator("#answer").get_attribute("class")
    assert page.locator(".verdict-title").inner_text() == "Nothing in the catalog looks like this."
    assert page.locator("#results .card").count() == 12
    assert page.locator(".results-title").inner_text() == "Closest pictures — not matches"
    assert page.get_by_text("not a match").count() == 0  # said once, in the heading; no badge on the cards
    assert page.locator(".legend").is_visible()
    assert page.locator("#results .similarity").first.inner_text().endswith("% similar")


# A picture drawn in the page, in a DataTransfer: what a drop or a paste hands to the page.
DRAWN_PICTURE = """async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 120; canvas.height = 90;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#3a7"; ctx.fillRect(0, 0, 120, 90);
    ctx.fillStyle = "#fc3"; ctx.beginPath(); ctx.arc(60, 45, 30, 0, 7); ctx.fill();
    const blob = await new Promise(done => canvas.toBlob(done, "image/png"));
    const files = new DataTransfer();
    files.items.add(new File([blob], "drawing.png", {type: "image/png"}));
    return files;
}"""


def test_a_dropped_picture_is_previewed_and_searched(page, live_server):
    make_catalog(classes=2, per_class=3)
    page.goto(live_server.url)

    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": page.evaluate_handle(DRAWN_PICTURE)})
    page.wait_for_selector("#answer")

    assert page.locator("#answer img.query").get_attribute("src").startswith("data:image/jpeg;base64,")
    assert page.locator("#results .card").count() == 6


def test_a_pasted_picture_is_searched(page, live_server):
    make_catalog(classes=2, per_class=3)
    page.goto(live_server.url)

    page.evaluate(
        "files => document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: files}))",
        page.evaluate_handle(DRAWN_PICTURE),
    )
    page.wait_for_selector("#answer")

    assert page.locator("#results .card").count() == 6


def test_a_file_that_is_not_a_picture_gets_an_error_in_plain_words(page, live_server, tmp_path):
    notes = tmp_path / "holiday.jpg"
    notes.write_text("this is not really a photo")

    page.goto(live_server.url)
    page.set_input_files("#image-input", str(notes))
    page.wait_for_selector("#error")

    assert page.locator("#error").inner_text().startswith("That file is not a picture we can read.")


def test_the_page_fits_a_phone_screen(browser, live_server, settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    make_catalog(classes=2, per_class=4)
    picture = io.BytesIO()
    Image.fromarray(skimage_data.chelsea()).save(picture, format="JPEG")
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)

    page.goto(live_server.url)
    page.set_input_files(
        "#image-input", {"name": "cat.jpg", "mimeType": "image/jpeg", "buffer": picture.getvalue()}
    )
    page.wait_for_selector("#answer")

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("#search-button").is_visible()
    assert page.evaluate(CARD_TEXT_INSIDE_ITS_CARD) == 8
    context.close()


# Cards whose label and similarity are shown whole (not cut or squeezed) and inside the card.
CARD_TEXT_INSIDE_ITS_CARD = """() => [...document.querySelectorAll("#results .card")].filter(card => {
    const box = card.getBoundingClientRect();
    return [".label", ".similarity"].every(selector => {
        const text = card.querySelector(selector), inner = text.getBoundingClientRect();
        return inner.width > 0 && text.scrollWidth <= text.clientWidth
            && inner.left >= box.left && inner.right <= box.right;
    });
}).length"""
