"""Where the pictures live: the local media folder, or an S3-compatible bucket shared by every process.

settings.STORAGES["default"] is built here from the REVIMG_S3_* variables (read in revimg/settings.py), so
the tests can build the same storage for a bucket of their own. Credentials are never settings: boto3 reads
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, a profile or an instance role itself.
"""

from urllib.parse import urlsplit

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

LOCAL, S3 = "local", "s3"

# Media names are content hashes, so a name never points at other bytes: caches may keep them for a year.
IMMUTABLE = "public, max-age=31536000, immutable"

LOCAL_STORAGE = {
    # Overwriting a file rewrites the same bytes: a crash between writing a file and committing its row
    # leaves nothing that a re-run does not repair.
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"allow_overwrite": True},
}


def s3_storage(
    bucket, prefix="", endpoint_url="", region="us-east-1", signed=True, expiry=3600, public_url=""
):
    """The STORAGES entry for pictures in bucket under prefix; ImproperlyConfigured for a bad combination."""
    if not bucket:
        raise ImproperlyConfigured("REVIMG_MEDIA_STORAGE=s3 needs REVIMG_S3_BUCKET")
    if public_url and signed:
        # django-storages ignores the signature for a custom domain: the "signed" URLs would be plain ones.
        raise ImproperlyConfigured("REVIMG_S3_PUBLIC_URL serves public URLs: set REVIMG_S3_SIGNED_URLS=false")
    options = {
        "bucket_name": bucket,
        "location": prefix.strip("/"),
        "endpoint_url": _http_url("REVIMG_S3_ENDPOINT_URL", endpoint_url) or None,
        "region_name": region,
        "querystring_auth": signed,
        "querystring_expire": expiry,
        "file_overwrite": True,
        "object_parameters": {"CacheControl": IMMUTABLE},
        "client_config": Config(
            # Version 4 is the signature every region and S3-compatible server takes (2 is refused by newer
            # AWS regions). MinIO and Ceph expect the bucket in the path unless their DNS is set up for it.
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # A storage that does not answer fails a write within a minute instead of hanging a worker.
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
        ),
    }
    if public_url:
        parts = urlsplit(_http_url("REVIMG_S3_PUBLIC_URL", public_url))
        options["custom_domain"] = parts.netloc + parts.path.rstrip("/")
        options["url_protocol"] = f"{parts.scheme}:"
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


def _http_url(name, value):
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"{name} must be an http(s) URL such as https://host[:port], got {value!r}"
        )
    return value
