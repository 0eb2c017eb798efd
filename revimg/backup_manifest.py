"""A backup's folder and its manifest: what a backup holds, and the check that it still holds exactly that.

Layout of a backup folder:
    manifest.json    written last: a folder without it is no (complete) backup
    database.dump    pg_dump's custom format
    media/<name>     each media file the dump's rows refer to, under its name in the media storage (a name
                     in MEDIA_ROOT, or a key in the bucket after REVIMG_S3_PREFIX)
"""

import hashlib
import json
import os
import re
from pathlib import Path

from catalog.mediarefs import is_plain_name

FORMAT = "revimg-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
MEDIA = "media"
CHUNK = 1024 * 1024

# catalog.models.image_upload_path: an image file is named by the SHA-256 of its bytes.
CONTENT_ADDRESSED = re.compile(r"images/[0-9a-f]{2}/([0-9a-f]{64})\.[a-z0-9]+")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


def copy_hashed(source, target):
    """Copy the file at source to target (made, or overwritten), flushed to disk; returns (size, sha256)."""
    with open(source, "rb") as reader:
        return copy_stream_hashed(reader, target)


def copy_stream_hashed(reader, target):
    """Copy what reader holds to target (made, or overwritten), flushed to disk; returns (size, sha256)."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


def file_entry(path):
    """{"size", "sha256"} of the file at path."""
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def write_manifest(folder, manifest):
    path = folder / MANIFEST
    with open(path, "w") as file:
        json.dump(manifest, file, indent=1, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())


def read_manifest(folder):
    """The manifest of the backup in folder; BackupError when folder is no complete revimg backup."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackupError(f"{folder} does not exist or is not a folder")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{folder} is not a revimg backup: it has no {MANIFEST}, which a backup writes last (a backup "
            "that did not finish leaves a hidden .<name>.partial-* folder instead, which may be deleted)"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BackupError(
            f"{folder} is not a revimg backup: {MANIFEST} is not valid JSON ({error})"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{folder} is not a revimg backup: {MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{folder} is a backup of format {manifest.get('format_version')!r}; this revimg reads "
            f"format {FORMAT_VERSION}"
        )
    try:
        for entry in [manifest["database"], *manifest["media"]]:
            check_media_name(entry["name"])
            int(entry["size"]), str(entry["sha256"])
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{folder} is not a revimg backup: {MANIFEST} is incomplete") from None
    return manifest


def check_media_name(name):
    """Refuse a name that would land outside MEDIA_ROOT (a damaged or hostile manifest)."""
    if not is_plain_name(name):
        raise BackupError(f"the manifest names a media file outside the media folder: {name!r}")


def verify_entry(name, expected, actual):
    """BackupError unless a file's actual {"size", "sha256"} is what the manifest says (and, for a
    content-addressed image, what its name says)."""
    named = CONTENT_ADDRESSED.fullmatch(name)
    if actual != {"size": expected["size"], "sha256": expected["sha256"]} or (
        named and named.group(1) != actual["sha256"]
    ):
        raise BackupError(
            f"the backup does not match its manifest: {name} is {actual['size']} bytes with SHA-256 "
            f"{actual['sha256'][:12]}..., the manifest says {expected['size']} bytes, "
            f"{expected['sha256'][:12]}...: the backup was changed or damaged, and nothing was restored"
        )
