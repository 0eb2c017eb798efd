"""Turning what a person sends (an uploaded file or a URL) into a decoded image, or a clear refusal.

Every refusal is a catalog.errors.Refusal with a stable `code`, a `message` a person can act on and the
HTTP `status` to answer with: QueryError here, ImageError (catalog.imagefile) and UntrustedFetchError
(catalog.http.untrusted) below. Callers catch Refusal.
"""

import re
from dataclasses import dataclass

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


def image_from_catalog(catalog_image):
    """A catalog image's own file, decoded as a query is (to search a part of it)."""
    with catalog_image.file.open("rb") as stored:
        data = stored.read()
    with decode_slot():
        return decode_query(data)


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


# A region smaller than this on either side of the decoded picture is refused: the model sees 224 px, so a
# smaller crop is mostly enlargement blur.
MIN_BOX_PIXELS = 32
# A fraction from 0 to 1 as a decimal number ("0", "1", "0.25", ".5"): no signs, exponents, nan or inf.
FRACTION = r"\s*[0-9]*\.?[0-9]+\s*"
# What the API's schema says of box (search.serializers); parse_box also checks the numbers' ranges.
BOX_PATTERN = rf"^{FRACTION}(,{FRACTION}){{3}}$"
BOX_FORMAT = (
    "left,top,right,bottom as fractions from 0 to 1 of the picture's width and height, e.g. 0.1,0.2,0.6,0.9"
)


@dataclass(frozen=True)
class Box:
    """A part of a picture: its edges as fractions of the picture's width (left, right) and height."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self):
        return self.right - self.left

    @property
    def height(self):
        return self.bottom - self.top

    @property
    def param(self):
        """The box as the box= parameter writes it, so an address with it can be shared."""
        return ",".join(_fraction_text(edge) for edge in (self.left, self.top, self.right, self.bottom))

    def pixels(self, width, height):
        """The box's (left, top, right, bottom) in whole pixels of a width x height picture."""
        return (
            round(self.left * width),
            round(self.top * height),
            round(self.right * width),
            round(self.bottom * height),
        )


def _fraction_text(value):
    # Four decimals, a hundredth of a percent: never an exponent, which parse_box would refuse.
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def invalid_box(message):
    return QueryError("invalid_box", f"{message} Give box as {BOX_FORMAT}.")


def parse_box(value):
    """A Box from "left,top,right,bottom" (the page's box= and the API's box field); QueryError invalid_box."""
    if not isinstance(value, str):
        raise invalid_box("box must be a string.")
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 4 or not all(re.fullmatch(FRACTION, part) for part in parts):
        raise invalid_box("box must be four numbers separated by commas.")
    box = Box(*(float(part) for part in parts))
    if any(edge > 1 for edge in (box.left, box.top, box.right, box.bottom)):
        raise invalid_box("Every edge of box must be between 0 and 1.")
    if box.left >= box.right or box.top >= box.bottom:
        raise invalid_box("The left edge of box must be before its right, and its top above its bottom.")
    return box


def cropped(image, box):
    """The part of a decoded picture inside box; refused when it is smaller than MIN_BOX_PIXELS a side."""
    left, top, right, bottom = box.pixels(*image.size)
    if right - left < MIN_BOX_PIXELS or bottom - top < MIN_BOX_PIXELS:
        raise QueryError(
            "invalid_box",
            f"That part of the picture is {right - left}x{bottom - top} pixels; "
            f"choose at least {MIN_BOX_PIXELS}x{MIN_BOX_PIXELS}.",
        )
    return image.crop((left, top, right, bottom))
