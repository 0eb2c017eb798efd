"""The image and class admin: thumbnails, filters, search, and list pages whose cost does not grow per row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import CatalogImage, Suspect, WikidataClass
from catalog.suspects import find_suspects
from tests.catalog_factories import centre, make_catalog, make_image, near

pytestmark = pytest.mark.django_db

IMAGES = reverse("admin:catalog_catalogimage_changelist")
CLASSES = reverse("admin:catalog_wikidataclass_changelist")


def listed(response):
    return list(response.context["cl"].result_list)


def queries_for(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_image_list_costs_the_same_queries_for_5_rows_as_for_60(admin_client):
    make_catalog(classes=1, per_class=5)
    few = queries_for(admin_client, IMAGES)
    make_catalog(classes=5, per_class=11, seed=1)
    find_suspects()  # rows with suspect scores are rendered too

    many = queries_for(admin_client, IMAGES + "?all=")

    assert CatalogImage.objects.count() == 60
    assert many == few


def test_class_list_costs_the_same_queries_for_2_classes_as_for_40(admin_client):
    catalog = make_catalog(classes=2, per_class=2)
    for wikidata_class, images in catalog.items():
        WikidataClass.objects.filter(pk=wikidata_class.pk).update(main_image=images[0])
    few = queries_for(admin_client, CLASSES)
    for n in range(38):
        WikidataClass.objects.create(label=f"extra {n}")

    assert queries_for(admin_client, CLASSES) == few


def test_image_list_shows_thumbnails_and_never_loads_vectors(admin_client):
    make_catalog(classes=1, per_class=3)

    response = admin_client.get(IMAGES)

    rows = listed(response)
    assert all("embedding" in image.get_deferred_fields() for image in rows)
    for image in rows:
        assert image.thumbnail.url in response.text


def test_image_page_renders_without_a_vector_field(admin_client):
    image = make_catalog(classes=1, per_class=1).popitem()[1][0]

    response = admin_client.get(reverse("admin:catalog_catalogimage_change", args=[image.pk]))

    assert response.status_code == 200
    assert "embedding" not in response.context["adminform"].form.fields
    assert "efficientnet" in response.text.lower()  # the vector is summarised, not shown
    assert image.file.url in response.text


def test_class_page_lists_its_images_inline(admin_client):
    wikidata_class, images = make_catalog(classes=1, per_class=3).popitem()

    response = admin_client.get(reverse("admin:catalog_wikidataclass_change", args=[wikidata_class.pk]))

    assert response.status_code == 200
    for image in images:
        assert image.thumbnail.url in response.text


def test_search_finds_images_by_class_label_and_by_qid(admin_client):
    catalog = make_catalog(classes=3, per_class=2)
    first = list(catalog)[0]

    by_label = listed(admin_client.get(IMAGES, {"q": first.label}))
    by_qid = listed(admin_client.get(IMAGES, {"q": first.qid.lower()}))
    classes = listed(admin_client.get(CLASSES, {"q": first.qid}))

    assert {i.pk for i in by_label} == {i.pk for i in catalog[first]}
    assert {i.pk for i in by_qid} == {i.pk for i in catalog[first]}
    assert classes == [first]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "excluded"}, {"excluded"}),
        ({"origin__exact": "upload"}, {"upload"}),
        ({"licence": "CC BY 4.0"}, {"licensed"}),
        ({"licence": "-"}, {"plain", "excluded", "upload", "stale", "unembedded", "suspect"}),
        ({"embedded": "no"}, {"unembedded"}),
        ({"stale": "yes"}, {"stale"}),
        ({"suspect": "outlier"}, {"suspect"}),
        ({"suspect": "any"}, {"suspect"}),
    ],
)
def test_filters_pick_the_right_images(admin_client, query, expected):
    catalog = make_catalog(classes=2, per_class=6)
    first, second = list(catalog)
    named = {"plain": catalog[first][0]}
    named["excluded"] = make_image(first, 51, status=CatalogImage.Status.EXCLUDED)
    named["upload"] = make_image(first, 52, origin=CatalogImage.Origin.UPLOAD)
    named["licensed"] = make_image(first, 53, license="CC BY 4.0")
    named["stale"] = make_image(first, 54)
    CatalogImage.objects.filter(pk=named["stale"].pk).update(embedding_version="older")
    named["unembedded"] = make_image(first, 55)
    CatalogImage.objects.filter(pk=named["unembedded"].pk).update(embedding=None, embedding_model="")
    named["suspect"] = make_image(first, 56, vector=near(centre(second.pk), 56))
    find_suspects()
    assert Suspect.objects.open().filter(image=named["suspect"]).exists()

    shown = {image.pk for image in listed(admin_client.get(IMAGES, query))}

    assert {name for name, image in named.items() if image.pk in shown} == expected


def test_filtering_on_suspicion_puts_the_highest_score_first(admin_client):
    catalog = make_catalog(classes=2, per_class=8)
    first, second = list(catalog)
    stray = make_image(first, 57, vector=near(centre(second.pk), 57))
    find_suspects()

    rows = listed(admin_client.get(IMAGES, {"suspect": "any"}))

    assert rows[0] == stray
    scores = [image.suspect_score for image in rows]
    assert scores == sorted(scores, reverse=True)
