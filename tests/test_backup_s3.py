"""`manage.py backup` and `restore` with the pictures in an S3 bucket: read from it, written back to it,
each file checked against the manifest. Transactional, as pg_dump and psql need committed rows."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import CatalogImage, WikidataClass
from revimg.backup_manifest import MANIFEST
from revimg.mediastorage import s3_storage
from tests.catalog_factories import make_catalog
from tests.test_backup import backup, restore, similar_answers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.s3]


def bucket_files(bucket):
    return {
        key: bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
        for key in bucket.object_keys()
    }


def empty_bucket(bucket):
    for key in bucket.object_keys():
        bucket.client.delete_object(Bucket=bucket.name, Key=key)


def test_a_restored_backup_puts_the_same_objects_back_and_answers_as_before(s3_media, tmp_path, settings):
    catalog = make_catalog(classes=2, per_class=4)
    asked = [images[0].pk for images in catalog.values()]
    before, files = similar_answers(asked), bucket_files(s3_media)

    backup(tmp_path / "backup")
    WikidataClass.objects.all().delete()
    empty_bucket(s3_media)
    restore(tmp_path / "backup")

    assert similar_answers(asked) == before
    assert bucket_files(s3_media) == files
    assert not settings.MEDIA_ROOT.exists()  # nothing went through the local folder


def test_an_object_lost_before_the_backup_is_listed_as_missing(s3_media, tmp_path):
    image = next(iter(make_catalog(classes=1, per_class=2).values()))[0]
    s3_media.client.delete_object(Bucket=s3_media.name, Key=s3_media.key(image.file.name))

    backup(tmp_path / "backup")

    manifest = json.loads((tmp_path / "backup" / MANIFEST).read_text())
    assert manifest["missing_media"] == [image.file.name]


def test_a_damaged_backup_uploads_nothing(s3_media, tmp_path):
    image = next(iter(make_catalog(classes=1, per_class=2).values()))[0]
    backup(tmp_path / "backup")
    WikidataClass.objects.all().delete()
    empty_bucket(s3_media)
    (tmp_path / "backup" / "media" / image.thumbnail.name).write_bytes(b"changed")

    with pytest.raises(CommandError, match="does not match its manifest"):
        restore(tmp_path / "backup")

    assert s3_media.object_keys() == [] and not CatalogImage.objects.exists()


def test_a_bucket_that_refuses_the_files_leaves_the_database_as_it_was(s3_media, tmp_path, settings):
    make_catalog(classes=1, per_class=2)
    backup(tmp_path / "backup")
    WikidataClass.objects.all().delete()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage("revimg-gone", endpoint_url=s3_media.endpoint),
    }

    with pytest.raises(
        CommandError, match=r"cannot write .* to the media storage s3://revimg-gone: NoSuchBucket"
    ):
        call_command("restore", str(tmp_path / "backup"), stdout=StringIO())

    assert not CatalogImage.objects.exists()
