"""Why a picture is a suspect, in words a curator reads at a glance; the measures stay in a detail line."""

from collections import Counter

import pytest
from django.urls import reverse

from catalog.models import Suspect
from catalog.suspects import OutlierScore, find_suspects, outlier_detail, outlier_reason
from tests.catalog_factories import centre, make_catalog, make_image, near

LABELS = {1: "lighthouse", 2: "windmill", 3: "violin"}


def scored(z=0.0, foreign=None, voted=10):
    foreign = Counter(foreign or {})
    return OutlierScore(10, 1, z=z, foreign=sum(foreign.values()), voted=voted, foreign_classes=foreign)


def test_a_picture_whose_neighbours_are_mostly_of_one_other_class_looks_more_like_it():
    entry = scored(z=6.5, foreign={2: 8})

    assert outlier_reason(entry, LABELS, 1) == "looks more like windmill than like its own class (lighthouse)"
    assert outlier_detail(entry, LABELS) == (
        "distance to class centre: robust z 6.5; 8 of 10 nearest neighbours in other classes (mostly 'windmill')"
    )


def test_a_picture_whose_neighbours_are_of_several_other_classes_says_so():
    entry = scored(z=1.0, foreign={2: 4, 3: 3})

    assert (
        outlier_reason(entry, LABELS, 1) == "its closest pictures are mostly of other classes than lighthouse"
    )


def test_a_picture_far_from_its_class_centre_is_far_from_the_other_pictures():
    assert (
        outlier_reason(scored(z=4.0, foreign={2: 2}), LABELS, 1)
        == "far from the other pictures of lighthouse"
    )


def test_a_picture_barely_past_the_threshold_is_a_little_unlike_the_others():
    assert outlier_reason(scored(z=2.0), LABELS, 1) == "a little unlike the other pictures of lighthouse"


@pytest.mark.django_db
def test_the_suspects_page_gives_the_reason_in_words_and_the_measures_below(admin_client):
    first, second = list(make_catalog(classes=3, per_class=8))[:2]
    stray = make_image(first, 500, vector=near(centre(second.pk), 500))
    find_suspects()

    response = admin_client.get(reverse("admin:catalog_suspect_changelist"), {"kind__exact": "outlier"})

    top = response.context["cl"].result_list[0]
    assert top.image == stray
    assert "looks more like class 1 than like its own class (class 0)" in response.text
    assert '<div class="suspect-detail">distance to class centre: robust z' in response.text
    assert "robust z" not in top.reason
    assert Suspect.objects.get(pk=top.pk).detail.startswith("distance to class centre")
