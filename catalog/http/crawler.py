"""The polite client: how the crawler (and only trusted code) talks to Wikimedia and other hosts we chose.

Politeness is decided in one place: a User-Agent that says who we are, one request at a time per process,
one shared pace per host across processes (through Redis when configured), timeouts on every call, gzip,
retries with backoff only for errors that may pass (connection trouble, timeouts, 5xx, 429, MediaWiki's
maxlag), and Retry-After honoured. Never for a URL a person gave us: that is untrusted.py's.

Errors say whether they are worth retrying: TransientHTTPError may pass later, PermanentHTTPError will not.
"""

import logging
import random
import threading
import time
from urllib.parse import urlsplit

import requests
from django.conf import settings

from .common import CHUNK_SIZE, Download, user_agent

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class HTTPError(Exception):
    """A request that did not give us what we asked for."""

    transient = False

    def __init__(self, message, url="", status=None, retry_after=None):
        super().__init__(message)
        self.url = url
        self.status = status
        self.retry_after = retry_after


class TransientHTTPError(HTTPError):
    """May succeed if tried again later: connection trouble, timeout, 5xx, 429, maxlag."""

    transient = True


class PermanentHTTPError(HTTPError):
    """Will fail again: 4xx, a body that is not what the API promised, an API error."""


class ResponseTooLarge(PermanentHTTPError):
    """The body is larger than the caller allows."""


_local = threading.local()
# Serial requests: one outbound request at a time per process, whatever the number of threads.
_serial = threading.Lock()


def session():
    """This thread's Session (connection pooling; Sessions are not safe to share between threads)."""
    if getattr(_local, "session", None) is None:
        s = requests.Session()
        s.headers.update({"User-Agent": user_agent(), "Accept-Encoding": "gzip, deflate"})
        _local.session = s
    return _local.session


def reset_session():
    """Forget this thread's Session, e.g. after settings changed in a test."""
    _local.session = None


def request(method, url, *, params=None, data=None, headers=None, timeout=None, retries=None, **kwargs):
    """One HTTP request with the house politeness and retries; returns a requests.Response with a 2xx/3xx.

    Raises TransientHTTPError when retries are exhausted on a transient failure, PermanentHTTPError
    at once otherwise.
    """
    return with_retries(lambda: _attempt(method, url, params, data, headers, timeout, kwargs), retries)


def with_retries(call, retries=None):
    """call() until it stops raising TransientHTTPError, at most retries more times, backing off between."""
    retries = settings.REVIMG_HTTP_RETRIES if retries is None else retries
    attempt = 0
    while True:
        try:
            return call()
        except TransientHTTPError as exc:
            attempt += 1
            if attempt > retries:
                raise
            wait = backoff_delay(attempt, exc.retry_after)
            log.warning("%s; retry %d/%d in %.1fs", exc, attempt, retries, wait)
            time.sleep(wait)


def _attempt(method, url, params, data, headers, timeout, kwargs):
    timeout = timeout or (settings.REVIMG_HTTP_CONNECT_TIMEOUT, settings.REVIMG_HTTP_READ_TIMEOUT)
    with _serial:
        rate_limiter().wait(urlsplit(url).hostname or "")
        try:
            response = session().request(
                method, url, params=params, data=data, headers=headers, timeout=timeout, **kwargs
            )
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientHTTPError(f"{method} {url}: {type(exc).__name__}: {exc}", url) from exc
        except requests.RequestException as exc:
            raise PermanentHTTPError(f"{method} {url}: {exc}", url) from exc
    check_status(response)
    return response


def check_status(response):
    status = response.status_code
    if status < 400:
        return
    url = response.url
    response.close()
    message = f"{response.request.method} {url}: HTTP {status}"
    if status in TRANSIENT_STATUSES:
        raise TransientHTTPError(message, url, status, parse_retry_after(response.headers.get("Retry-After")))
    raise PermanentHTTPError(message, url, status)


def parse_retry_after(value):
    """Seconds from a Retry-After header (delta-seconds form; HTTP dates fall back to our own backoff)."""
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def backoff_delay(attempt, retry_after=None):
    """Seconds to wait before retry number attempt: the server's word if it gave one, else exponential
    backoff with full jitter so that several workers do not come back in step."""
    if retry_after is not None:
        return min(retry_after, settings.REVIMG_HTTP_MAX_WAIT)
    base = settings.REVIMG_HTTP_BACKOFF * (2 ** (attempt - 1))
    return min(settings.REVIMG_HTTP_MAX_WAIT, random.uniform(base / 2, base))


def get_json(url, params=None, *, mediawiki=True, **kwargs):
    """GET a JSON document. For MediaWiki APIs (mediawiki=True), ask for maxlag=5 and JSON format
    version 2, and turn API errors into exceptions: maxlag is transient, anything else permanent."""
    params = dict(params or {})
    if mediawiki:
        params.setdefault("format", "json")
        params.setdefault("formatversion", "2")
        params.setdefault("maxlag", str(settings.REVIMG_MAXLAG))
    retries = kwargs.pop("retries", None)
    return with_retries(lambda: _get_json_once(url, params, mediawiki, kwargs), retries)


def _get_json_once(url, params, mediawiki, kwargs):
    extra = dict(kwargs)
    response = _attempt(
        "GET", url, params, None, extra.pop("headers", None), extra.pop("timeout", None), extra
    )
    try:
        document = response.json()
    except (ValueError, requests.RequestException) as exc:
        # A truncated or mangled body: worth one more try, the next one is usually whole.
        raise TransientHTTPError(f"GET {response.url}: body is not JSON ({exc})", response.url) from exc
    if mediawiki and isinstance(document, dict) and "error" in document:
        error = document["error"] or {}
        code = error.get("code", "")
        message = f"GET {response.url}: API error {code}: {error.get('info', '')}"
        if code == "maxlag":
            # The servers are lagging: MediaWiki says how long to wait in Retry-After (default 5 s).
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientHTTPError(message, response.url, response.status_code, retry_after or 5.0)
        raise PermanentHTTPError(message, response.url, response.status_code)
    return document


def download(url, max_bytes, *, timeout=None, headers=None, allow_redirects=True, retries=None):
    """Stream a body, stopping as soon as it exceeds max_bytes (ResponseTooLarge); returns a Download.

    A body cut short (fewer bytes than Content-Length) is a TransientHTTPError: the next try may be whole.
    """
    return with_retries(lambda: _download_once(url, max_bytes, timeout, headers, allow_redirects), retries)


def _download_once(url, max_bytes, timeout, headers, allow_redirects):
    response = _attempt(
        "GET", url, None, None, headers, timeout, {"stream": True, "allow_redirects": allow_redirects}
    )
    with response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(
                f"GET {url}: {declared} bytes, more than {max_bytes}", url, response.status_code
            )
        content = read_capped(response, max_bytes)
    return Download(
        url=response.url,
        status=response.status_code,
        content=content,
        content_type=response.headers.get("Content-Type", ""),
        headers=dict(response.headers),
    )


def read_capped(response, max_bytes):
    """The (decoded) body, refusing more than max_bytes: a gzip bomb is stopped as early as a big file.

    untrusted.py has its own capped loop on purpose: there the body is raw urllib3 bytes (no content-coding
    is accepted), read with read1 against one deadline, and every failure is a Refusal for a person; here it
    is requests' decoded stream, and failures are Transient/PermanentHTTPError for the retry loop. Sharing
    one loop would mean sharing the exceptions, which is what keeping the two clients apart is for.
    """
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(
                    f"GET {response.url}: more than {max_bytes} bytes", response.url, response.status_code
                )
            chunks.append(chunk)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientHTTPError(f"GET {response.url}: body cut short: {exc}", response.url) from exc
    return b"".join(chunks)


def unreachable_reason(url, timeout=3.0):
    """None when url answers at all within timeout (any HTTP status will do), else why not, in words."""
    try:
        request("HEAD", url, timeout=(timeout, timeout), retries=0, allow_redirects=False)
    except TransientHTTPError as exc:
        if exc.status is not None:
            return None  # an answer, even a 503, means the network path works
        cause = exc.__cause__
        if isinstance(cause, requests.Timeout):
            return f"no answer within {timeout:g} s"
        text = str(cause or exc)
        if "Name or service not known" in text or "NameResolutionError" in text or "getaddrinfo" in text:
            return "its name does not resolve (no DNS)"
        if "Connection refused" in text:
            return "connection refused"
        return "cannot connect"
    except PermanentHTTPError:
        return None
    return None


# --- Pace shared by every process that talks to the same host ---------------------------------------


class LocalRateLimiter:
    """At most one request per interval per host, within this process."""

    def __init__(self, interval):
        self.interval = interval
        self.next_at = {}
        self.lock = threading.Lock()

    def wait(self, host):
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next_at.get(host, now))
            self.next_at[host] = at + self.interval
        if at > now:
            time.sleep(at - now)


class RedisRateLimiter:
    """At most one request per interval per host across every process sharing this Redis.

    Each request claims a slot key with SET NX PX: whoever holds it may go; the others wait for it to
    expire. If Redis is down we fall back to the local pace rather than stop crawling.
    """

    def __init__(self, url, interval, prefix="revimg:http:pace:"):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.interval = interval
        self.prefix = prefix
        self.fallback = LocalRateLimiter(interval)

    def wait(self, host):
        if self.interval <= 0:
            return
        key = self.prefix + host
        millis = max(1, int(self.interval * 1000))
        try:
            while not self.client.set(key, "1", nx=True, px=millis):
                ttl = self.client.pttl(key)
                time.sleep(max(ttl, 1) / 1000 if ttl and ttl > 0 else 0.001)
        except Exception as exc:  # redis.RedisError and socket errors alike: never stop for the limiter
            log.warning("shared rate limit unavailable (%s); pacing locally", exc)
            self.fallback.wait(host)


_limiter = None
_limiter_key = None


def rate_limiter():
    """The process's rate limiter, rebuilt when the relevant settings change."""
    global _limiter, _limiter_key
    key = (settings.REVIMG_REDIS_URL, settings.REVIMG_HTTP_MIN_INTERVAL)
    if _limiter is None or _limiter_key != key:
        if settings.REVIMG_REDIS_URL:
            _limiter = RedisRateLimiter(settings.REVIMG_REDIS_URL, settings.REVIMG_HTTP_MIN_INTERVAL)
        else:
            _limiter = LocalRateLimiter(settings.REVIMG_HTTP_MIN_INTERVAL)
        _limiter_key = key
    return _limiter
