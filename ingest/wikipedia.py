"""English Wikipedia: the first real picture of an article, read from its wikitext.

Real means a photo or drawing of the subject: infobox image parameters first, then [[File:...]] links in
reading order; never icons, flags, logos, maps, coats of arms, or SVG decorations.
"""

import re

import mwparserfromhell
from django.conf import settings

from catalog.http import crawler as http

FILE_PREFIXES = ("file:", "image:")
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif")
# Words in a file name that betray decoration rather than a picture of the subject.
NOT_A_PICTURE = re.compile(
    r"\b(icon|flag|logo|map|locator|location|coat[ _]of[ _]arms|symbol|seal|emblem|signature|wordmark|"
    r"disambig|stub|question[ _]book|commons-logo|wiki|edit-clear|padlock|audio|speaker|portal)\b",
    re.IGNORECASE,
)
INFOBOX_IMAGE_PARAMS = ("image", "image1", "image_name", "photo", "picture", "img", "image_file")


def article_wikitext(title):
    """The wikitext of an English Wikipedia article (redirects followed), or "" when there is none."""
    try:
        document = http.get_json(
            settings.REVIMG_WIKIPEDIA_API_URL,
            {"action": "parse", "page": title, "prop": "wikitext", "redirects": "1"},
        )
    except http.PermanentHTTPError as exc:
        if "missingtitle" in str(exc):
            return ""
        raise
    wikitext = (document.get("parse") or {}).get("wikitext", "")
    if isinstance(wikitext, dict):  # formatversion=1
        wikitext = wikitext.get("*", "")
    return wikitext


def first_picture(wikitext):
    """The Commons file name of the article's first real picture, or ""."""
    code = mwparserfromhell.parse(wikitext)
    for name in infobox_images(code) + file_links(code):
        if is_picture(name):
            return name
    return ""


def infobox_images(code):
    names = []
    for template in code.filter_templates(recursive=True):
        if not str(template.name).strip().lower().startswith("infobox"):
            continue
        for param in INFOBOX_IMAGE_PARAMS:
            if template.has(param):
                value = clean_file_name(template.get(param).value.strip_code())
                if value:
                    names.append(value)
    return names


def file_links(code):
    names = []
    for link in code.filter_wikilinks(recursive=True):
        target = str(link.title).strip()
        if target.lower().startswith(FILE_PREFIXES):
            names.append(clean_file_name(target.split(":", 1)[1]))
    return [n for n in names if n]


def clean_file_name(value):
    """A bare file name from what editors write: "File:A b.jpg", "A_b.jpg", or a full [[File:...]]."""
    value = value.strip()
    if value.startswith("[[") and "]]" in value:
        value = value[2:].split("]]", 1)[0].split("|", 1)[0]
    if value.lower().startswith(FILE_PREFIXES):
        value = value.split(":", 1)[1]
    value = value.replace("_", " ").strip()
    return value[:1].upper() + value[1:]


def is_picture(name):
    lowered = name.lower()
    return lowered.endswith(PHOTO_EXTENSIONS) and not NOT_A_PICTURE.search(lowered.replace("_", " "))
