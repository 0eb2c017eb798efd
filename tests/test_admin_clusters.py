"""Duplicates as clusters of copies: four copies of one picture are one suspect, and keeping one excludes
the rest."""

import io

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from catalog.models import CatalogImage, Suspect
from catalog.suspects import find_suspects
from tests.catalog_factories import make_catalog, make_image, near, picture_bytes

pytestmark = pytest.mark.django_db

SUSPECTS = reverse("admin:catalog_suspect_changelist")


def png(data, n):
    """The picture's pixels saved as PNG with a text note n: equal pixels, other bytes per n."""
    note = PngInfo()
    note.add_text("copy", str(n))
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, format="PNG", pnginfo=note)
    return out.getvalue()


def copies_of(wikidata_class, seed, count):
    """count rows holding one picture: the JPEG, then PNGs of its pixels, vectors close to each other."""
    data = picture_bytes(seed)
    original = make_image(wikidata_class, seed, data=data)
    others = [
        make_image(
            wikidata_class, seed + n, data=png(data, n), vector=near(original.embedding, seed + n, 0.05)
        )
        for n in range(1, count)
    ]
    return [original, *others]


@pytest.fixture
def four_copies():
    first = list(make_catalog(classes=2, per_class=6))[0]
    copies = copies_of(first, 700, 4)
    find_suspects()
    return copies


def open_clusters():
    return list(Suspect.objects.open().filter(kind=Suspect.Kind.DUPLICATE))


def keep(client, suspect, image):
    url = reverse("admin:catalog_suspect_resolve", args=[suspect.pk])
    return client.post(url, {"resolve": f"keep-{image.pk}"})


def test_four_copies_of_one_picture_are_one_suspect_of_four_not_six_pairs(four_copies):
    (cluster,) = open_clusters()

    assert set(cluster.members.all()) == set(four_copies)
    assert cluster.image == four_copies[0]  # keyed by its lowest id
    assert cluster.reason == "the same picture stored 4 times"


def test_the_suspects_page_shows_the_four_copies_side_by_side_each_with_keep_this_one(
    admin_client, four_copies
):
    response = admin_client.get(SUSPECTS, {"kind__exact": "duplicate"})

    (row,) = response.context["cl"].result_list
    for image in four_copies:
        assert image.thumbnail.url in response.text
        assert f'value="keep-{image.pk}">Keep this one' in response.text
    assert "the same picture stored 4 times" in response.text


def test_keeping_one_copy_excludes_the_other_three_and_closes_the_cluster(admin_client, four_copies):
    (cluster,) = open_clusters()
    kept = four_copies[2]

    response = keep(admin_client, cluster, kept)

    assert response.status_code == 302
    statuses = dict(
        CatalogImage.objects.filter(pk__in=[i.pk for i in four_copies]).values_list("pk", "status")
    )
    assert statuses.pop(kept.pk) == CatalogImage.Status.ACTIVE
    assert set(statuses.values()) == {CatalogImage.Status.EXCLUDED}
    reasons = set(CatalogImage.objects.filter(pk__in=statuses).values_list("status_reason", flat=True))
    assert reasons == {f"the same picture as #{kept.pk}, which was kept"}
    assert LogEntry.objects.filter(object_id__in=[str(pk) for pk in statuses]).count() == 3
    assert open_clusters() == []


def test_keep_refuses_a_picture_that_is_not_one_of_the_copies(admin_client, four_copies):
    (cluster,) = open_clusters()
    stranger = CatalogImage.objects.exclude(pk__in=[i.pk for i in four_copies]).first()

    keep(admin_client, cluster, stranger)

    assert not CatalogImage.objects.filter(status=CatalogImage.Status.EXCLUDED).exists()
    assert open_clusters() == [cluster]


def test_keeping_a_copy_takes_the_permission_to_change_images(client, four_copies, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    client.force_login(viewer)
    (cluster,) = open_clusters()

    assert keep(client, cluster, four_copies[0]).status_code == 403
    assert not CatalogImage.objects.filter(status=CatalogImage.Status.EXCLUDED).exists()


def test_one_copy_excluded_by_hand_leaves_a_cluster_of_three_open(four_copies):
    CatalogImage.objects.filter(pk=four_copies[1].pk).update(status=CatalogImage.Status.EXCLUDED)

    assert len(open_clusters()) == 1
    CatalogImage.objects.filter(pk__in=[four_copies[2].pk, four_copies[3].pk]).update(
        status=CatalogImage.Status.EXCLUDED
    )
    assert open_clusters() == []


def test_a_dismissed_cluster_stays_dismissed_until_a_new_copy_joins_it(four_copies):
    (cluster,) = open_clusters()
    Suspect.objects.filter(pk=cluster.pk).update(dismissed_at="2026-01-01T00:00Z")

    find_suspects()
    assert open_clusters() == []

    data = picture_bytes(700)
    newcomer = make_image(
        four_copies[0].wikidata_class, 799, data=png(data, 9), vector=four_copies[0].embedding
    )
    find_suspects()
    (again,) = open_clusters()
    assert set(again.members.all()) == {*four_copies, newcomer}
    assert not Suspect.objects.filter(dismissed_at__isnull=False).exists()


def test_two_separate_pictures_stored_twice_are_two_clusters():
    first, second = list(make_catalog(classes=2, per_class=6))
    one, other = copies_of(first, 700, 2), copies_of(second, 800, 2)

    find_suspects()

    assert sorted(sorted(i.pk for i in s.members.all()) for s in open_clusters()) == sorted(
        [sorted(i.pk for i in one), sorted(i.pk for i in other)]
    )
