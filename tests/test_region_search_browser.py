"""Shareable answers and the region tool in a real browser (Debian's Chromium through Playwright): an
upload's link reloads to the same answer; a box drawn with the mouse, the keyboard alone or a finger
searches that part of the picture at an address that says so."""

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from PIL import Image
from skimage import data as skimage_data

from tests.catalog_factories import make_catalog
from tests.pagewait import wait_until_true

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
SCREENSHOT = "/tmp/revimg-region-phone.png"  # looked at by whoever changes the page


@pytest.fixture
def context_for(browser, settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    cache.clear()
    make_catalog(classes=3, per_class=4)
    contexts = []

    refused_by_csp = []

    def new_page(**options):
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)  # the first search loads the image model
        # The box is placed through the CSSOM, which the page's CSP allows; an inline style would not be.
        page.on(
            "console",
            lambda message: "Content Security Policy" in message.text and refused_by_csp.append(message.text),
        )
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert refused_by_csp == []


def cat_jpeg():
    out = io.BytesIO()
    Image.fromarray(skimage_data.chelsea()).save(out, format="JPEG", quality=90)
    return {"name": "chelsea.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


def uploaded(page, live_server):
    page.goto(live_server.url)
    page.set_input_files("#image-input", cat_jpeg())
    page.wait_for_selector("#answer")
    # Boxes are drawn on the picture as laid out: wait until it has its size.
    wait_until_true(page, "document.getElementById('query-img').complete")
    return page


def answer_ids(page):
    return page.locator("#results .card .more").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )


def box_of(page):
    """The box= of the page's address, as four numbers."""
    [box] = parse_qs(urlsplit(page.url).query)["box"]
    return [float(edge) for edge in box.split(",")]


def searched_part(page):
    page.wait_for_url(re.compile(r"[?&]box="))
    page.wait_for_selector("#answer")
    return box_of(page)


def test_an_uploaded_photo_has_a_link_that_reloads_to_the_same_answer(context_for, live_server):
    page = uploaded(context_for(), live_server)
    link, first = page.url, answer_ids(page)

    page.reload()
    page.wait_for_selector("#answer")
    other = context_for()  # someone the link was sent to
    other.goto(link)

    assert re.fullmatch(r".*/\?upload=[A-Za-z0-9_-]{32}", link)
    assert len(first) == 12 and answer_ids(page) == first and answer_ids(other) == first
    assert other.locator("meta[name=robots]").get_attribute("content") == "noindex, nofollow"


def test_a_box_drawn_with_the_mouse_searches_that_part(context_for, live_server):
    page = uploaded(context_for(), live_server)
    picture = page.locator("#query-img").bounding_box()

    page.mouse.move(picture["x"] + 0.2 * picture["width"], picture["y"] + 0.1 * picture["height"])
    page.mouse.down()
    page.mouse.move(picture["x"] + 0.5 * picture["width"], picture["y"] + 0.4 * picture["height"], steps=5)
    page.mouse.move(picture["x"] + 0.7 * picture["width"], picture["y"] + 0.8 * picture["height"], steps=5)
    page.mouse.up()
    page.click("#region-search")

    assert_near(searched_part(page), [0.2, 0.1, 0.7, 0.8])
    rect = page.locator("#box-searched rect")
    assert rect.count() == 1 and abs(float(rect.get_attribute("x")) - 0.2) < 0.02
    # The answer's own box is where the tool starts: moved by dragging its middle, it keeps its size.
    region = page.locator("#region").bounding_box()
    middle = (region["x"] + region["width"] / 2, region["y"] + region["height"] / 2)
    page.mouse.move(*middle)
    page.mouse.down()
    page.mouse.move(middle[0] - 0.1 * picture["width"], middle[1], steps=5)
    page.mouse.up()
    page.click("#region-search")
    assert_near(searched_part(page), [0.1, 0.1, 0.6, 0.8])


def assert_near(box, expected, tolerance=0.02):
    assert len(box) == 4, box
    assert all(abs(a - b) <= tolerance for a, b in zip(box, expected, strict=True)), box


def test_the_keyboard_alone_moves_resizes_and_searches_a_box(context_for, live_server):
    page = uploaded(context_for(), live_server)

    for _ in range(40):  # Tab through the page to the box, as a keyboard user does
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "region":
            break
    outline = page.locator("#region").evaluate("box => getComputedStyle(box).outlineStyle")
    name = page.locator("#region").get_attribute("aria-label")
    for key, times in (("Shift+ArrowLeft", 10), ("Shift+ArrowUp", 10), ("ArrowRight", 5), ("ArrowDown", 5)):
        for _ in range(times):
            page.keyboard.press(key)
    status = page.locator("#region-status").inner_text()
    page.keyboard.press("Enter")

    assert searched_part(page) == [0.1, 0.1, 0.9, 0.9]
    assert outline == "solid" and name == "Part of the picture to search"
    assert status == "Selected: from 10% to 90% across, 10% to 90% down."


def test_a_finger_draws_a_box_on_a_phone(context_for, live_server):
    page = uploaded(context_for(viewport=PHONE, is_mobile=True, has_touch=True), live_server)
    picture = page.locator("#query-img").bounding_box()
    touch = page.context.new_cdp_session(page)

    def finger(kind, x, y):
        points = (
            []
            if kind == "touchEnd"
            else [{"x": picture["x"] + x * picture["width"], "y": picture["y"] + y * picture["height"]}]
        )
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    scrolled = page.evaluate("window.scrollY")
    finger("touchStart", 0.5, 0.3)
    for step in range(1, 6):
        finger("touchMove", 0.5 + step * 0.08, 0.3 + step * 0.1)
    # The finger stops before it lifts: lifted while moving, it flings, and Chromium takes the next tap
    # (on the button) as the one that stops the fling.
    page.wait_for_timeout(300)
    finger("touchMove", 0.9, 0.8)
    page.wait_for_timeout(300)
    finger("touchEnd", 0, 0)
    assert page.evaluate("window.scrollY") == scrolled  # the finger drew; the page did not scroll
    page.locator("#region-search").tap()

    assert_near(searched_part(page), [0.5, 0.3, 0.9, 0.8])
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#answer").screenshot(path=SCREENSHOT)
