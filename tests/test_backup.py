"""`manage.py backup` and `manage.py restore`: a catalog backed up, wiped and restored answers as before.

The tests are transactional: pg_dump and psql run in sessions of their own and must see committed rows.
A backup is held at a known point by a lock on a table pg_dump reads (django_session): pg_dump waits at it
after the backup has listed its media and started the dump.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from catalog.models import CatalogImage, WikidataClass
from revimg.backup_manifest import DUMP, MANIFEST, BackupError, file_entry
from revimg.pgtools import tool_folder
from search.service import search_similar
from tests.catalog_factories import make_catalog, make_class, make_image, picture_bytes

pytestmark = pytest.mark.django_db(transaction=True)

DEADLINE_SECONDS = 120  # a bound for a broken backup, not a measurement


def backup(folder):
    call_command("backup", str(folder), stdout=StringIO(), stderr=StringIO())


def restore(folder, *args):
    call_command("restore", str(folder), *args, stdout=StringIO())


def similar_answers(image_ids):
    """What "more like this" answers for each image: the verdict, the classes and the images, with scores."""
    answers = {}
    for image_id in image_ids:
        result = search_similar(image_id)
        answers[image_id] = (
            result.match,
            [(hit.wikidata_class.pk, hit.score) for hit in result.classes],
            [(hit.image.pk, hit.similarity) for hit in result.results],
        )
    return answers


def media_files():
    root = django_settings.MEDIA_ROOT
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def wipe():
    WikidataClass.objects.all().delete()
    shutil.rmtree(django_settings.MEDIA_ROOT)


def wait_for(condition, what):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


@contextmanager
def table_locked(table):
    """Hold an exclusive lock on table in a session of its own until the block ends."""
    holder = connections.create_connection("default")
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        holder.rollback()
        holder.close()


def partial_folders(parent):
    return [path for path in parent.iterdir() if ".partial-" in path.name]


def dump_started(parent):
    """pg_dump has begun writing into a folder under parent (whichever: the backup's own, or its partial)."""
    return any((folder / DUMP).exists() for folder in parent.iterdir() if folder.is_dir())


def test_a_restored_backup_answers_searches_as_before_with_the_same_files(tmp_path):
    catalog = make_catalog(classes=3, per_class=6)
    asked = [images[i].pk for images in catalog.values() for i in (0, 3)]
    before, files = similar_answers(asked), media_files()

    backup(tmp_path / "backup")
    wipe()
    assert CatalogImage.objects.count() == 0 and not django_settings.MEDIA_ROOT.exists()
    restore(tmp_path / "backup")

    assert similar_answers(asked) == before
    assert media_files() == files


def test_backup_refuses_a_folder_that_is_not_empty(tmp_path):
    make_catalog(classes=1, per_class=2)
    target = tmp_path / "backup"
    target.mkdir()
    (target / "notes.txt").write_text("mine")

    with pytest.raises(CommandError, match="backup exists and is not empty"):
        backup(target)
    assert [path.name for path in target.iterdir()] == ["notes.txt"]
    assert partial_folders(tmp_path) == []


def test_backup_leaves_out_rows_committed_while_it_runs_and_their_files(tmp_path):
    make_catalog(classes=1, per_class=3)
    target = tmp_path / "backup"
    with table_locked("django_session"):
        running = threading.Thread(target=backup, args=[target])
        running.start()
        wait_for(lambda: dump_started(tmp_path), "pg_dump to start")
        late = make_image(make_class("made during the backup"), seed=500)
    running.join(DEADLINE_SECONDS)

    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["counts"]["images"] == 3
    assert late.file.name not in {entry["name"] for entry in manifest["media"]}
    restore(target, "--force")
    assert CatalogImage.objects.count() == 3
    assert not CatalogImage.objects.filter(sha256=late.sha256).exists()


def test_restore_refuses_a_database_holding_data_unless_forced(tmp_path):
    make_catalog(classes=1, per_class=3)
    backup(tmp_path / "backup")
    added = make_class("added after the backup")

    with pytest.raises(CommandError, match=r"holds data \(.*catalog_wikidataclass.*--force"):
        restore(tmp_path / "backup")
    assert WikidataClass.objects.filter(pk=added.pk).exists()

    restore(tmp_path / "backup", "--force")
    assert not WikidataClass.objects.filter(pk=added.pk).exists()
    assert CatalogImage.objects.count() == 3


def test_restore_refuses_a_backup_whose_media_file_was_changed(tmp_path):
    make_catalog(classes=1, per_class=3)
    backup(tmp_path / "backup")
    changed = sorted((tmp_path / "backup" / "media" / "images").rglob("*.jpg"))[1]
    changed.write_bytes(picture_bytes(seed=777))
    wipe()

    name = changed.relative_to(tmp_path / "backup").as_posix()
    with pytest.raises(CommandError, match=f"does not match its manifest: {name} is"):
        restore(tmp_path / "backup")
    assert CatalogImage.objects.count() == 0
    assert media_files() == {}


def test_a_restore_cut_short_leaves_the_database_as_it_was(tmp_path):
    make_catalog(classes=2, per_class=4)
    backup(tmp_path / "backup")
    cut_short_dump(tmp_path / "backup")
    make_class("added after the backup")
    before = list(WikidataClass.objects.values_list("pk", "label"))

    with pytest.raises(CommandError, match="pg_restore failed, and the database is unchanged"):
        restore(tmp_path / "backup", "--force")
    assert list(WikidataClass.objects.values_list("pk", "label")) == before
    assert CatalogImage.objects.count() == 8


def cut_short_dump(folder):
    """Truncate the dump inside its data (its schema stays readable), and make the manifest agree."""
    dump = folder / DUMP
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["database"].update(file_entry(dump))
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_killed_backup_is_not_taken_for_a_backup(tmp_path):
    make_catalog(classes=1, per_class=3)
    target = tmp_path / "backup"
    with table_locked("django_session"):
        killed = start_backup_process(target)
        try:
            wait_for(lambda: dump_started(tmp_path) or killed.poll() is not None, "pg_dump to start")
        finally:
            os.killpg(killed.pid, signal.SIGKILL)  # the command and its pg_dump
            killed.wait()

    assert not target.exists()
    [partial] = partial_folders(tmp_path)
    with pytest.raises(CommandError, match="does not exist"):
        restore(target)
    with pytest.raises(CommandError, match="is not a revimg backup: it has no manifest.json"):
        restore(partial)
    backup(target)
    assert (target / MANIFEST).is_file()


def start_backup_process(target):
    env = dict(
        os.environ,
        REVIMG_DATA_DIR=str(django_settings.REVIMG_DATA_DIR),
        REVIMG_DB_NAME=connection.settings_dict["NAME"],
        REVIMG_MEDIA_ROOT=str(django_settings.MEDIA_ROOT),
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "backup", str(target)],
        cwd=django_settings.BASE_DIR,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )


def test_tools_older_than_the_server_are_refused():
    with pytest.raises(BackupError, match="no pg_dump of PostgreSQL 99 or newer"):
        tool_folder(99)
