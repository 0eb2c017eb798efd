"""Removing media files no row refers to: what a process killed between writing a file and committing its
row leaves behind (catalog.store writes the files first), or a write that failed half-way.

Safe while imports and crawls run:
- Only files not modified for a grace period. The store commits a row moments after writing its files, so
  a young file nobody references is one in flight.
- Names are content-addressed and the store overwrites: a writer storing the same picture again rewrites
  its files, which makes them young again. So age and references are both read again just before each
  removal (a row committed after the listing: a slow transaction, a restored backup); only the instant
  between that last look and the removal is left to chance.
- On object storage (catalog.objectstore) the same: keys listed under the swept folders of the prefix, age
  read from LastModified, and age and references read again just before each DELETE.
- Nothing outside MEDIA_ROOT: links are neither followed nor removed, and each removal walks down to its
  file without following a link, so a folder swapped for a link meanwhile leads nowhere.
- Only the folders the upload paths write into (catalog.models), never other files an operator keeps there.
- Folders stay: removing one could race with a writer about to create a file in it.
"""

import errno
import os
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from . import objectstore
from .mediarefs import is_plain_name, is_referenced, referenced_names
from .models import IMAGES_FOLDER, THUMBS_FOLDER

DEFAULT_GRACE = timedelta(hours=1)
SWEPT_FOLDERS = (IMAGES_FOLDER, THUMBS_FOLDER)
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


@dataclass(frozen=True)
class Orphan:
    name: str  # relative to MEDIA_ROOT, "/"-separated, as rows store names
    size: int


@dataclass
class SweepSummary:
    removed: list = field(default_factory=list)  # names
    bytes_freed: int = 0
    kept: list = field(default_factory=list)  # (name, why): referenced meanwhile, changed, gone
    failed: list = field(default_factory=list)  # (name, the storage's reason)

    def __str__(self):
        text = f"{len(self.removed)} files removed, {self.bytes_freed} bytes freed"
        if self.kept:
            text += f", {len(self.kept)} kept (changed since listed)"
        if self.failed:
            text += f", {len(self.failed)} could not be removed"
        return text


def sweep_media(grace=DEFAULT_GRACE):
    """Remove the orphans in the media storage (find_orphans, then remove_orphans); a SweepSummary."""
    return remove_orphans(find_orphans(grace), grace)


def find_orphans(grace=DEFAULT_GRACE):
    """The files in the swept folders that no row refers to and that nobody wrote within grace.

    Files are listed before the references are read: a file whose row committed during the listing is then
    seen as referenced, not as an orphan.
    """
    cutoff = time.time() - grace.total_seconds()
    listed = [(name, size) for name, size, mtime in _listing() if mtime < cutoff]
    referenced = referenced_names()
    return [Orphan(name, size) for name, size in listed if name not in referenced]


def remove_orphans(orphans, grace=DEFAULT_GRACE):
    """Remove each orphan still unreferenced, still old and still a regular file right now; a SweepSummary."""
    summary = SweepSummary()
    if not orphans:
        return summary
    cutoff = time.time() - grace.total_seconds()
    with _remover() as remove_if_old:
        for orphan in orphans:
            if is_referenced(orphan.name):
                summary.kept.append((orphan.name, "a row refers to it now"))
                continue
            try:
                why_kept = remove_if_old(orphan.name, cutoff)
            except objectstore.STORAGE_ERRORS as error:
                summary.failed.append((orphan.name, objectstore.reason(error)))
                continue
            if why_kept:
                summary.kept.append((orphan.name, why_kept))
            else:
                summary.removed.append(orphan.name)
                summary.bytes_freed += orphan.size
    return summary


def media_root():
    return Path(settings.MEDIA_ROOT)


def _listing():
    """(name, size, modified timestamp) of every file in the swept folders of the media storage."""
    if objectstore.is_object_storage(default_storage):
        for folder in SWEPT_FOLDERS:
            yield from objectstore.list_files(default_storage, folder)
        return
    for name, info in _regular_files(media_root()):
        yield name, info.st_size, info.st_mtime


@contextmanager
def _remover():
    """A function (name, cutoff) removing one file if it is still old: None once removed, else why kept."""
    if objectstore.is_object_storage(default_storage):
        yield partial(_delete_old_object, default_storage)
        return
    root = os.open(media_root(), os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield partial(_unlink_old_file, root)
    finally:
        os.close(root)


def _delete_old_object(storage, name, cutoff):
    # S3 has no "delete if unchanged": as on a folder, only the instant after this look is left to chance.
    if not is_plain_name(name):
        return "not a plain name"
    modified = objectstore.modified(storage, name)
    if modified is None:
        return "gone"
    if modified >= cutoff:
        return "written again"
    storage.delete(name)
    return None


def _regular_files(root):
    """(name, lstat result) of every regular file under the swept folders; links are not followed."""
    if not root.is_dir():
        return
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in SWEPT_FOLDERS:
            if not _is_real_folder(folder, root_fd):
                continue
            # fwalk enters no linked folder when follow_symlinks is off.
            for path, _dirs, files, dir_fd in os.fwalk(folder, dir_fd=root_fd, follow_symlinks=False):
                for file_name in files:
                    try:
                        info = os.stat(file_name, dir_fd=dir_fd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed meanwhile
                    if stat.S_ISREG(info.st_mode):
                        yield f"{path}/{file_name}", info
    finally:
        os.close(root_fd)


def _is_real_folder(name, dir_fd):
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _unlink_old_file(root_fd, name, cutoff):
    """Remove name under root_fd if it is still a regular file older than cutoff. None once removed, else
    why it was kept."""
    *folders, file_name = name.split("/")
    if not is_plain_name(name):
        return "not a plain name"
    dir_fd = _open_folders(root_fd, folders)
    if dir_fd is None:
        return "its folder is gone or is a link"
    try:
        try:
            info = os.stat(file_name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return "gone"
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_mtime >= cutoff:
            return "written again"
        os.unlink(file_name, dir_fd=dir_fd)
        return None
    finally:
        os.close(dir_fd)


def _open_folders(root_fd, folders):
    """A descriptor of root_fd/folders/..., each step opened without following a link; None if a step is
    gone or is a link."""
    dir_fd = os.dup(root_fd)
    for folder in folders:
        try:
            next_fd = os.open(folder, _DIRECTORY_FLAGS, dir_fd=dir_fd)
        except OSError as error:
            os.close(dir_fd)
            if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
        os.close(dir_fd)
        dir_fd = next_fd
    return dir_fd
