"""What the catalog needs to know about an S3-compatible media storage (django-storages' S3Storage): which
storage it is, how it refuses, what it holds under a folder, and where its URLs point.

The rest of the catalog goes through Django's Storage API, which both storages share.
"""

import weakref
from urllib.parse import urlsplit

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage

# What a storage raises when it will not take, give or drop a file: a folder's OSError, a bucket's
# refusal (ClientError: no such bucket, access denied), no answer or no credentials (BotoCoreError), a
# failed upload (boto3's S3UploadFailedError).
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError, Boto3Error)


def is_object_storage(storage=default_storage):
    return isinstance(storage, S3Storage)


def describe(storage=default_storage):
    """Where the storage keeps files, as an operator would name it: s3://bucket/prefix, or the folder."""
    if is_object_storage(storage):
        return f"s3://{storage.bucket_name}/{storage.location}".rstrip("/")
    return str(storage.location)


def reason(error):
    """The storage's own words for a refusal, without the traceback."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def key(storage, name):
    """The bucket key of a media name (the prefix, then the name)."""
    return f"{storage.location}/{name}" if storage.location else name


def list_files(storage, folder):
    """(name, size, modified timestamp) of every object under folder/, names relative to the prefix."""
    start = len(key(storage, ""))
    for summary in storage.bucket.objects.filter(Prefix=key(storage, f"{folder}/")):
        if summary.key.endswith("/"):
            continue  # a "folder" some consoles make: no file
        yield summary.key[start:], summary.size, summary.last_modified.timestamp()


def modified(storage, name):
    """The object's last-modified timestamp now, or None when it is gone."""
    try:
        return storage.bucket.Object(key(storage, name)).last_modified.timestamp()
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise


_origins = weakref.WeakKeyDictionary()


def url_origin(storage):
    """The scheme://host[:port] the storage's URLs point at (for the Content-Security-Policy), worked out
    once per storage; None while the storage cannot make a URL (no credentials to sign with: the page's
    images fail then anyway)."""
    if storage not in _origins:
        try:
            parts = urlsplit(storage.url("images/origin"))
        except STORAGE_ERRORS:
            return None
        _origins[storage] = f"{parts.scheme}://{parts.netloc}"
    return _origins[storage]
