"""The Suspects admin: worst first, pictures side by side, and one click to keep one and exclude the other."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog import curation
from catalog.models import CatalogImage, Suspect
from catalog.suspects import find_suspects
from tests.catalog_factories import (
    centre,
    make_catalog,
    make_image,
    near,
    picture_bytes,
    same_pixels_other_bytes,
)

pytestmark = pytest.mark.django_db

SUSPECTS = reverse("admin:catalog_suspect_changelist")


@pytest.fixture
def planted():
    """A catalog with one image in the wrong class and one picture stored twice."""
    catalog = make_catalog(classes=3, per_class=8)
    first, second = list(catalog)[:2]
    stray = make_image(first, 500, vector=near(centre(second.pk), 500))
    data = picture_bytes(600)
    original = make_image(first, 600, data=data)
    copy = make_image(
        first, 601, data=same_pixels_other_bytes(data), vector=near(original.embedding, 601, 0.05)
    )
    find_suspects()
    return {"stray": stray, "original": original, "copy": copy}


def resolve(client, suspect, decision):
    url = reverse("admin:catalog_suspect_resolve", args=[suspect.pk])
    return client.post(
        url, {"resolve": decision}, HTTP_REFERER="http://testserver" + SUSPECTS + "?kind__exact=duplicate"
    )


def test_duplicates_are_listed_side_by_side_with_buttons_to_resolve(admin_client, planted):
    response = admin_client.get(SUSPECTS, {"kind__exact": "duplicate"})

    top = response.context["cl"].result_list[0]
    assert set(top.members.all()) == {planted["original"], planted["copy"]}
    for image in (planted["original"], planted["copy"]):
        assert image.thumbnail.url in response.text
        assert f'name="resolve" value="keep-{image.pk}">Keep this one' in response.text
    assert reverse("admin:catalog_suspect_resolve", args=[top.pk]) in response.text


def test_outliers_come_most_suspicious_first(admin_client, planted):
    response = admin_client.get(SUSPECTS, {"kind__exact": "outlier"})

    rows = list(response.context["cl"].result_list)
    assert rows[0].image == planted["stray"]
    assert [s.score for s in rows] == sorted((s.score for s in rows), reverse=True)


def test_suspect_list_costs_the_same_queries_for_1_row_as_for_many(admin_client, planted):
    with CaptureQueriesContext(connection) as few:
        one = admin_client.get(SUSPECTS, {"kind__exact": "duplicate"})
    with CaptureQueriesContext(connection) as many:
        every = admin_client.get(SUSPECTS)

    assert len(one.context["cl"].result_list) == 1 < len(every.context["cl"].result_list)
    assert len(many) == len(few)


def test_keeping_one_copy_excludes_the_other_and_closes_the_pair(admin_client, planted):
    suspect = Suspect.objects.get(kind=Suspect.Kind.DUPLICATE, image=planted["original"])

    response = resolve(admin_client, suspect, f"keep-{planted['original'].pk}")

    assert response.status_code == 302 and response.url.endswith("?kind__exact=duplicate")
    copy = CatalogImage.objects.get(pk=planted["copy"].pk)
    assert copy.status == CatalogImage.Status.EXCLUDED
    assert copy.status_reason == f"the same picture as #{planted['original'].pk}, which was kept"
    assert CatalogImage.objects.get(pk=planted["original"].pk).status == CatalogImage.Status.ACTIVE
    assert not Suspect.objects.open().filter(pk=suspect.pk).exists()
    assert any(f"excluded #{copy.pk}" in str(m) for m in get_messages(response.wsgi_request))


def test_dismissing_a_suspect_keeps_both_images_and_hides_it(admin_client, planted):
    suspect = Suspect.objects.get(kind=Suspect.Kind.OUTLIER, image=planted["stray"])

    resolve(admin_client, suspect, "dismiss")

    assert CatalogImage.objects.get(pk=planted["stray"].pk).status == CatalogImage.Status.ACTIVE
    shown = admin_client.get(SUSPECTS, {"kind__exact": "outlier"}).context["cl"].result_list
    assert suspect.pk not in [s.pk for s in shown]
    dismissed = admin_client.get(SUSPECTS, {"state": "dismissed"}).context["cl"].result_list
    assert [s.pk for s in dismissed] == [suspect.pk]


def test_resolving_needs_a_post(admin_client, planted):
    suspect = Suspect.objects.first()

    response = admin_client.get(reverse("admin:catalog_suspect_resolve", args=[suspect.pk]))

    assert response.status_code == 405


def test_an_image_page_lists_its_open_suspicions(admin_client, planted):
    suspect = Suspect.objects.get(kind=Suspect.Kind.OUTLIER, image=planted["stray"])
    Suspect.objects.filter(pk=suspect.pk).update(score=0.734, reason="planted: looks like class 1")
    page = reverse("admin:catalog_catalogimage_change", args=[planted["stray"].pk])

    response = admin_client.get(page)

    assert (
        f'<a href="{SUSPECTS}?id={suspect.pk}">Outlier 0.73</a>: planted: looks like class 1' in response.text
    )
    Suspect.objects.filter(pk=suspect.pk).update(dismissed_at="2026-01-01T00:00Z")
    assert "planted: looks like class 1" not in admin_client.get(page).text


def test_several_suspects_can_be_dismissed_at_once(admin_client, planted):
    chosen = list(Suspect.objects.open()[:2])

    response = admin_client.post(
        SUSPECTS, {"action": "dismiss", "_selected_action": [s.pk for s in chosen]}, follow=True
    )

    assert "Dismissed 2 suspect(s)" in response.text
    assert not Suspect.objects.open().filter(pk__in=[s.pk for s in chosen]).exists()


def test_dismissing_takes_the_permission_to_change_suspects_not_only_to_view_them(
    client, planted, django_user_model
):
    curator = django_user_model.objects.create_user("viewer", is_staff=True)
    curator.user_permissions.add(Permission.objects.get(codename="view_suspect"))
    client.force_login(curator)
    chosen = list(Suspect.objects.open()[:2])
    dismiss = {"action": "dismiss", "_selected_action": [s.pk for s in chosen]}

    assert "Dismissed 2 suspect(s)" not in client.post(SUSPECTS, dismiss, follow=True).text
    assert resolve(client, chosen[0], "dismiss").status_code == 403
    assert Suspect.objects.open().filter(pk__in=[s.pk for s in chosen]).count() == 2

    curator.user_permissions.add(Permission.objects.get(codename="change_suspect"))
    assert "Dismissed 2 suspect(s)" in client.post(SUSPECTS, dismiss, follow=True).text


def test_a_suspect_is_resolved_by_curation_without_the_admin(planted):
    suspect = Suspect.objects.get(kind=Suspect.Kind.OUTLIER, image=planted["stray"])

    message = curation.resolve_suspect(suspect, "exclude", None)

    assert message.startswith(f"Excluded #{suspect.image_id}")
    assert CatalogImage.objects.get(pk=planted["stray"].pk).status == CatalogImage.Status.EXCLUDED


def test_suspects_can_be_found_again_from_the_admin(admin_client, planted):
    Suspect.objects.all().delete()

    response = admin_client.post(reverse("admin:catalog_suspect_recompute"), follow=True)

    assert "Finding suspects: " in response.text and "outliers" in response.text
    assert Suspect.objects.open().filter(image=planted["stray"]).exists()
    assert 'id="recompute-suspects"' in admin_client.get(SUSPECTS).text


def test_an_image_filed_under_the_wrong_class_moves_to_the_class_its_neighbours_are_in(admin_client, planted):
    suspect = Suspect.objects.get(kind=Suspect.Kind.OUTLIER, image=planted["stray"])
    assert suspect.suggested_class.label == "class 1"
    assert "Move to class 1" in admin_client.get(SUSPECTS, {"kind__exact": "outlier"}).text

    response = resolve(admin_client, suspect, "move")

    stray = CatalogImage.objects.get(pk=planted["stray"].pk)
    assert stray.wikidata_class == suspect.suggested_class
    assert stray.status == CatalogImage.Status.ACTIVE
    assert any("Moved #" in str(m) for m in get_messages(response.wsgi_request))
    assert LogEntry.objects.filter(
        object_id=str(stray.pk), change_message="Moved from class 0 to class 1"
    ).exists()
    find_suspects()
    assert not Suspect.objects.open().filter(kind=Suspect.Kind.OUTLIER, image=stray).exists()
