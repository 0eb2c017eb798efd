"""Wikimedia Commons: a file's licence and author (imageinfo + extmetadata), and a thumbnail of it.

We download a thumbnail of a standard width, not the original: originals can be hundreds of megapixels,
and Wikimedia renders (and caches) only some widths.
"""

import html
import re
from dataclasses import dataclass

from django.conf import settings
from django.utils.html import strip_tags

from catalog.http import crawler as http
from catalog.models import CatalogImage
from catalog.weburl import storable_web_url

PICTURE_MEDIA_TYPES = {"BITMAP", "DRAWING", ""}
LICENSE_URL_LENGTH = CatalogImage._meta.get_field("license_url").max_length


class NotUsable(Exception):
    """A file we must not or cannot use: non-free, missing, not a picture. Permanent."""


@dataclass
class FileInfo:
    title: str  # without "File:"
    download_url: str
    license: str = ""
    license_url: str = ""
    artist: str = ""
    credit: str = ""
    attribution_required: bool | None = None


def file_info(name, width=None):
    """FileInfo for a Commons file name; raises NotUsable for non-free, missing or non-picture files."""
    width = width or settings.REVIMG_THUMB_WIDTH
    document = http.get_json(
        settings.REVIMG_COMMONS_API_URL,
        {
            "action": "query",
            "titles": "File:" + name,
            "prop": "imageinfo",
            "iiprop": "url|size|mediatype|extmetadata",
            "iiurlwidth": str(width),
            "iiextmetadatafilter": "Artist|Credit|LicenseShortName|LicenseUrl|AttributionRequired|NonFree",
            "redirects": "1",
        },
    )
    pages = (document.get("query") or {}).get("pages") or []
    if isinstance(pages, dict):  # formatversion=1
        pages = list(pages.values())
    info = next((p.get("imageinfo") for p in pages if p.get("imageinfo")), None)
    if not info:
        raise NotUsable(f"File:{name} is not on Commons (deleted or renamed)")
    return parse_imageinfo(name, info[0], width)


def parse_imageinfo(name, info, width):
    meta = {key: value.get("value") for key, value in (info.get("extmetadata") or {}).items()}
    if truthy(meta.get("NonFree")):
        raise NotUsable(f"File:{name} is not free (NonFree)")
    if info.get("mediatype", "") not in PICTURE_MEDIA_TYPES:
        raise NotUsable(f"File:{name} is {info['mediatype'].lower()}, not a picture")
    return FileInfo(
        title=name,
        download_url=thumbnail_url(name, info, width),
        license=plain(meta.get("LicenseShortName"))[:100],
        license_url=storable_web_url(plain(meta.get("LicenseUrl")), LICENSE_URL_LENGTH),
        artist=plain(meta.get("Artist")),
        credit=plain(meta.get("Credit")),
        attribution_required=None
        if meta.get("AttributionRequired") is None
        else truthy(meta["AttributionRequired"]),
    )


def thumbnail_url(name, info, width):
    """The standard-width thumbnail (MediaWiki answers with the original when that is no wider)."""
    if info.get("thumburl"):
        return info["thumburl"]
    # Answers without iiurlwidth (older captures) carry only the original: fine when it is small.
    if info.get("url") and 0 < (info.get("width") or 0) <= width and not name.lower().endswith(".svg"):
        return info["url"]
    raise NotUsable(f"File:{name}: Commons gave no thumbnail of width {width}")


def truthy(value):
    return str(value).strip().lower() in ("true", "1", "yes")


def plain(value):
    """Text from extmetadata's HTML fragments: tags dropped, entities decoded, whitespace collapsed."""
    if value is None:
        return ""
    return re.sub(r"\s+", " ", html.unescape(strip_tags(str(value)))).strip()


def download(info):
    """The thumbnail's bytes, capped at REVIMG_MAX_DOWNLOAD_MB."""
    return http.download(info.download_url, settings.REVIMG_MAX_DOWNLOAD_MB * 1024 * 1024).content
