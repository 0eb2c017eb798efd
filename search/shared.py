"""An upload's answer behind a short-lived, unlisted link: the query is kept under an unguessable token for
REVIMG_SHARED_QUERY_HOURS, so the answer's address (/?upload=<token>) can be reloaded and shared.

What is kept is the decoded query picture as a JPEG (not the upload as sent: no file name, no metadata,
at most MAX_PICTURE_SIDE a side and MAX_PICTURE_BYTES), its thumbnail and its vector. The vector answers
a reload without running the model; the picture lets a part of it (a box) be searched later.
"""

import io
import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from PIL import Image

from catalog.imagefile import open_image
from catalog.store import thumbnail_bytes

from .inputs import QueryError
from .models import SharedQuery
from .service import model_label

# 24 random bytes: 192 bits, written in 32 URL-safe characters.
TOKEN_BYTES = 24
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A query is decoded to 896 px on its short side (search.inputs.QUERY_SHORT_SIDE); a panorama's long side
# is cut to this, and the JPEG made smaller still until it fits MAX_PICTURE_BYTES.
MAX_PICTURE_SIDE = 2048
MAX_PICTURE_BYTES = 2**20
PICTURE_QUALITY = 88

GONE_MESSAGE = (
    "This link to a search has expired, or never existed: the answers to uploaded pictures are kept for {hours} and then "
    "forgotten. Search again with your picture."
)


def keep(image, vector):
    """Keep the query of an upload's search; its token."""
    now = timezone.now()
    shared = SharedQuery.objects.create(
        token=secrets.token_urlsafe(TOKEN_BYTES),
        picture=picture_bytes(image),
        thumbnail=thumbnail_bytes(image),
        embedding=vector,
        model=model_label(),
        created_at=now,
        expires_at=now + timedelta(hours=settings.REVIMG_SHARED_QUERY_HOURS),
    )
    return shared.token


def picture_bytes(image, max_bytes=MAX_PICTURE_BYTES):
    """image as a JPEG of at most max_bytes, halved in size until it fits."""
    image = image.copy()
    image.thumbnail((MAX_PICTURE_SIDE, MAX_PICTURE_SIDE), Image.Resampling.LANCZOS)
    while True:
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=PICTURE_QUALITY)
        if out.tell() <= max_bytes or min(image.size) <= 1:
            return out.getvalue()
        image = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.LANCZOS)


def find(token, now=None):
    """The live SharedQuery of token; QueryError 404 when there is none, 410 when it has expired."""
    found = SharedQuery.objects.filter(token=token).first() if TOKEN_PATTERN.fullmatch(token) else None
    if found is None:
        raise QueryError("link_unknown", gone_message(), status=404)
    if found.expires_at <= (now or timezone.now()):
        raise QueryError("link_expired", gone_message(), status=410)
    return found


def gone_message():
    hours = settings.REVIMG_SHARED_QUERY_HOURS
    return GONE_MESSAGE.format(hours="a day" if hours == 24 else f"{hours:g} hours")


def picture_of(shared):
    """The kept query picture, decoded."""
    return open_image(bytes(shared.picture))


def delete_expired(now=None):
    """Delete the queries whose links have expired, pictures and all; how many."""
    deleted, _ = SharedQuery.objects.expired(now).delete()
    return deleted
