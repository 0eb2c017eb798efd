"""store.save_batch: many pictures in one COPY and one commit, all or nothing, rows as save() makes them."""

import numpy as np
import pytest
from django.db import DataError

from catalog import store
from catalog.models import CatalogImage
from tests.catalog_factories import centre, make_class, near, picture_bytes

pytestmark = pytest.mark.django_db


def candidates(seeds, **metadata):
    metadata.setdefault("origin", CatalogImage.Origin.LOCAL)
    return [store.prepare(picture_bytes(seed, size=(64 + seed, 48)), **metadata) for seed in seeds]


def media_files(settings):
    return sorted(
        str(p.relative_to(settings.MEDIA_ROOT)) for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()
    )


def test_a_batch_stores_the_rows_and_files_that_save_stores_one_by_one():
    things = make_class("things")
    batch = candidates([1, 2, 3], origin_detail="a/b.jpg", license="CC0")
    one_by_one = candidates([4])
    vectors = [near(centre(1), seed) for seed in range(4)]

    stored = store.save_batch([(things, c, v) for c, v in zip(batch, vectors, strict=False)])
    single, _ = store.save(things, one_by_one[0], vectors[3])

    assert [image.pk for image in stored] == sorted(image.pk for image in stored) and single.pk > stored[
        -1
    ].pk
    for image, candidate, vector in zip(stored, batch, vectors, strict=False):
        row = CatalogImage.objects.get(pk=image.pk)
        assert row.sha256 == candidate.sha256 and row.phash == store.perceptual_hash(candidate.image)
        assert (row.width, row.height) == candidate.size
        assert (row.origin_detail, row.license, row.wikidata_class_id) == ("a/b.jpg", "CC0", things.pk)
        assert np.allclose(np.asarray(row.embedding), vector, atol=1e-7)
        assert (
            row.embedding_model == single.embedding_model
            and row.embedding_version == single.embedding_version
        )
        assert (
            row.embedded_at and row.created_at and row.updated_at and row.status == CatalogImage.Status.ACTIVE
        )
        assert row.file.read() == candidate.data and row.thumbnail.storage.exists(row.thumbnail.name)
        assert row.file.name == f"images/{candidate.sha256[:2]}/{candidate.sha256}.jpg"
    assert CatalogImage.objects.nearest(vectors[0], 1)[0].pk == stored[0].pk


def test_a_batch_that_fails_leaves_no_row_and_no_file_of_any_picture(settings):
    things = make_class("things")
    batch = candidates([1, 2]) + candidates([3], origin_detail="x" * 300)  # too long for its column

    with pytest.raises(DataError):
        store.save_batch([(things, c, near(centre(1), i)) for i, c in enumerate(batch)])

    assert not CatalogImage.objects.exists()
    assert media_files(settings) == []


def test_a_failing_batch_keeps_the_files_other_rows_refer_to(settings):
    things = make_class("things")
    kept, _ = store.save(things, candidates([1])[0], near(centre(1), 1))
    before = media_files(settings)
    batch = candidates([1]) + candidates([2], origin_detail="x" * 300)

    with pytest.raises(DataError):
        store.save_batch([(things, c, near(centre(1), i)) for i, c in enumerate(batch)])

    assert list(CatalogImage.objects.values_list("pk", flat=True)) == [kept.pk]
    assert media_files(settings) == before
