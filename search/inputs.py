"""Turning what a person sends (an uploaded file or a URL) into a decoded image, or a clear refusal.

Every refusal is a catalog.errors.Refusal with a stable `code`, a `message` a person can act on and the
HTTP `status` to answer with: QueryError here, ImageError (catalog.imagefile) and UntrustedFetchError
(catalog.http.untrusted) below. Callers catch Refusal.
"""

from django.conf import settings

from catalog.errors import Refusal
from catalog.http.untrusted import fetch_untrusted_image
from catalog.imagefile import open_image

from .service import DEFAULT_K, MAX_K


class QueryError(Refusal):
    """A request that names no picture, two, or a bad k."""


def max_upload_bytes():
    return settings.REVIMG_MAX_UPLOAD_MB * 2**20


def image_from_upload(upload):
    """Decode an UploadedFile, refusing it before reading when it is over the size limit."""
    if upload.size > max_upload_bytes():
        raise QueryError(
            "too_large", f"The picture is larger than {settings.REVIMG_MAX_UPLOAD_MB} MB.", status=413
        )
    return open_image(upload.read(), max_bytes=max_upload_bytes())


def image_from_url(url):
    """Fetch (public addresses only) and decode the picture at url."""
    download = fetch_untrusted_image(url.strip(), max_upload_bytes())
    return open_image(download.content, max_bytes=max_upload_bytes())


def query_image(upload=None, url=None):
    """The one picture to search for: an upload or a URL, not both, not neither."""
    if upload is not None and url:
        raise QueryError("ambiguous_query", "Send either a picture or an address, not both.")
    if upload is not None:
        return image_from_upload(upload)
    if url:
        return image_from_url(url)
    raise QueryError("no_image", "Choose a picture, or give the address of one.")


def positive_int(value):
    """value as a whole number from 1, or None: a JSON integer, or a string of ASCII digits.

    int() alone would also take " 5", "+5", "5_0" and the digits of other scripts, none of which is an
    integer in the API's schema; and a JSON true or 2.5 is not a count, whatever int() makes of it.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        try:
            value = int(value)
        except ValueError:  # more digits than Python converts: no id, page or count is that large
            return None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value >= 1 else None


def k_in(params):
    """The number of results asked for in params (query string or body): DEFAULT_K when k is absent."""
    return parse_k(params["k"]) if "k" in params else DEFAULT_K


def parse_k(value):
    """k as given: a whole number from 1 to MAX_K. Given empty (k= or JSON null) is refused, not read as
    absent: the schema says integer, and a client wanting the default leaves k out."""
    k = positive_int(value)
    if k is None or k > MAX_K:
        raise QueryError("invalid_k", f"k must be a whole number from 1 to {MAX_K}.")
    return k
