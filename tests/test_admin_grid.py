"""A class's pictures as a grid in the admin: several excluded in one POST, one included again, and only by
staff allowed to change images."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from catalog.models import CatalogImage
from tests.catalog_factories import make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog():
    return make_catalog(classes=2, per_class=5)


@pytest.fixture
def first(catalog):
    wikidata_class = list(catalog)[0]
    return wikidata_class, catalog[wikidata_class]


def grid_url(wikidata_class):
    return reverse("admin:catalog_wikidataclass_pictures", args=[wikidata_class.pk])


def excluded_ids():
    return set(CatalogImage.objects.filter(status=CatalogImage.Status.EXCLUDED).values_list("pk", flat=True))


def staff(django_user_model, *codenames):
    user = django_user_model.objects.create_user("curator", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_the_grid_shows_every_picture_of_the_class_with_a_checkbox(admin_client, first, catalog):
    wikidata_class, images = first

    response = admin_client.get(grid_url(wikidata_class))

    assert response.status_code == 200
    for image in images:
        assert image.thumbnail.url in response.text
        assert f'<input type="checkbox" name="image" value="{image.pk}">' in response.text
    other_class = list(catalog)[1]
    assert catalog[other_class][0].thumbnail.url not in response.text


def test_the_class_list_and_the_class_page_link_to_the_grid(admin_client, first):
    wikidata_class, _ = first
    url = grid_url(wikidata_class)

    assert f'href="{url}"' in admin_client.get(reverse("admin:catalog_wikidataclass_changelist")).text
    page = admin_client.get(reverse("admin:catalog_wikidataclass_change", args=[wikidata_class.pk]))
    assert f'<a href="{url}">All 5 pictures as a grid</a>' in page.text


def test_excluding_several_pictures_takes_one_post_and_says_how_many(admin_client, first):
    wikidata_class, images = first
    chosen = [images[0].pk, images[2].pk, images[3].pk]

    response = admin_client.post(
        grid_url(wikidata_class), {"image": chosen, "exclude": "1", "reason": "maps, not photos"}, follow=True
    )

    assert excluded_ids() == set(chosen)
    assert "Excluded 3 pictures of class 0 from search." in response.text
    assert set(CatalogImage.objects.filter(pk__in=chosen).values_list("status_reason", flat=True)) == {
        "maps, not photos"
    }
    for pk in chosen:
        assert f'name="include" value="{pk}">Include #{pk} again' in response.text
        assert f'<input type="checkbox" name="image" value="{pk}">' not in response.text


def test_an_excluded_picture_is_included_again_with_its_button(admin_client, first):
    wikidata_class, images = first
    admin_client.post(grid_url(wikidata_class), {"image": [images[0].pk, images[1].pk], "exclude": "1"})

    response = admin_client.post(grid_url(wikidata_class), {"include": images[0].pk}, follow=True)

    assert excluded_ids() == {images[1].pk}
    assert f"#{images[0].pk} is in search again." in response.text


def test_a_picture_of_another_class_is_refused_and_nothing_is_excluded(admin_client, first, catalog):
    wikidata_class, images = first
    stranger = catalog[list(catalog)[1]][0]

    response = admin_client.post(
        grid_url(wikidata_class), {"image": [images[0].pk, stranger.pk], "exclude": "1"}, follow=True
    )

    assert excluded_ids() == set()
    assert f"Select a valid choice. {stranger.pk} is not one of the available choices." in response.text


def test_excluding_with_nothing_ticked_says_so(admin_client, first):
    wikidata_class, _ = first

    response = admin_client.post(grid_url(wikidata_class), {"exclude": "1"})

    assert excluded_ids() == set()
    assert "No picture was selected" in response.text


def test_staff_who_may_only_view_images_see_the_grid_without_checkboxes_and_cannot_post(
    client, first, django_user_model
):
    wikidata_class, images = first
    client.force_login(staff(django_user_model, "view_catalogimage", "view_wikidataclass"))

    page = client.get(grid_url(wikidata_class))
    refused = client.post(grid_url(wikidata_class), {"image": [images[0].pk], "exclude": "1"})

    assert page.status_code == 200 and images[0].thumbnail.url in page.text
    assert 'type="checkbox"' not in page.text and "Exclude selected" not in page.text
    assert refused.status_code == 403
    assert excluded_ids() == set()


def test_staff_without_any_image_permission_are_refused_the_grid(client, first, django_user_model):
    wikidata_class, _ = first
    client.force_login(staff(django_user_model))

    assert client.get(grid_url(wikidata_class)).status_code == 403


def test_people_who_are_not_staff_are_sent_to_the_login(client, first, django_user_model):
    wikidata_class, images = first
    client.force_login(django_user_model.objects.create_user("visitor"))

    response = client.post(grid_url(wikidata_class), {"image": [images[0].pk], "exclude": "1"})

    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    assert excluded_ids() == set()


def test_a_post_without_the_csrf_token_is_refused(first, django_user_model):
    wikidata_class, images = first
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.org", "pw"))

    response = client.post(grid_url(wikidata_class), {"image": [images[0].pk], "exclude": "1"})

    assert response.status_code == 403
    assert excluded_ids() == set()
