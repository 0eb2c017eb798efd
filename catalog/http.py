"""The one module that talks to the outside world over HTTP.

Everything outbound goes through here so that politeness is decided in one place: a User-Agent that says
who we are, one request at a time per process, one shared pace per host across processes (through Redis
when configured), timeouts on every call, gzip, retries with backoff only for errors that may pass
(connection trouble, timeouts, 5xx, 429, MediaWiki's maxlag), and Retry-After honoured.

Errors say whether they are worth retrying: TransientHTTPError may pass later, PermanentHTTPError will not.
"""

import logging
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from django.conf import settings

from . import netguard

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK_SIZE = 64 * 1024


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
    """The (decoded) body, refusing more than max_bytes: a gzip bomb is stopped as early as a big file."""
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


def probe(url, timeout=3.0):
    """True when url answers at all (any HTTP status) within timeout; one try, no retries."""
    return unreachable_reason(url, timeout) is None


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


# --- Fetching a URL a stranger gave us (search by URL) ---------------------------------------------------
#
# Not the crawler's path above: the person is waiting, so there are no retries and no shared pace, and the
# address is not ours to trust. catalog.netguard decides which addresses may be reached; here we connect to
# exactly the address it checked (Host header and TLS SNI keep the name), follow redirects one hop at a
# time through the same check, and stop reading at the size cap.

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CONNECT_TIMEOUT = 3.0


class UntrustedFetchError(Exception):
    """A user's URL we would not or could not fetch: `code` for programs, `message` for people, `status`
    for the HTTP answer we give them (413 when the picture is too large, 400 otherwise)."""

    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def fetch_untrusted_image(url, max_bytes, *, timeout=None, allowed_private=None, max_redirects=MAX_REDIRECTS):
    """GET a picture from a URL given by a user; returns a Download. Raises UntrustedFetchError.

    timeout: seconds for the whole fetch, redirects included (default settings.URL_FETCH_TIMEOUT).
    allowed_private: "host:port" strings that may be private addresses (default the setting, for tests).
    """
    timeout = settings.URL_FETCH_TIMEOUT if timeout is None else timeout
    allowed = settings.URL_ALLOWED_PRIVATE_HOSTS if allowed_private is None else allowed_private
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
