"""What both outbound clients share: who we say we are, and what a finished download looks like."""

from dataclasses import dataclass

import requests
from django.conf import settings

CHUNK_SIZE = 64 * 1024


@dataclass
class Download:
    url: str  # the final URL, after redirects
    status: int
    content: bytes
    content_type: str
    headers: dict


def user_agent():
    # Wikimedia's User-Agent policy: a tool name and version, a way to contact its operator, the library.
    return f"revimg/{settings.REVIMG_VERSION} ({settings.REVIMG_CONTACT}) requests/{requests.__version__}"
