"""The store on an S3 bucket (moto's server on loopback): content-addressed objects, a row only once its
objects are written, and a refusal that stops with the storage's name and reason."""

import hashlib

import pytest
from django.conf import settings

from catalog import refresh, store
from catalog.models import CatalogImage
from revimg.mediastorage import s3_storage
from tests.catalog_factories import make_class, make_image, picture_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.s3]


def test_a_stored_picture_is_an_object_with_its_bytes_and_a_committed_row(s3_media):
    data = picture_bytes(1)

    image = make_image(make_class("s3"), seed=1, data=data)

    sha = hashlib.sha256(data).hexdigest()
    assert image.file.name == f"images/{sha[:2]}/{sha}.jpg"
    assert s3_media.read(image.file.name) == data
    assert s3_media.object_keys() == sorted(
        [s3_media.key(image.file.name), s3_media.key(image.thumbnail.name)]
    )
    assert CatalogImage.objects.get(sha256=sha).file.name == image.file.name
    assert not settings.MEDIA_ROOT.exists()  # nothing went to the local folder


def test_objects_are_sent_as_immutable_pictures(s3_media):
    image = make_image(make_class("s3"), seed=2)

    head = s3_media.client.head_object(Bucket=s3_media.name, Key=s3_media.key(image.file.name))

    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentType"] == "image/jpeg"


def test_the_same_picture_twice_is_one_object_and_one_row(s3_media):
    data = picture_bytes(3)
    wikidata_class = make_class("s3")

    first, created = store.add_image(wikidata_class, data)
    again, created_again = store.add_image(wikidata_class, data)

    assert created and not created_again and again.pk == first.pk
    assert len(s3_media.object_keys()) == 2  # the picture and its thumbnail
    assert CatalogImage.objects.count() == 1


@pytest.fixture
def missing_bucket(s3_media, settings):
    """The storage pointed at a bucket that does not exist on the server."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage("revimg-no-such-bucket", prefix="p", endpoint_url=s3_media.endpoint),
    }
    return s3_media


def test_a_missing_bucket_stops_with_its_name_and_leaves_no_row(missing_bucket):
    with pytest.raises(store.MediaWriteError) as refused:
        store.add_image(make_class("s3"), picture_bytes(4))

    assert "s3://revimg-no-such-bucket/p" in str(refused.value)
    assert "NoSuchBucket" in str(refused.value)
    assert not CatalogImage.objects.exists()


def test_no_credentials_stop_with_the_reason_and_leave_nothing(s3_media, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    with pytest.raises(store.MediaWriteError, match="Unable to locate credentials"):
        store.add_image(make_class("s3"), picture_bytes(5))

    assert not CatalogImage.objects.exists() and s3_media.object_keys() == []


def test_an_endpoint_that_does_not_answer_stops_the_import(s3_media, settings):
    from tests.app_server import free_loopback_port

    nobody = f"http://127.0.0.1:{free_loopback_port()}"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(s3_media.name, prefix="p", endpoint_url=nobody),
    }

    with pytest.raises(store.MediaWriteError, match="Could not connect to the endpoint URL"):
        store.add_image(make_class("s3"), picture_bytes(6))

    assert not CatalogImage.objects.exists() and s3_media.object_keys() == []


def test_a_failed_row_deletes_the_objects_it_wrote(s3_media, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(CatalogImage, "save", refuse)

    with pytest.raises(RuntimeError):
        store.add_image(make_class("s3"), picture_bytes(7))

    assert s3_media.object_keys() == []


def test_delete_unreferenced_keeps_objects_a_row_names(s3_media):
    kept = make_image(make_class("s3"), seed=8)
    s3_media.put("images/00/orphan.jpg", b"left behind")

    store.delete_unreferenced(["images/00/orphan.jpg", kept.file.name], kept.file.storage)

    assert s3_media.object_keys() == sorted([s3_media.key(kept.file.name), s3_media.key(kept.thumbnail.name)])


@pytest.mark.slow
def test_reembedding_reads_the_picture_back_from_the_bucket(s3_media):
    image = make_image(make_class("s3"), seed=9)
    CatalogImage.objects.filter(pk=image.pk).update(embedding_version="old")

    summary = refresh.reembed([image.pk])

    assert (summary.done, summary.failed) == (1, 0)


@pytest.mark.slow
def test_a_picture_gone_from_the_bucket_fails_that_image_only(s3_media):
    gone, kept = make_image(make_class("s3"), seed=10), make_image(make_class("s3b"), seed=11)
    s3_media.client.delete_object(Bucket=s3_media.name, Key=s3_media.key(gone.file.name))

    summary = refresh.reembed([gone.pk, kept.pk])

    assert (summary.done, summary.failed) == (1, 1) and summary.failures[0][0] == gone.pk
