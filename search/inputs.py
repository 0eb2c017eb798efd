"""Turning what a person sends (an uploaded file or a URL) into a decoded image, or a clear refusal.

Every refusal is a catalog.errors.Refusal with a stable `code`, a `message` a person can act on and the
HTTP `status` to answer with: QueryError here, ImageError (catalog.imagefile) and UntrustedFetchError
(catalog.http.untrusted) below. Callers catch Refusal.
"""

from django.conf import settings

from catalog.embedding import INPUT_SIZE
from catalog.errors import Refusal
from catalog.http.untrusted import fetch_untrusted_image
from catalog.imagefile import open_image
from catalog.store import THUMBNAIL_SIZE
from revimg.bodylimit import upload_too_large

from .decoding import decode_slot
from .service import DEFAULT_K, MAX_K

# The short side a query picture is decoded to, and no more: the model sees a 224 px crop of 224/256 of
# the short side (catalog.imagefile.preprocess), the page shows a thumbnail within 320 px. Four times the
# model's input keeps the vector close to a full decode's: on 24 Caltech photos enlarged tenfold (about
# 3000x2000 px, JPEG), cosine 0.9986 on average (lowest 0.9960), against 0.9962 (0.9878) at twice the input
# and 0.9992 (0.9978) for saving the JPEG again at quality 75. A 48 MP photo is decoded at 1/4 scale
# (2000x1500) and kept as 1195x896 px.
QUERY_SHORT_SIDE = max(4 * INPUT_SIZE, *THUMBNAIL_SIZE)


class QueryError(Refusal):
    """A request that names no picture, two, or a bad k."""


def max_upload_bytes():
    return settings.REVIMG_MAX_UPLOAD_MB * 2**20


def image_from_upload(upload):
    """Decode an UploadedFile, refusing it before reading when it is over the size limit."""
    if upload.size > max_upload_bytes():
        raise upload_too_large()
    with decode_slot():
        # Read in the slot (from memory, or the temporary file Django spooled it to): a request waiting
        # for a slot holds no copy of its picture in memory.
        return decode_query(upload.read())


def image_from_url(url):
    """Fetch (public addresses only) and decode the picture at url."""
    download = fetch_untrusted_image(url.strip(), max_upload_bytes())
    with decode_slot():  # taken after the download: never held while waiting on the network
        return decode_query(download.content)


def decode_query(data):
    """A query picture's bytes decoded as small as a search needs; callers hold a decode slot.

    REVIMG_QUERY_MAX_PIXELS caps the pixels decoded. A JPEG is decoded at up to 1/8 scale, so its own size
    costs little: it stays under REVIMG_MAX_IMAGE_PIXELS, as imports do (a 48 MP phone photo passes),
    and only what is decoded must fit the query cap. Other formats decode whole, so there the query cap
    is the file's own size.
    """
    return open_image(
        data,
        max_bytes=max_upload_bytes(),
        reduce_to=QUERY_SHORT_SIDE,
        max_decoded_pixels=settings.REVIMG_QUERY_MAX_PIXELS,
    )


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
