"""What the admin's pages say: revimg's name everywhere, list columns that hold values, and a Suspects page
that explains itself even when empty."""

import re

import pytest
from django.urls import reverse

from catalog.models import CatalogImage, WikidataClass
from catalog.suspects import find_suspects
from tests.catalog_factories import centre, make_catalog, make_class, make_image, near

pytestmark = pytest.mark.django_db

IMAGES = reverse("admin:catalog_catalogimage_changelist")
CLASSES = reverse("admin:catalog_wikidataclass_changelist")
SUSPECTS = reverse("admin:catalog_suspect_changelist")


def headers(response):
    """The column titles of the change list's table."""
    table = re.search(r'<table id="result_list">.*?</thead>', response.text, re.S).group(0)
    return [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<div class="text">(.*?)</div>', table)
    ]


@pytest.mark.parametrize("page", ["admin:login", "admin:index", "admin:catalog_catalogimage_changelist"])
def test_every_admin_page_says_revimg_not_django(admin_client, client, page):
    response = (client if page == "admin:login" else admin_client).get(reverse(page))

    assert "revimg curation" in response.text
    assert "Django administration" not in response.text and "Django site admin" not in response.text


def test_the_image_list_has_few_narrow_columns_with_suspicion_among_them(admin_client):
    catalog = make_catalog(classes=2, per_class=6)
    first, second = list(catalog)
    stray = make_image(first, 500, vector=near(centre(second.pk), 500), license="CC BY-SA 4.0 International")
    find_suspects()

    response = admin_client.get(IMAGES, {"suspect": "any"})

    assert headers(response)[1:] == ["Image", "ID", "Class", "Status", "Vector", "Licence", "Suspicion"]
    row = re.search(rf'<tr>.*?value="{stray.pk}".*?</tr>', response.text, re.S).group(0)
    score = response.context["cl"].result_list[0].suspect_score
    assert f'<td class="field-suspicion">{score:.2f}</td>' in row
    assert '<span class="truncated" title="CC BY-SA 4.0 International">' in row
    assert '<td class="field-vector_state">current</td>' in row


def test_a_class_imported_from_a_folder_shows_its_picture_count_and_first_picture_not_dashes(admin_client):
    local = make_class("teapot")
    images = [make_image(local, seed) for seed in (1, 2, 3)]
    CatalogImage.objects.filter(pk=images[0].pk).update(status=CatalogImage.Status.EXCLUDED)
    crawled = WikidataClass.objects.create(label="lighthouse", qid="Q39715", description="tower with a light")

    response = admin_client.get(CLASSES)

    assert headers(response)[1:] == ["Picture", "Class", "From", "Pictures", "Excluded"]
    teapot = re.search(r"<tr>.*?teapot.*?</tr>", response.text, re.S).group(0)
    assert images[1].thumbnail.url in teapot  # the first searchable picture stands for it
    assert '<td class="field-source">local</td>' in teapot
    assert ">3</a></td>" in teapot and '<td class="field-excluded_count">1</td>' in teapot
    assert "-</td>" not in teapot and "—" not in teapot
    lighthouse = re.search(r"<tr>.*?lighthouse.*?</tr>", response.text, re.S).group(0)
    assert f'<a href="{crawled.wikidata_url}">Q39715</a>' in lighthouse
    assert "no picture" in lighthouse
    assert '<br><small class="truncated" title="tower with a light">tower with a light</small>' in lighthouse


def test_the_empty_suspects_page_says_what_it_shows_and_that_the_search_has_not_run(admin_client):
    response = admin_client.get(SUSPECTS)

    hint = re.search(r'<div class="suspects-hint".*?</div>', response.text, re.S).group(0)
    assert "manage.py find_suspects" in hint and "upkeep job" in hint
    assert "The suspect search has not run yet." in hint


def test_the_suspects_page_says_when_the_search_last_ran_and_what_it_found(admin_client):
    make_catalog(classes=2, per_class=6)
    summary = find_suspects()

    response = admin_client.get(SUSPECTS)

    assert re.search(
        rf"Last search: \d{{4}}-\d\d-\d\d \d\d:\d\d \w+, {re.escape(str(summary))}\.", response.text
    )
    assert "has not run yet" not in response.text
