"""sweep_media: files no row refers to are removed once old, and nothing else is, even while imports run."""

import io
import os
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from catalog import sweep, tasks
from catalog.models import CatalogImage
from tests.catalog_factories import make_class, make_image, picture_bytes

pytestmark = pytest.mark.django_db

TWO_HOURS_AGO = time.time() - 2 * 3600


def age(path):
    """Set path's modification time two hours back (beyond the default grace), without following a link."""
    os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO), follow_symlinks=False)
    return path


def stray_file(media, name, data=b"left by a killed import"):
    path = media / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def media(settings):
    settings.MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    return settings.MEDIA_ROOT


@pytest.fixture
def stored(media):
    """An image row with its file and thumbnail, both old."""
    image = make_image(make_class("sweep"), seed=1)
    age(media / image.file.name)
    age(media / image.thumbnail.name)
    return image


def sweep_command(*args):
    out = io.StringIO()
    call_command("sweep_media", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_referenced_files_are_kept(media, stored):
    summary = sweep.sweep_media()

    assert summary.removed == []
    assert (media / stored.file.name).is_file() and (media / stored.thumbnail.name).is_file()


def test_an_old_unreferenced_file_is_removed_and_counted(media, stored):
    orphan = age(stray_file(media, "images/ab/orphan.jpg", b"x" * 1234))

    summary = sweep.sweep_media()

    assert summary.removed == ["images/ab/orphan.jpg"] and summary.bytes_freed == 1234
    assert not orphan.exists()
    assert (media / stored.file.name).is_file()


def test_a_young_unreferenced_file_is_in_flight_and_kept(media):
    in_flight = stray_file(media, "thumbs/cd/in-flight.jpg")

    assert sweep.sweep_media().removed == []
    assert in_flight.is_file()
    age(in_flight)
    assert sweep.sweep_media(timedelta(hours=3)).removed == []  # a longer grace spares it still


def test_a_file_referenced_after_the_listing_is_kept(media, stored):
    # The row goes (its files stay, as after a kill), the sweep lists both files, then a slow transaction
    # commits a row naming them again before the sweep removes anything.
    CatalogImage.objects.filter(pk=stored.pk).delete()
    orphans = sweep.find_orphans()
    assert sorted(o.name for o in orphans) == sorted([stored.file.name, stored.thumbnail.name])
    stored.save(force_insert=True)

    summary = sweep.remove_orphans(orphans)

    assert summary.removed == []
    assert (media / stored.file.name).is_file() and (media / stored.thumbnail.name).is_file()


def test_a_file_written_again_after_the_listing_is_kept(media):
    orphan = age(stray_file(media, "images/ef/orphan.jpg"))
    orphans = sweep.find_orphans()
    orphan.write_bytes(picture_bytes(3))  # now young: someone is writing it

    assert sweep.remove_orphans(orphans).removed == []
    assert orphan.is_file()


def test_a_dry_run_lists_and_removes_nothing(media, stored):
    orphan = age(stray_file(media, "images/ab/orphan.jpg", b"y" * 10))

    out = sweep_command("--dry-run")

    assert "would remove images/ab/orphan.jpg (10 bytes)" in out
    assert "1 files would be removed, 10 bytes freed" in out
    assert orphan.is_file()
    assert stored.file.name not in out


def test_the_command_says_what_it_freed(media, stored):
    age(stray_file(media, "images/ab/orphan.jpg", b"z" * 20))
    age(stray_file(media, "thumbs/ab/orphan.jpg", b"z" * 5))

    assert "2 files removed, 25 bytes freed" in sweep_command()


def test_the_grace_period_is_an_option(media):
    orphan = stray_file(media, "images/ab/orphan.jpg")
    old = time.time() - 10 * 60
    os.utime(orphan, (old, old))

    assert "0 files removed" in sweep_command("--grace-minutes", "15")
    assert "1 files removed" in sweep_command("--grace-minutes", "5")
    assert not orphan.exists()


def test_a_negative_grace_is_refused(media):
    with pytest.raises(CommandError, match="--grace-minutes must be 0 or more"):
        sweep_command("--grace-minutes", "-1")


def test_links_and_what_they_point_at_are_never_touched(media, tmp_path):
    outside = tmp_path / "outside"
    secret = age(stray_file(outside, "ab/secret.jpg"))
    (media / "images").mkdir()
    linked_file = media / "images" / "link.jpg"
    linked_file.symlink_to(secret)
    linked_folder = media / "images" / "ab"
    linked_folder.symlink_to(outside / "ab", target_is_directory=True)
    (media / "thumbs").symlink_to(outside, target_is_directory=True)
    for link in (linked_file, linked_folder, media / "thumbs"):
        age(link)

    summary = sweep.sweep_media()

    assert summary.removed == []
    assert secret.is_file() and all(p.is_symlink() for p in (linked_file, linked_folder, media / "thumbs"))


def test_a_folder_swapped_for_a_link_after_the_listing_leads_nowhere(media, tmp_path):
    outside = tmp_path / "outside"
    secret = age(stray_file(outside, "orphan.jpg"))
    age(stray_file(media, "images/ab/orphan.jpg"))
    orphans = sweep.find_orphans()
    (media / "images" / "ab" / "orphan.jpg").unlink()
    (media / "images" / "ab").rmdir()
    (media / "images" / "ab").symlink_to(outside, target_is_directory=True)

    summary = sweep.remove_orphans(orphans)

    assert summary.removed == [] and secret.is_file()


def test_files_outside_the_upload_folders_are_left_alone(media):
    kept = age(stray_file(media, "notes/readme.txt"))
    top = age(stray_file(media, "robots.txt"))

    assert sweep.sweep_media().removed == []
    assert kept.is_file() and top.is_file()


def test_the_upkeep_task_sweeps(media):
    orphan = age(stray_file(media, "images/ab/orphan.jpg", b"w" * 7))

    assert tasks.sweep_media() == "1 files removed, 7 bytes freed"
    assert not orphan.exists()
