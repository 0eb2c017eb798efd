"""Fetching a URL a stranger gave us (search by URL, and re-fetching a catalog image from its source).

Not the crawler's client (crawler.py): the person is waiting, so there are no retries and no shared pace,
and the address is not ours to trust. netguard decides which addresses may be reached; here we connect to
exactly the address it checked (Host header and TLS SNI keep the name), follow redirects one hop at a time
through the same check, and stop reading at the size cap. Nothing here imports the crawler, nor it us.
"""

import time
from urllib.parse import urljoin

import requests
import urllib3
from django.conf import settings

from catalog.errors import Refusal

from . import netguard
from .common import CHUNK_SIZE, Download, user_agent

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 3.0


class UntrustedFetchError(Refusal):
    """A user's URL we would not or could not fetch (413 when the picture is too large, 400 otherwise)."""


def fetch_untrusted_image(url, max_bytes, *, timeout=None, allowed_private=None, max_redirects=MAX_REDIRECTS):
    """GET a picture from a URL given by a user; returns a Download. Raises UntrustedFetchError.

    timeout: seconds for the whole fetch, redirects included (default settings.REVIMG_URL_FETCH_TIMEOUT).
    allowed_private: "host:port" strings that may be private addresses (default the setting, for tests).
    """
    timeout = settings.REVIMG_URL_FETCH_TIMEOUT if timeout is None else timeout
    allowed = settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS if allowed_private is None else allowed_private
    deadline = time.monotonic() + timeout
    for _hop in range(max_redirects + 1):
        target = _checked_target(url, allowed)
        response, pool = _open_pinned(target, deadline)
        try:
            if response.status not in REDIRECT_STATUSES:
                return _read_image_response(url, response, max_bytes, deadline)
            url = _redirect_location(url, response)
        finally:
            response.close()  # never reused: each hop connects afresh to its own checked address
            pool.close()
    raise UntrustedFetchError("url_redirects", f"The address redirected more than {max_redirects} times.")


def _checked_target(url, allowed):
    try:
        return netguard.check_url(url, allowed)
    except netguard.AddressRefused as exc:
        raise UntrustedFetchError(exc.code, exc.message) from exc


def _open_pinned(target, deadline):
    """Send the GET to the first checked address that accepts a connection; (response, pool)."""
    headers = {
        "Host": target.host_header,
        "User-Agent": user_agent(),
        "Accept": "image/*",
        # Pictures are compressed already; refusing content-coding also rules out a gzip bomb.
        "Accept-Encoding": "identity",
    }
    for index, address in enumerate(target.addresses):
        pool = _pool(target, str(address), _remaining(deadline))
        try:
            response = pool.urlopen(
                "GET", target.path, headers=headers, redirect=False, retries=False,
                preload_content=False, decode_content=False, assert_same_host=False,
            )  # fmt: skip
            return response, pool
        except urllib3.exceptions.HTTPError as exc:
            pool.close()
            # A refused connection may be one address family the machine cannot reach: try the next.
            connect_failed = isinstance(exc, urllib3.exceptions.NewConnectionError)
            if not connect_failed or index == len(target.addresses) - 1:
                raise _fetch_failure(exc) from exc
    raise AssertionError("check_url returns at least one address")


def _pool(target, address, seconds):
    timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT, seconds), read=seconds)
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False)
    return urllib3.HTTPSConnectionPool(
        address, target.port, timeout=timeout, maxsize=1, retries=False,
        server_hostname=target.host, assert_hostname=target.host,
        cert_reqs="CERT_REQUIRED", ca_certs=requests.certs.where(),
    )  # fmt: skip


def _remaining(deadline):
    seconds = deadline - time.monotonic()
    if seconds <= 0:
        raise UntrustedFetchError("url_timeout", "The address took too long to answer.")
    return seconds


def _fetch_failure(exc):
    # NewConnectionError is a subclass of ConnectTimeoutError in urllib3 2: ask about it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return UntrustedFetchError("url_unreachable", "The address could not be reached.")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return UntrustedFetchError("url_timeout", "The address took too long to answer.")
    if isinstance(exc, urllib3.exceptions.SSLError):
        return UntrustedFetchError(
            "url_tls", "The address's secure connection (HTTPS) could not be verified."
        )
    return UntrustedFetchError("url_unreachable", "The address could not be reached.")


def _redirect_location(url, response):
    location = response.headers.get("Location")
    if not location:
        raise UntrustedFetchError(
            "url_status", f"The address answered HTTP {response.status} without a target."
        )
    return urljoin(url, location)


def _read_image_response(url, response, max_bytes, deadline):
    if response.status != 200:
        raise UntrustedFetchError("url_status", f"The address answered with HTTP status {response.status}.")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    try:
        # read1: whatever has arrived, so a server that sends a byte at a time still meets the deadline.
        while chunk := response.read1(CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
            _remaining(deadline)
    except (OSError, urllib3.exceptions.HTTPError) as exc:
        raise UntrustedFetchError("url_unreachable", "The address stopped sending before the end.") from exc
    return Download(url, response.status, b"".join(chunks), response.headers.get("Content-Type", ""), {})


def _too_large(max_bytes):
    return UntrustedFetchError(
        "too_large", f"The picture is larger than {max_bytes // 2**20} MB.", status=413
    )
