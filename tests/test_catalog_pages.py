"""The catalog's pages without a browser: a picture, a class, the list of classes, the home's summary."""

import re

import pytest
from django.core.cache import cache

from catalog import credits
from catalog.models import CatalogImage, WikidataClass
from search import pages
from tests.catalog_factories import make_catalog, make_class, make_image

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SIMILAR_RATE = None
    # The footer's credits (catalog.credits, tested in test_footer.py) come from a cache in memory, read
    # once: the query counts here are the pages' own.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    cache.set(credits.CACHE_KEY, None, 600)


def html(response):
    return response.content.decode()


def exclude(image):
    CatalogImage.objects.filter(pk=image.pk).update(status=CatalogImage.Status.EXCLUDED)


def unembed(image):
    CatalogImage.objects.filter(pk=image.pk).update(embedding=None)


def linked_ids(page, prefix):
    """The ids in the page's links to /<prefix>/<id>/, in order of appearance."""
    return [int(found) for found in re.findall(rf'href="/{prefix}/(\d+)/"', page)]


def assert_error_page(response, status):
    assert response.status_code == status
    assert "Back to the search" in html(response)  # the site's error page, not Django's


# The picture page


def test_the_picture_page_shows_the_picture_its_class_source_licence_and_credit(client):
    ketch = make_class("ketch", qid="Q1549005")
    image = make_image(
        ketch,
        1,
        source_url="https://commons.wikimedia.org/wiki/File:Ketch.jpg",
        commons_file="Ketch.jpg",
        license="CC BY-SA 4.0",
        license_url="https://creativecommons.org/licenses/by-sa/4.0/",
        artist='<a href="https://commons.wikimedia.org/wiki/User:Sailor">Sailor</a>',
        attribution="Photo by <b>A. Sailor</b><img src=x onerror=alert(1)>",
        attribution_required=True,
    )

    response = client.get(f"/images/{image.pk}/")

    page = html(response)
    assert response.status_code == 200
    assert f'<img src="{image.file.url}" width="64" height="48"' in page
    assert f'href="{image.file.url}" id="full-picture">Open the full picture' in page
    assert f'href="/classes/{ketch.pk}/" id="class-link">ketch</a>' in page
    assert 'href="https://www.wikidata.org/wiki/Q1549005"' in page
    assert '<a href="https://commons.wikimedia.org/wiki/File:Ketch.jpg">Ketch.jpg</a>' in page
    assert (
        '<a href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA 4.0</a> (credit required)' in page
    )
    assert "<dd>Sailor</dd>" in page and "<dd>Photo by A. Sailor</dd>" in page
    assert "<img src=x onerror" not in page and "<b>" not in page  # escaped text only (also in the footer)
    assert "64 × 48 pixels" in page
    assert f'href="/?similar={image.pk}" id="more-like-this"' in page
    assert page.count("<h1") == 1
    assert "<title>ketch, picture" in page


def test_the_picture_page_leaves_out_what_is_not_recorded(client):
    image = make_image(make_class("camera"), 2, source_url="javascript:alert(1)")

    page = html(client.get(f"/images/{image.pk}/"))

    assert "<dt>Source</dt>\n          <dd>Not recorded</dd>" in page
    assert "<dt>Licence</dt>\n          <dd>Unknown</dd>" in page
    assert "javascript:" not in page
    assert "<dt>Author</dt>" not in page and "<dt>Credit</dt>" not in page


def test_a_picture_search_may_not_return_has_no_page(client):
    wikidata_class = make_class("ant")
    excluded, unembedded = make_image(wikidata_class, 3), make_image(wikidata_class, 4)
    exclude(excluded)
    unembed(unembedded)

    for image in (excluded, unembedded):
        assert_error_page(client.get(f"/images/{image.pk}/"), 404)
    assert_error_page(client.get("/images/424242/"), 404)
    assert_error_page(client.get("/images/99999999999999999999/"), 404)


def test_the_picture_page_is_one_query(client, django_assert_num_queries):
    image = make_image(make_class("ant"), 5)

    with django_assert_num_queries(1):
        assert client.get(f"/images/{image.pk}/").status_code == 200


# A class's page


def test_the_class_page_shows_its_searchable_pictures_and_its_wikidata_and_wikipedia_links(client):
    ant = WikidataClass.objects.create(
        label="ant", qid="Q7386", description="family of insects", enwiki_title="Ant"
    )
    # Made first, so that the page would start with them if it showed them.
    hidden = [make_image(ant, 13), make_image(ant, 14)]
    shown = [make_image(ant, seed) for seed in (10, 11, 12)]
    exclude(hidden[0])
    unembed(hidden[1])
    other = make_image(make_class("bee"), 15)

    response = client.get(f"/classes/{ant.pk}/")

    page = html(response)
    assert response.status_code == 200
    assert linked_ids(page, "images") == [image.pk for image in shown]
    assert other.thumbnail.url not in page
    assert "family of insects" in page
    assert 'href="https://www.wikidata.org/wiki/Q7386"' in page
    assert 'href="https://en.wikipedia.org/wiki/Ant"' in page
    assert "3 pictures in the catalog." in page
    assert shown[0].thumbnail.url in page
    assert page.count("<h1") == 1 and "<title>ant: 3 pictures · revimg</title>" in page


def test_the_class_page_without_a_qid_has_no_wikidata_links(client):
    local = make_class("local things")
    make_image(local, 20)

    page = html(client.get(f"/classes/{local.pk}/"))

    assert "wikidata.org" not in page and "wikipedia.org" not in page


def test_the_class_page_is_paginated(client, monkeypatch):
    monkeypatch.setattr(pages, "PICTURES_PER_PAGE", 2)
    camera = make_class("camera")
    images = [make_image(camera, 30 + seed) for seed in range(5)]

    first, second, last = (html(client.get(f"/classes/{camera.pk}/", {"page": n})) for n in (1, 2, 3))

    assert linked_ids(first, "images") == [images[0].pk, images[1].pk]
    assert linked_ids(second, "images") == [images[2].pk, images[3].pk]
    assert linked_ids(last, "images") == [images[4].pk]
    assert 'href="?page=1" rel="prev"' in second and 'href="?page=3" rel="next"' in second
    assert "Page 2 of 3" in second and 'rel="prev"' not in first and 'rel="next"' not in last
    assert "camera: 5 pictures, page 2" in second
    assert_error_page(client.get(f"/classes/{camera.pk}/", {"page": 4}), 404)
    for wrong in ("0", "two", "-1", "1.5"):
        response = client.get(f"/classes/{camera.pk}/", {"page": wrong})
        assert_error_page(response, 400)
        assert "The page number must be a whole number from 1." in html(response)


def test_a_class_with_no_searchable_picture_has_no_page(client):
    emptied = make_class("emptied")
    exclude(make_image(emptied, 40))
    never_filled = make_class("never filled")

    assert_error_page(client.get(f"/classes/{emptied.pk}/"), 404)
    assert_error_page(client.get(f"/classes/{never_filled.pk}/"), 404)
    assert_error_page(client.get("/classes/424242/"), 404)


def test_the_class_page_costs_the_same_queries_whatever_its_size(client, django_assert_max_num_queries):
    big = make_class("big")
    for seed in range(12):
        make_image(big, 50 + seed)

    # The class with its count, then its page of pictures: the count is not asked again.
    with django_assert_max_num_queries(2):
        assert client.get(f"/classes/{big.pk}/").status_code == 200


# The list of classes


def test_the_class_list_is_alphabetical_with_counts_and_a_cover(client):
    zebra, ant, camera = make_class("zebra"), make_class("ant"), make_class("Camera")
    zebras = [make_image(zebra, 60), make_image(zebra, 61)]
    ants = [make_image(ant, 62), make_image(ant, 63), make_image(ant, 64)]
    exclude(ants[2])
    make_image(camera, 65)
    # A class's main image stands for it when it is searchable; the first searchable one otherwise.
    WikidataClass.objects.filter(pk=zebra.pk).update(main_image=zebras[1])
    WikidataClass.objects.filter(pk=ant.pk).update(main_image=ants[2])
    exclude(make_image(make_class("aardvark"), 66))  # nothing searchable: not listed

    response = client.get("/classes/")

    page = html(response)
    assert response.status_code == 200
    assert linked_ids(page, "classes") == [ant.pk, camera.pk, zebra.pk]
    assert "aardvark" not in page
    assert "3 classes" in page
    assert re.findall(r'class="class-size">([^<]+)<', page) == ["2 pictures", "1 picture", "2 pictures"]
    assert page.index(ants[0].thumbnail.url) < page.index(zebras[1].thumbnail.url)
    assert zebras[0].thumbnail.url not in page and ants[2].thumbnail.url not in page
    assert page.count("<h1") == 1 and "<title>All classes · revimg</title>" in page


def test_the_filter_matches_labels_whatever_their_case(client):
    for seed, label in enumerate(["Cat", "wildcat", "dog", "catamaran"]):
        make_image(make_class(label), 70 + seed)

    page = html(client.get("/classes/", {"q": "  CAT "}))

    labels = re.findall(r'class="class-name">([^<]+)<', page)
    assert labels == ["Cat", "catamaran", "wildcat"]
    assert 'value="CAT"' in page  # the filter box keeps what was typed
    assert "3 classes matching “CAT”" in page
    assert "<title>Classes matching “CAT” · revimg</title>" in page


def test_a_filter_holding_like_wildcards_matches_them_literally(client):
    make_image(make_class("100% cotton"), 80)
    make_image(make_class("linen"), 81)

    assert re.findall(r'class="class-name">([^<]+)<', html(client.get("/classes/", {"q": "%"}))) == [
        "100% cotton"
    ]
    assert "No class name contains “_”" in html(client.get("/classes/", {"q": "_"}))


def test_a_filter_matching_nothing_says_so_and_offers_to_clear_it(client):
    make_image(make_class("ant"), 90)

    response = client.get("/classes/", {"q": "zeppelin"})

    page = html(response)
    assert response.status_code == 200
    assert "No class name contains “zeppelin”." in page
    assert '<a href="/classes/">Clear the filter</a>' in page
    assert 'id="classes"' not in page


def test_an_empty_catalog_says_so_on_the_class_list(client):
    assert "The catalog is empty" in html(client.get("/classes/"))


def test_a_filter_that_cannot_be_a_class_name_is_refused_in_words(client):
    too_long = client.get("/classes/", {"q": "x" * 101})
    with_nul = client.get("/classes/", {"q": "ca\x00t"})

    assert_error_page(too_long, 400)
    assert "The filter is too long: type at most 100 letters." in html(too_long)
    assert_error_page(with_nul, 400)
    assert "The filter holds a character no class name has." in html(with_nul)


def test_the_class_list_pages_keep_the_filter(client, monkeypatch):
    monkeypatch.setattr(pages, "CLASSES_PER_PAGE", 2)
    for seed, label in enumerate(["boat a", "boat b", "boat c", "car"]):
        make_image(make_class(label), 100 + seed)

    first = html(client.get("/classes/", {"q": "boat"}))
    second = html(client.get("/classes/", {"q": "boat", "page": 2}))

    assert 'href="?q=boat&amp;page=2" rel="next"' in first
    assert re.findall(r'class="class-name">([^<]+)<', second) == ["boat c"]
    assert 'href="?q=boat&amp;page=1" rel="prev"' in second
    assert_error_page(client.get("/classes/", {"q": "boat", "page": 3}), 404)


def test_the_class_list_costs_the_same_queries_whatever_its_length(client, django_assert_max_num_queries):
    make_catalog(classes=8, per_class=2)

    # The count, the page of classes with their counts and cover ids, the covers.
    with django_assert_max_num_queries(3):
        page = html(client.get("/classes/"))
    assert len(linked_ids(page, "classes")) == 8


# The home page and the result cards


def test_the_home_page_says_what_the_catalog_holds(client, django_assert_max_num_queries):
    for offset, (label, count) in enumerate((("ketch", 3), ("ant", 2), ("camera", 2), ("zebra", 1))):
        wikidata_class = make_class(label)
        for seed in range(count):
            make_image(wikidata_class, 200 + 10 * offset + seed)
    exclude(make_image(make_class("ghost"), 300))

    with django_assert_max_num_queries(2):
        page = html(client.get("/"))

    assert "The catalog holds 8 pictures of 4 classes, such as ketch, ant, camera…" in page
    assert '<a class="browse" href="/classes/">Browse all classes</a>' in page


def test_the_home_page_of_a_small_catalog_names_every_class(client):
    make_image(make_class("ant"), 310)

    assert "The catalog holds 1 picture of 1 class, such as ant." in html(client.get("/"))


def test_the_home_page_of_an_empty_catalog_says_how_to_fill_it(client):
    page = html(client.get("/"))

    assert "The catalog is empty" in page
    assert "python manage.py starter_catalog" in page
    assert "Browse all classes" not in page


def test_result_cards_link_to_the_picture_page_and_the_class_page(client):
    catalog = make_catalog(classes=2, per_class=3)
    first_class, images = next(iter(catalog.items()))

    page = html(client.get(f"/?similar={images[0].pk}"))

    cards = re.findall(r'<li class="card.*?</li>', page, flags=re.S)
    assert len(cards) == 5
    for card in cards:
        (image_id,) = linked_ids(card, "images")
        image = CatalogImage.objects.select_related("wikidata_class").get(pk=image_id)
        assert f'<a class="thumb" href="/images/{image.pk}/">' in card
        assert f'<a href="/classes/{image.wikidata_class_id}/">{image.wikidata_class.label}</a>' in card
        assert f'href="{image.file.url}"' not in card
