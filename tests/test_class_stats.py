"""The verdict's per-class statistics: stored per class, read in one query, recomputed whenever the class's
searchable images change."""

import datetime

import numpy as np
import pytest
from django.core.cache import cache
from django.core.management import call_command

from catalog import classstats, curation, store, tasks, vectorstats
from catalog.classstats import stats_of
from catalog.models import CatalogImage, ClassStatistics
from catalog.vectorstats import class_stats
from tests.catalog_factories import centre, make_class, make_image, near

pytestmark = pytest.mark.django_db


@pytest.fixture
def lighthouse():
    wikidata_class = make_class("lighthouse", qid="Q39715")
    images = [make_image(wikidata_class, seed) for seed in range(4)]
    return wikidata_class, images


def stored_vectors(images):
    return np.stack([CatalogImage.objects.get(pk=image.pk).embedding for image in images])


def reembed(image, vector, at=None):
    """What catalog.refresh.reembed writes, with a given vector instead of the model's."""
    image = CatalogImage.objects.get(pk=image.pk)
    store.set_embedding(image, vector)
    image.embedded_at = at or image.embedded_at
    image.save(update_fields=["embedding", "embedding_model", "embedding_version", "embedded_at"])


def test_statistics_are_those_of_the_class_s_searchable_images(lighthouse):
    wikidata_class, images = lighthouse
    make_image(make_class("espresso", qid="Q180289"), 99)  # another class's image stays out

    stats = stats_of(wikidata_class.pk)

    expected = class_stats(stored_vectors(images))
    assert stats.count == 4 and stats.tightness_sample == 4
    assert stats.tightness == pytest.approx(expected.tightness)
    assert stats.centroid == pytest.approx(expected.centroid, abs=1e-6)


def test_statistics_are_stored_and_read_back_in_one_query(lighthouse, django_assert_num_queries):
    wikidata_class, _ = lighthouse
    with django_assert_num_queries(3):  # fingerprint with the (missing) row, the vectors, the upsert
        first = stats_of(wikidata_class.pk)

    cache.clear()  # nothing is kept in a process: what another process stored is used as it is
    with django_assert_num_queries(1):
        again = stats_of(wikidata_class.pk)

    assert again.tightness == first.tightness and np.array_equal(again.centroid, first.centroid)
    assert ClassStatistics.objects.get(pk=wikidata_class.pk).image_count == 4


def test_a_stored_row_that_still_holds_is_used_as_it_is(lighthouse):
    wikidata_class, _ = lighthouse
    classstats.refresh([wikidata_class.pk])
    ClassStatistics.objects.filter(pk=wikidata_class.pk).update(tightness=0.123)  # only the row knows this

    assert stats_of(wikidata_class.pk).tightness == 0.123


def test_excluding_an_image_recomputes_them(lighthouse):
    wikidata_class, images = lighthouse
    stats_of(wikidata_class.pk)

    curation.exclude([images[0].pk], "a drawing, not a photo")
    stats = stats_of(wikidata_class.pk)

    assert stats.count == 3
    assert stats.tightness == pytest.approx(class_stats(stored_vectors(images[1:])).tightness)


def test_adding_an_image_recomputes_them(lighthouse):
    wikidata_class, images = lighthouse
    stats_of(wikidata_class.pk)

    images.append(make_image(wikidata_class, 4))
    stats = stats_of(wikidata_class.pk)

    assert stats.count == 5
    assert stats.tightness == pytest.approx(class_stats(stored_vectors(images)).tightness)


def test_moving_an_image_in_and_another_out_recomputes_them(lighthouse):
    wikidata_class, images = lighthouse
    other = make_class("espresso", qid="Q180289")
    newcomer = make_image(other, 99)
    stats_of(wikidata_class.pk)

    curation.move([images[0].pk], other)
    curation.move([newcomer.pk], wikidata_class)

    stats = stats_of(wikidata_class.pk)
    assert stats.count == 4
    assert stats.tightness == pytest.approx(class_stats(stored_vectors([newcomer, *images[1:]])).tightness)


def test_re_embedding_an_image_recomputes_them(lighthouse):
    wikidata_class, images = lighthouse
    stats_of(wikidata_class.pk)

    reembed(images[2], near(centre(wikidata_class.pk), 77, spread=2.0))
    stats = stats_of(wikidata_class.pk)

    assert stats.tightness == pytest.approx(class_stats(stored_vectors(images)).tightness)


def test_a_re_embedding_stamped_before_the_class_s_latest_still_recomputes_them(lighthouse):
    # A slow re-embedding that commits after a newer one: the latest embedding time does not move.
    wikidata_class, images = lighthouse
    stats_of(wikidata_class.pk)

    earlier = CatalogImage.objects.get(pk=images[3].pk).embedded_at - datetime.timedelta(microseconds=1)
    reembed(images[0], near(centre(wikidata_class.pk), 78, spread=2.0), at=earlier)
    stats = stats_of(wikidata_class.pk)

    assert stats.tightness == pytest.approx(class_stats(stored_vectors(images)).tightness)


def test_a_class_without_searchable_images_has_no_statistics(lighthouse):
    wikidata_class, images = lighthouse
    stats_of(wikidata_class.pk)
    curation.exclude([image.pk for image in images], "not lighthouses")

    assert stats_of(wikidata_class.pk) is None
    classstats.refresh()
    assert not ClassStatistics.objects.filter(pk=wikidata_class.pk).exists()


def test_refreshing_recomputes_only_the_classes_that_changed(lighthouse):
    wikidata_class, _ = lighthouse
    other = make_class("espresso", qid="Q180289")
    make_image(other, 99)
    assert classstats.refresh() == 2

    make_image(other, 100)

    assert classstats.refresh() == 1
    assert ClassStatistics.objects.get(pk=other.pk).image_count == 2


def test_the_command_and_the_task_refresh_the_classes_given(lighthouse, capsys):
    wikidata_class, _ = lighthouse
    other = make_class("espresso", qid="Q180289")
    make_image(other, 99)

    call_command("refresh_class_stats", str(other.pk))
    assert list(ClassStatistics.objects.values_list("pk", flat=True)) == [other.pk]
    assert "1 classes recomputed" in capsys.readouterr().out

    assert tasks.refresh_class_stats.apply(args=[[wikidata_class.pk]]).get() == "1 classes recomputed"
    assert ClassStatistics.objects.count() == 2


def test_a_big_class_s_tightness_is_measured_on_a_fixed_sample(lighthouse, monkeypatch):
    wikidata_class, images = lighthouse
    monkeypatch.setattr(vectorstats, "TIGHTNESS_SAMPLE", 3)

    first = classstats.refresh_class(wikidata_class.pk)
    again = classstats.refresh_class(wikidata_class.pk)

    assert first.tightness_sample == 3 and first.count == 4
    assert again.tightness == first.tightness
    assert ClassStatistics.objects.get(pk=wikidata_class.pk).tightness_sample == 3


def test_sampled_tightness_is_repeatable_and_close_to_the_exact_one():
    rng = np.random.default_rng(5)
    vectors = np.stack([near(centre(1), seed, spread=rng.uniform(0.3, 1.5)) for seed in range(1200)])

    sampled = class_stats(vectors)

    assert sampled.tightness_sample == vectorstats.TIGHTNESS_SAMPLE
    assert class_stats(vectors).tightness == sampled.tightness
    similarities = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(similarities, -np.inf)
    exact = np.sort(similarities, axis=1)[:, -vectorstats.CLASS_DEPTH :].mean()
    assert sampled.tightness == pytest.approx(exact, abs=0.01)
