"""The one rule for addresses we store and show as links: http(s) only, read the way a browser reads them.

Crawled and imported metadata (a Commons licence URL, an image's source) is untrusted text. A value such as
"javascript:alert(3)", or a disguised " JaVa\\tScRiPt:...", would run script when clicked. Browsers strip
leading and trailing C0 control characters and spaces from an href and drop tabs and newlines anywhere in
it (WHATWG URL standard, "basic URL parser"), so the scheme is judged on that form, not on the raw text.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.deconstruct import deconstructible

WEB_SCHEMES = ("http", "https")
# C0 controls (U+0000..U+001F) and space: what the URL parser trims from both ends.
_TRIMMED = "".join(chr(code) for code in range(0x21))
_DROPPED = str.maketrans("", "", "\t\n\r")


def browser_form(value):
    """value as a browser's URL parser sees it before parsing: ends trimmed, tabs and newlines removed."""
    return str(value).strip(_TRIMMED).translate(_DROPPED)


def web_url_or_none(value):
    """value in browser_form() when it is an http(s) address with a host, else None (empty, other schemes,
    unparseable)."""
    if not value:
        return None
    url = browser_form(value)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not host:
        return None
    return url


@deconstructible
class WebURLValidator(URLValidator):
    """Django's URL checks, narrowed to web_url_or_none(): http(s) only, and nothing a browser would trim."""

    schemes = list(WEB_SCHEMES)
    message = "Enter an http:// or https:// address."

    def __call__(self, value):
        if web_url_or_none(value) != value:
            raise ValidationError(self.message, code=self.code, params={"value": value})
        super().__call__(value)


def storable_web_url(value, max_length):
    """What to store for an untrusted address: web_url_or_none(value), or "" when it is none or longer than
    max_length (an address cut short is a wrong one)."""
    url = web_url_or_none(value)
    return url if url and len(url) <= max_length else ""
