"""A curator in a real browser: log in, list the suspects, exclude the worst one, and search drops it."""

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


def similar_ids(page, base_url, image_id):
    response = page.request.get(f"{base_url}/api/images/{image_id}/similar/?k=50")
    assert response.ok, response.text()
    return [hit["id"] for hit in response.json()["results"]]


def test_curator_excludes_the_top_suspect_and_search_no_longer_returns_it(
    page, live_server, django_user_model, stray
):
    django_user_model.objects.create_superuser("curator", "curator@example.org", "a long test password")
    # A neighbour of the stray in its true class: "more like this" from it finds the stray first.
    neighbour = CatalogImage.objects.nearest(stray.embedding, k=2)[1]
    assert stray.pk in similar_ids(page, live_server.url, neighbour.pk)

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "a long test password")
    page.click("input[type=submit]")
    page.click("text=Suspects")
    page.click("#changelist-filter >> text=Outlier")
    first_row = page.locator("#result_list tbody tr").first
    assert f"#{stray.pk}" in first_row.inner_text()
    first_row.locator(f"button:has-text('Exclude #{stray.pk}')").click()

    assert f"Excluded #{stray.pk}" in page.locator(".messagelist").inner_text()
    assert stray.pk not in similar_ids(page, live_server.url, neighbour.pk)
    page.goto(f"{live_server.url}/admin/catalog/catalogimage/{stray.pk}/change/")
    assert "Excluded: outlier in its class" in page.content()
