"""A curator in a real browser: log in, list the suspects, exclude the worst one, and search drops it; the
image list fits its pane; the picture grid works from the keyboard."""

import pytest

from catalog.models import CatalogImage
from catalog.suspects import find_suspects
from tests.catalog_factories import centre, make_catalog, make_image, near

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture
def stray():
    """A catalog with one image filed under the wrong class, suspects computed."""
    first, second = list(make_catalog(classes=3, per_class=8))[:2]
    image = make_image(first, 500, vector=near(centre(second.pk), 500))
    find_suspects()
    return image


def log_in(page, base_url):
    page.goto(f"{base_url}/admin/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "a long test password")
    page.click("input[type=submit]")


def similar_ids(page, base_url, image_id):
    response = page.request.get(f"{base_url}/api/images/{image_id}/similar/?k=50")
    assert response.ok, response.text()
    return [hit["id"] for hit in response.json()["results"]]


def test_curator_excludes_the_top_suspect_and_search_no_longer_returns_it(page, live_server, curator, stray):
    # A neighbour of the stray in its true class: "more like this" from it finds the stray first.
    neighbour = CatalogImage.objects.nearest(stray.embedding, k=2)[1]
    assert stray.pk in similar_ids(page, live_server.url, neighbour.pk)

    log_in(page, live_server.url)
    page.click("text=Suspects")
    page.click("#changelist-filter >> text=Outlier")
    first_row = page.locator("#result_list tbody tr").first
    assert f"#{stray.pk}" in first_row.inner_text()
    first_row.locator(f"button:has-text('Exclude #{stray.pk}')").click()

    assert f"Excluded #{stray.pk}" in page.locator(".messagelist").inner_text()
    assert stray.pk not in similar_ids(page, live_server.url, neighbour.pk)
    page.goto(f"{live_server.url}/admin/catalog/catalogimage/{stray.pk}/change/")
    assert "Excluded: outlier in its class" in page.content()


@pytest.fixture
def curator(django_user_model):
    return django_user_model.objects.create_superuser(
        "curator", "curator@example.org", "a long test password"
    )


@pytest.fixture
def long_texts(stray):
    """Rows whose texts are as long as crawled ones get: a long class label, a licence with its version."""
    CatalogImage.objects.filter(pk=stray.pk).update(
        license="Creative Commons Attribution-Share Alike 4.0 International"
    )
    stray.wikidata_class.label = "lighthouse with a very long name from Wikidata, as some classes have"
    stray.wikidata_class.save()
    return stray


def overflow(page, selector):
    """How many pixels the element's content is wider than the element itself (0: it fits)."""
    return page.eval_on_selector(selector, "e => e.scrollWidth - e.clientWidth")


def test_the_image_list_fits_a_1280_px_screen_with_the_suspicion_column_in_view(
    page, live_server, curator, long_texts, tmp_path
):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/catalog/catalogimage/?suspect=any")
    page.screenshot(path=tmp_path / "image-list-1280.png", full_page=True)

    assert overflow(page, "html") == 0
    assert overflow(page, "#changelist .results") == 0
    suspicion = page.locator("#result_list th.column-suspicion")
    assert suspicion.is_visible()
    box = suspicion.bounding_box()
    assert box["x"] + box["width"] <= 1280
    first_score = page.locator("#result_list td.field-suspicion").first
    assert first_score.is_visible() and first_score.inner_text().strip() != ""


def test_the_image_list_at_phone_width_scrolls_inside_its_table_not_the_page(
    page, live_server, curator, long_texts, tmp_path
):
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/catalog/catalogimage/?suspect=any")
    page.screenshot(path=tmp_path / "image-list-390.png", full_page=True)

    assert overflow(page, "html") == 0
    suspicion = page.locator("#result_list th.column-suspicion")
    suspicion.scroll_into_view_if_needed()  # the table scrolls sideways within its pane
    box = suspicion.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390


def test_a_curator_excludes_two_pictures_from_the_class_grid_with_the_keyboard_alone(
    page, live_server, curator, stray, tmp_path
):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url)
    wikidata_class = stray.wikidata_class
    first, second = wikidata_class.images.order_by("id")[:2]
    page.goto(f"{live_server.url}/admin/catalog/wikidataclass/{wikidata_class.pk}/pictures/")

    page.focus("#grid-reason")
    page.keyboard.type("blurred")
    page.keyboard.press("Tab")  # Exclude selected
    page.keyboard.press("Tab")  # the first picture's checkbox
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # its details link
    page.keyboard.press("Tab")  # the second picture's checkbox
    page.keyboard.press("Space")
    page.screenshot(path=tmp_path / "class-grid-ticked.png", full_page=True)
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")

    page.wait_for_selector(".messagelist")
    assert f"Excluded 2 pictures of {wikidata_class.label}" in page.locator(".messagelist").inner_text()
    excluded = CatalogImage.objects.filter(status=CatalogImage.Status.EXCLUDED)
    assert set(excluded.values_list("pk", "status_reason")) == {(first.pk, "blurred"), (second.pk, "blurred")}
    assert page.locator(f"button[name=include][value='{first.pk}']").is_visible()
    page.screenshot(path=tmp_path / "class-grid-excluded.png", full_page=True)


def test_a_curator_keeps_one_of_four_copies_with_one_click(page, live_server, curator, tmp_path):
    from tests.test_admin_clusters import copies_of

    first = list(make_catalog(classes=2, per_class=6))[0]
    copies = copies_of(first, 700, 4)
    find_suspects()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/catalog/suspect/?kind__exact=duplicate")
    page.screenshot(path=tmp_path / "suspects-cluster-1280.png", full_page=True)
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("button:has-text('Keep this one')").count() == 4
    rows.first.locator(f"button[value='keep-{copies[1].pk}']").click()

    assert f"Kept #{copies[1].pk}" in page.locator(".messagelist").inner_text()
    excluded = CatalogImage.objects.filter(status=CatalogImage.Status.EXCLUDED)
    assert set(excluded.values_list("pk", flat=True)) == {copies[0].pk, copies[2].pk, copies[3].pk}
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/admin/catalog/suspect/?kind__exact=duplicate&state=resolved")
    page.screenshot(path=tmp_path / "suspects-resolved-390.png", full_page=True)
    assert page.locator("#result_list tbody tr").count() == 1
    assert page.locator("button:has-text('Keep this one')").count() == 0
