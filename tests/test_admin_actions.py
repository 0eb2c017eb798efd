"""Curation actions in the image admin: each ends in a message, is logged, and search follows at once."""

import numpy as np
import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from catalog.models import CatalogImage, WikidataClass
from tests.catalog_factories import make_catalog, picture_bytes

pytestmark = pytest.mark.django_db

IMAGES = reverse("admin:catalog_catalogimage_changelist")


@pytest.fixture
def catalog():
    return make_catalog(classes=2, per_class=4)


def act(client, action, images, **extra):
    data = {"action": action, "_selected_action": [i.pk for i in images], **extra}
    return client.post(IMAGES, data, follow="apply" in extra or action != "exclude_images")


def shown_messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def history(image):
    return list(
        LogEntry.objects.filter(object_id=str(image.pk), content_type__model="catalogimage").values_list(
            "change_message", flat=True
        )
    )


def nearest_ids(vector):
    return [image.pk for image in CatalogImage.objects.nearest(vector, k=50)]


def test_excluding_asks_for_a_reason_then_takes_the_images_out_of_search(admin_client, catalog):
    images = list(catalog.values())[0][:2]
    vector = np.asarray(images[0].embedding)
    assert images[0].pk in nearest_ids(vector)

    form_page = act(admin_client, "exclude_images", images)
    assert form_page.status_code == 200 and "reason" in form_page.context["form"].fields
    done = act(admin_client, "exclude_images", images, apply="1", reason="a map, not a photo")

    assert "Excluded 2 image(s)" in " ".join(shown_messages(done))
    for image in images:
        image.refresh_from_db()
        assert image.status == CatalogImage.Status.EXCLUDED
        assert image.status_reason == "a map, not a photo"
        assert history(image) == ["Excluded: a map, not a photo"]
        assert image.pk not in nearest_ids(vector)


def test_excluding_without_a_reason_changes_nothing(admin_client, catalog):
    image = list(catalog.values())[0][0]

    page = act(admin_client, "exclude_images", [image], apply="1", reason="")

    assert page.status_code == 200 and page.context["form"].errors
    image.refresh_from_db()
    assert image.status == CatalogImage.Status.ACTIVE


def test_restoring_brings_an_excluded_image_back_into_search(admin_client, catalog):
    image = list(catalog.values())[0][0]
    act(admin_client, "exclude_images", [image], apply="1", reason="mistake")

    done = act(admin_client, "restore_images", [image])

    assert "Restored 1 image(s)" in " ".join(shown_messages(done))
    image.refresh_from_db()
    assert image.status == CatalogImage.Status.ACTIVE and image.status_reason == ""
    assert image.pk in nearest_ids(image.embedding)
    assert history(image) == ["Restored", "Excluded: mistake"]


def test_flagging_marks_images_for_review_and_keeps_them_searchable(admin_client, catalog):
    image = list(catalog.values())[0][0]

    done = act(admin_client, "flag_images", [image])

    assert "Flagged 1 image(s)" in " ".join(shown_messages(done))
    image.refresh_from_db()
    assert image.status == CatalogImage.Status.FLAGGED
    assert image.pk in nearest_ids(image.embedding)


def test_an_image_becomes_its_class_main_image(admin_client, catalog):
    wikidata_class, images = next(iter(catalog.items()))

    done = act(admin_client, "make_main_image", [images[2]])

    assert f"Main image set for {wikidata_class.label}" in " ".join(shown_messages(done))
    assert WikidataClass.objects.get(pk=wikidata_class.pk).main_image == images[2]
    page = admin_client.get(reverse("admin:catalog_wikidataclass_changelist"))
    assert images[2].thumbnail.url in page.text


def test_two_main_images_for_one_class_are_refused(admin_client, catalog):
    wikidata_class, images = next(iter(catalog.items()))

    done = act(admin_client, "make_main_image", images[:2])

    assert "at most one image per class" in " ".join(shown_messages(done))
    assert WikidataClass.objects.get(pk=wikidata_class.pk).main_image is None


def test_refetching_an_image_whose_source_is_unchanged_says_so(admin_client, httpserver, settings):
    wikidata_class = WikidataClass.objects.create(label="lighthouse")
    data = picture_bytes(1)
    httpserver.expect_request("/lighthouse.jpg").respond_with_data(data, content_type="image/jpeg")
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    from tests.catalog_factories import make_image

    image = make_image(wikidata_class, 1, data=data, source_url=httpserver.url_for("/lighthouse.jpg"))
    no_source = make_image(wikidata_class, 2)

    done = act(admin_client, "refetch_images", [image, no_source])

    text = " ".join(shown_messages(done))
    assert "0 done, 1 unchanged, 1 failed" in text
    assert f"#{no_source.pk}: no source URL" in text
    assert history(image) == ["Re-fetch requested"]


def test_an_image_page_shows_its_history(admin_client, catalog):
    image = list(catalog.values())[0][0]
    act(admin_client, "exclude_images", [image], apply="1", reason="blurry")

    page = admin_client.get(reverse("admin:catalog_catalogimage_change", args=[image.pk]))
    log = admin_client.get(reverse("admin:catalog_catalogimage_history", args=[image.pk]))

    assert "Excluded: blurry" in page.text
    assert "Excluded: blurry" in log.text


def test_excluding_a_class_main_image_leaves_the_class_without_one(admin_client, catalog):
    wikidata_class, images = next(iter(catalog.items()))
    act(admin_client, "make_main_image", [images[0]])

    act(admin_client, "exclude_images", [images[0]], apply="1", reason="a logo")

    assert WikidataClass.objects.get(pk=wikidata_class.pk).main_image is None
