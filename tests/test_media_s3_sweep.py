"""sweep_media on an S3 bucket: old objects no row names go, young ones and referenced ones stay."""

import io
import time
from datetime import timedelta

import pytest
from django.core.management import call_command

from catalog import sweep
from tests.catalog_factories import make_class, make_image

pytestmark = [pytest.mark.django_db, pytest.mark.s3]


def last_modified(bucket, name):
    return bucket.client.head_object(Bucket=bucket.name, Key=bucket.key(name))["LastModified"].timestamp()


def grace_between(older, newer):
    """A grace period whose cutoff falls halfway between two write times, measured from now."""
    return timedelta(seconds=time.time() - (older + newer) / 2)


@pytest.fixture
def old_and_young(s3_media):
    """A stored image and an orphan written first, then (a second later, S3 keeps seconds) a young orphan."""
    image = make_image(make_class("sweep"), seed=1)
    s3_media.put("images/aa/old-orphan.jpg", b"left by a killed import")
    time.sleep(1.1)
    s3_media.put("thumbs/bb/young-orphan.jpg", b"its row is about to commit")
    grace = grace_between(
        last_modified(s3_media, "images/aa/old-orphan.jpg"),
        last_modified(s3_media, "thumbs/bb/young-orphan.jpg"),
    )
    return image, grace


def test_an_old_orphan_goes_and_young_or_referenced_objects_stay(s3_media, old_and_young):
    image, grace = old_and_young

    summary = sweep.sweep_media(grace)

    assert summary.removed == ["images/aa/old-orphan.jpg"]
    assert summary.bytes_freed == len(b"left by a killed import")
    assert s3_media.object_keys() == sorted(
        s3_media.key(name) for name in (image.file.name, image.thumbnail.name, "thumbs/bb/young-orphan.jpg")
    )


def test_objects_outside_the_swept_folders_and_the_prefix_stay(s3_media):
    s3_media.put("notes/readme.txt", b"the operator's")
    s3_media.client.put_object(Bucket=s3_media.name, Key="images/aa/other-prefix.jpg", Body=b"not ours")

    summary = sweep.sweep_media(timedelta(0))

    assert summary.removed == []
    assert "images/aa/other-prefix.jpg" in s3_media.object_keys()


def test_an_orphan_written_again_after_the_listing_stays(s3_media):
    s3_media.put("images/aa/rewritten.jpg", b"same bytes")
    time.sleep(1.1)
    orphans = sweep.find_orphans(timedelta(seconds=1))
    s3_media.put("images/aa/rewritten.jpg", b"same bytes")  # a writer storing the same picture again

    summary = sweep.remove_orphans(orphans, timedelta(seconds=1))

    assert [o.name for o in orphans] == ["images/aa/rewritten.jpg"]
    assert summary.kept == [("images/aa/rewritten.jpg", "written again")]
    assert s3_media.object_keys() == [s3_media.key("images/aa/rewritten.jpg")]


def test_an_orphan_a_row_names_after_the_listing_stays(s3_media):
    image = make_image(make_class("sweep"), seed=2)
    orphans = [sweep.Orphan(image.file.name, 1)]  # as if listed before the row committed

    summary = sweep.remove_orphans(orphans, timedelta(0))

    assert summary.kept == [(image.file.name, "a row refers to it now")]
    assert s3_media.read(image.file.name)


def test_the_command_sweeps_the_bucket(s3_media):
    s3_media.put("images/aa/orphan.jpg", b"12345")
    time.sleep(1.1)
    out = io.StringIO()

    call_command("sweep_media", "--grace-minutes=0", stdout=out)

    assert "1 files removed, 5 bytes freed" in out.getvalue()
    assert s3_media.object_keys() == []
