"""catalog.http: politeness and fault handling, against a local HTTP server."""

import json
import re
import socket
import time
import uuid

import pytest
import requests
from werkzeug.wrappers import Response

from catalog.http import crawler as http
from tests.crawl_server import (
    cut_short,
    maxlag_error,
    picture_bytes,
    server_error,
    slow_answer,
    too_many_requests,
)
from tests.services import redis_or_skip

REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture(autouse=True)
def fast_client(settings):
    settings.REVIMG_REDIS_URL = ""
    settings.REVIMG_HTTP_MIN_INTERVAL = 0
    settings.REVIMG_HTTP_BACKOFF = 0.01
    settings.REVIMG_HTTP_MAX_WAIT = 1.0
    settings.REVIMG_HTTP_RETRIES = 3
    settings.REVIMG_CONTACT = "crawler-tests@example.org"
    http.reset_session()
    yield
    http.reset_session()


def serve_in_order(httpserver, path, *responses):
    """Answer path with the given responses in turn (each a Response factory), then the last one again."""
    queue = list(responses)
    httpserver.expect_request(path).respond_with_handler(
        lambda request: (queue.pop(0) if len(queue) > 1 else queue[0])()
    )


def ok_json(document):
    return lambda: Response(json.dumps(document), content_type="application/json")


def test_it_identifies_itself_per_wikimedia_policy_and_asks_for_gzip_and_maxlag(httpserver):
    httpserver.expect_request("/w/api.php").respond_with_json({"ok": 1})
    assert http.get_json(httpserver.url_for("/w/api.php"), {"action": "query"}) == {"ok": 1}
    request, _ = httpserver.log[0]
    assert re.fullmatch(
        r"revimg/\d+\.\d+\.\d+ \(crawler-tests@example\.org\) requests/" + re.escape(requests.__version__),
        request.headers["User-Agent"],
    )
    assert "gzip" in request.headers["Accept-Encoding"]
    assert request.args["maxlag"] == "5"
    assert request.args["format"] == "json"


def test_it_waits_out_429_with_retry_after_then_succeeds(httpserver, monkeypatch):
    waits = []
    monkeypatch.setattr(http.time, "sleep", waits.append)
    serve_in_order(httpserver, "/api", too_many_requests("1"), ok_json({"ok": 1}))
    assert http.get_json(httpserver.url_for("/api"), mediawiki=False) == {"ok": 1}
    assert waits == [1.0]  # the server's Retry-After, not our own backoff


def test_it_retries_server_errors_with_backoff_and_gives_up_after_the_limit(httpserver, settings):
    settings.REVIMG_HTTP_RETRIES = 2
    httpserver.expect_request("/api").respond_with_handler(lambda r: server_error(503)())
    with pytest.raises(http.TransientHTTPError) as caught:
        http.get_json(httpserver.url_for("/api"), mediawiki=False)
    assert caught.value.status == 503
    assert len(httpserver.log) == 3  # one try and two retries


def test_it_does_not_retry_a_client_error(httpserver):
    httpserver.expect_request("/api").respond_with_data("no", status=404)
    with pytest.raises(http.PermanentHTTPError):
        http.get_json(httpserver.url_for("/api"), mediawiki=False)
    assert len(httpserver.log) == 1


def test_it_honours_a_maxlag_error_as_transient(httpserver, monkeypatch):
    waits = []
    monkeypatch.setattr(http.time, "sleep", waits.append)
    serve_in_order(httpserver, "/w/api.php", maxlag_error("1"), ok_json({"entities": {}}))
    assert http.get_json(httpserver.url_for("/w/api.php"), {"action": "wbgetentities"}) == {"entities": {}}
    assert waits == [1.0]


def test_other_api_errors_are_permanent(httpserver):
    httpserver.expect_request("/w/api.php").respond_with_json({"error": {"code": "badtoken", "info": "x"}})
    with pytest.raises(http.PermanentHTTPError, match="badtoken"):
        http.get_json(httpserver.url_for("/w/api.php"))
    assert len(httpserver.log) == 1


def test_a_timeout_is_retried(httpserver, settings):
    settings.REVIMG_HTTP_READ_TIMEOUT = 0.5
    serve_in_order(httpserver, "/api", slow_answer(0.8), ok_json({"ok": 1}))
    assert http.get_json(httpserver.url_for("/api"), mediawiki=False) == {"ok": 1}


def test_download_streams_and_stops_at_the_size_cap(httpserver):
    data = picture_bytes(1)
    httpserver.expect_request("/big.jpg").respond_with_data(data, content_type="image/jpeg")
    assert http.download(httpserver.url_for("/big.jpg"), max_bytes=len(data)).content == data
    with pytest.raises(http.ResponseTooLarge):
        http.download(httpserver.url_for("/big.jpg"), max_bytes=len(data) - 1)


def test_download_retries_a_body_cut_short(httpserver):
    data = picture_bytes(2)
    serve_in_order(
        httpserver, "/file.jpg", cut_short(data), lambda: Response(data, content_type="image/jpeg")
    )
    assert http.download(httpserver.url_for("/file.jpg"), max_bytes=10**6).content == data
    assert len(httpserver.log) == 2


def test_unreachable_reason_names_a_dns_failure_without_sending_anything(monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert (
        http.unreachable_reason("https://www.wikidata.org/w/api.php", 0.5)
        == "its name does not resolve (no DNS)"
    )


def test_unreachable_reason_names_a_refused_connection():
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert http.unreachable_reason(f"http://127.0.0.1:{port}/", 0.5) == "connection refused"


def test_any_answer_counts_as_reachable(httpserver):
    httpserver.expect_request("/w/api.php").respond_with_data("", status=503)
    assert http.unreachable_reason(httpserver.url_for("/w/api.php"), 0.5) is None


def test_the_shared_rate_limit_makes_a_second_client_wait_out_the_interval_through_redis():
    client = redis_or_skip(REDIS)
    prefix = f"revimg:test:pace:{uuid.uuid4().hex[:8]}:"  # its own keys, whoever else uses this Redis
    interval = 0.5
    first = http.RedisRateLimiter(REDIS, interval=interval, prefix=prefix)
    second = http.RedisRateLimiter(REDIS, interval=interval, prefix=prefix)  # as in another process
    try:
        first.wait("example.org")
        first_went = time.monotonic()
        second.wait("example.org")
        waited = time.monotonic() - first_went
        # The second went only when the first's slot ran out, and took the next one.
        assert waited >= interval - 0.05
        assert 0 < client.pttl(prefix + "example.org") <= interval * 1000
    finally:
        client.delete(prefix + "example.org")
