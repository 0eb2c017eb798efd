"""What a browser would follow in a page or a JSON answer, judged independently of catalog.weburl."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

LINK_ATTRIBUTES = {"href", "src", "action", "formaction", "srcset", "poster", "data"}
C0_AND_SPACE = "".join(chr(code) for code in range(0x21))


def scheme_as_browser_reads(url):
    """The scheme a browser takes from url: it trims C0 controls and spaces from the ends, drops tabs and
    newlines anywhere (WHATWG URL parser), and compares schemes case-insensitively. "" for a relative URL."""
    cleaned = url.strip(C0_AND_SPACE).replace("\t", "").replace("\n", "").replace("\r", "")
    return urlsplit(cleaned).scheme.lower()


class _LinkCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in LINK_ATTRIBUTES and value is not None]


def links_in(html):
    """Every address in a link-bearing attribute of html, entities decoded as a browser decodes them."""
    collector = _LinkCollector()
    collector.feed(html)
    collector.close()
    return collector.links


def unsafe_links(html):
    """The addresses in html whose scheme is neither http(s) nor absent (relative)."""
    return [url for url in links_in(html) if scheme_as_browser_reads(url) not in ("", "http", "https")]


def unsafe_json_urls(document):
    """Values of *_url keys anywhere in a JSON document that are neither null nor http(s)."""
    if isinstance(document, list):
        return [bad for item in document for bad in unsafe_json_urls(item)]
    if not isinstance(document, dict):
        return []
    found = []
    for key, value in document.items():
        if (
            key.endswith("_url")
            and value is not None
            and scheme_as_browser_reads(value) not in ("http", "https")
        ):
            found.append(value)
        found += unsafe_json_urls(value)
    return found
