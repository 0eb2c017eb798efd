"""`manage.py backup DIR`: the database and the media files its rows refer to, consistent with each other.

Consistency. The dump and the list of media files come from one snapshot: a REPEATABLE READ transaction
exports its snapshot, lists the files its rows refer to, and pg_dump runs in that very snapshot
(--snapshot). The files are copied after the dump: catalog.store writes a file before committing its row
and never changes a file once written, so every file a row of the dump names is stored already. Files are
read through the media storage: the media folder, or the S3 bucket. Rows
committed after the snapshot are not in the dump, and their files are not copied. Only a file deleted
meanwhile (its row removed after the snapshot) can be absent: the manifest lists it as missing, and the
command says so.

A backup is written into a hidden folder beside DIR and renamed to DIR once whole (manifest last), so a
backup cut short never looks like one.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from catalog import objectstore
from catalog.embedding import MODEL_NAME, MODEL_VERSION
from catalog.mediarefs import referenced_names
from catalog.models import CatalogImage, WikidataClass

from .backup_manifest import (
    DUMP,
    FORMAT,
    FORMAT_VERSION,
    MEDIA,
    BackupError,
    copy_stream_hashed,
    file_entry,
    write_manifest,
)
from .pgtools import connection_args, error_gist, server_major, tool_folder, tool_major


def make_backup(folder):
    """Back up the database and its media into folder (new, or empty); returns the manifest."""
    folder = Path(folder).absolute()
    _check_target(folder)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        manifest = _write_backup(partial)
        _publish(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _check_target(folder):
    if not folder.parent.is_dir():
        raise BackupError(f"{folder.parent} does not exist: make it first, or choose another place")
    if folder.exists() and not folder.is_dir():
        raise BackupError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise BackupError(f"{folder} exists and is not empty: a backup goes into a new (or empty) folder")


def _write_backup(partial):
    database, contents = dump_database(partial / DUMP)
    media, missing = copy_media(contents["media_names"], partial / MEDIA)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "revimg_version": settings.REVIMG_VERSION,
        "model": {"name": MODEL_NAME, "version": MODEL_VERSION},
        "created_at": timezone.now().isoformat(),
        "counts": contents["counts"],
        "database": database,
        "media": media,
        "missing_media": missing,
    }
    write_manifest(partial, manifest)
    return manifest


def dump_database(path):
    """pg_dump into path; returns its manifest entry, and the media names and counts of the same snapshot."""
    if connection.in_atomic_block:
        raise BackupError("a backup takes a snapshot of its own: run it outside any transaction")
    major = server_major(connection)
    tools = tool_folder(major)
    conninfo, env = connection_args(connection)
    with transaction.atomic():
        snapshot = _exported_snapshot()
        contents = _snapshot_contents()
        command = [tools / "pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={path}"]
        finished = subprocess.run(
            [*map(str, command), f"--dbname={conninfo}"], env=env, capture_output=True, text=True
        )
    if finished.returncode != 0:
        raise BackupError(f"pg_dump failed: {error_gist(finished.stderr)}")
    entry = {
        "name": DUMP,
        **file_entry(path),
        "server_major": major,
        "pg_dump_major": tool_major(tools / "pg_dump"),
    }
    return entry, contents


def _exported_snapshot():
    with connection.cursor() as cursor:
        # Must be the transaction's first statement; the snapshot lives as long as the transaction.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]


def _snapshot_contents():
    images = CatalogImage.objects.all()
    return {
        "media_names": sorted(referenced_names()),
        "counts": {
            "classes": WikidataClass.objects.count(),
            "images": images.count(),
            "searchable_images": images.searchable().count(),
        },
    }


def copy_media(names, target):
    """Copy the named files from the media storage under target; returns (manifest entries, names not
    found). BackupError when the storage will not give them."""
    entries, missing = [], []
    for name in names:
        try:
            with default_storage.open(name, "rb") as reader:
                size, sha256 = copy_stream_hashed(reader, target / name)
        except FileNotFoundError:
            missing.append(name)
            continue
        except objectstore.STORAGE_ERRORS as error:
            raise BackupError(
                f"cannot read {name} from the media storage {objectstore.describe()}: "
                f"{objectstore.reason(error)}"
            ) from error
        entries.append({"name": name, "size": size, "sha256": sha256})
    return entries, missing


def _publish(partial, folder):
    # rename(2) replaces an empty folder, and refuses one that is not empty.
    try:
        os.rename(partial, folder)
    except OSError as error:
        raise BackupError(f"cannot move the finished backup to {folder}: {error.strerror}") from None
    descriptor = os.open(folder.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
