"""The verdict's per-class statistics, read from the catalog and cached until the class changes."""

import numpy as np
import pytest
from django.core.cache import cache

from catalog import curation
from catalog.models import CatalogImage
from search.classstats import class_stats_of
from search.verdict import class_stats
from tests.catalog_factories import make_class, make_image

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def lighthouse():
    wikidata_class = make_class("lighthouse", qid="Q39715")
    images = [make_image(wikidata_class, seed) for seed in range(4)]
    return wikidata_class, images


def stored_vectors(images):
    return np.stack([CatalogImage.objects.get(pk=image.pk).embedding for image in images])


def test_statistics_are_those_of_the_class_s_searchable_images(lighthouse):
    wikidata_class, images = lighthouse
    make_image(make_class("espresso", qid="Q180289"), 99)  # another class's image stays out

    stats = class_stats_of(wikidata_class.pk)

    expected = class_stats(stored_vectors(images))
    assert stats.count == 4
    assert stats.tightness == pytest.approx(expected.tightness)
    assert stats.centroid == pytest.approx(expected.centroid, abs=1e-6)


def test_excluding_an_image_refreshes_the_cached_statistics(lighthouse):
    wikidata_class, images = lighthouse
    class_stats_of(wikidata_class.pk)

    curation.exclude([images[0].pk], "a drawing, not a photo")
    stats = class_stats_of(wikidata_class.pk)

    assert stats.count == 3
    assert stats.tightness == pytest.approx(class_stats(stored_vectors(images[1:])).tightness)


def test_adding_an_image_refreshes_the_cached_statistics(lighthouse):
    wikidata_class, images = lighthouse
    class_stats_of(wikidata_class.pk)

    images.append(make_image(wikidata_class, 4))
    stats = class_stats_of(wikidata_class.pk)

    assert stats.count == 5
    assert stats.tightness == pytest.approx(class_stats(stored_vectors(images)).tightness)


def test_an_unchanged_class_is_served_from_the_cache(lighthouse, django_assert_num_queries):
    wikidata_class, _ = lighthouse
    with django_assert_num_queries(2):  # the fingerprint, then the vectors
        first = class_stats_of(wikidata_class.pk)

    with django_assert_num_queries(1):  # the fingerprint only
        again = class_stats_of(wikidata_class.pk)

    assert again.tightness == first.tightness


def test_a_class_without_searchable_images_has_no_statistics(lighthouse):
    wikidata_class, images = lighthouse
    curation.exclude([image.pk for image in images], "not lighthouses")

    assert class_stats_of(wikidata_class.pk) is None
