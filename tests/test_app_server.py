"""The real app server: gunicorn with two workers, as `make run` starts it, against the test database.

Proves what one process alone cannot: the search limit is one limit across workers (in the database cache
and in Redis), pictures go out through gunicorn's sendfile path with their cache headers, metrics add up
every worker's counts, the admin lockout holds whichever worker answers, and clients that send slowly hold
no worker.
"""

import contextlib
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection

from catalog.models import CatalogImage
from tests.app_server import gunicorn_server
from tests.catalog_factories import make_catalog
from tests.services import redis_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LIMIT = 5
REDIS_CACHE = "redis://127.0.0.1:6379/13"
PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "caltech101-dev"


def redis_client():
    return redis_or_skip(REDIS_CACHE)


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    return tmp_path_factory.mktemp("served-media")


def start(tmp_path_factory, media_root, **env):
    base = {
        "REVIMG_DATA_DIR": str(django_settings.REVIMG_DATA_DIR),
        "REVIMG_DB_NAME": connection.settings_dict["NAME"],
        "REVIMG_MEDIA_ROOT": str(media_root),
        "REVIMG_ANON_SEARCH_RATE": f"{LIMIT}/minute",
        "REVIMG_LOGIN_FAILURE_LIMIT": "3",
        "REVIMG_TRUSTED_PROXIES": "0",
    }
    return gunicorn_server(tmp_path_factory.mktemp("gunicorn"), {**base, **env})


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory, media_root):
    with start(tmp_path_factory, media_root) as running:
        yield running


@pytest.fixture(scope="module")
def redis_server(django_db_setup, tmp_path_factory, media_root):
    redis_client()
    with start(tmp_path_factory, media_root, REVIMG_CACHE_URL=REDIS_CACHE) as running:
        yield running


@pytest.fixture
def catalog(settings, media_root):
    settings.MEDIA_ROOT = media_root
    cache.clear()
    made = make_catalog(classes=2, per_class=3)
    yield made
    cache.clear()


def a_photo():
    if PHOTOS.is_dir():
        folder = sorted(p for p in PHOTOS.iterdir() if p.is_dir())[0]
        return sorted(folder.iterdir())[0].read_bytes()
    return CatalogImage.objects.first().file.read()


def upload(url, photo, forged_address):
    # Each search claims to come from another address: with no trusted proxy, that must change nothing.
    response = requests.post(
        url + "/api/search/",
        files={"image": ("query.jpg", photo, "image/jpeg")},
        data={"k": "3"},
        headers={"X-Forwarded-For": forged_address},
        timeout=30,
    )
    return response.status_code


def searches_past_the_limit(server):
    """LIMIT + 5 searches, the first 3 answered by one worker and the rest by the other: each worker in
    turn is paused (SIGSTOP) so that only the other one accepts connections."""
    photo = a_photo()
    first, second = server.wait_for_workers(2)
    statuses = []
    for paused, count in ((second, 3), (first, LIMIT + 2)):
        os.kill(paused, signal.SIGSTOP)
        try:
            statuses += [upload(server.url, photo, f"198.51.100.{len(statuses)}") for _ in range(count)]
        finally:
            os.kill(paused, signal.SIGCONT)
    return statuses


def answering_pids(log, path):
    return set(re.findall(rf'"POST {re.escape(path)} HTTP/1.1" \d+ \d+ \d+ms <(\d+)>', log.read_text()))


def test_two_workers_answer_searches_under_one_limit_in_the_database_cache(server, catalog):
    statuses = searches_past_the_limit(server)

    assert statuses == [200] * LIMIT + [429] * 5
    assert len(answering_pids(server.log, "/api/search/")) == 2


def test_two_workers_answer_searches_under_one_limit_in_redis(redis_server, catalog):
    redis_client().flushdb()

    statuses = searches_past_the_limit(redis_server)

    assert statuses == [200] * LIMIT + [429] * 5
    assert len(answering_pids(redis_server.log, "/api/search/")) == 2
    redis_client().flushdb()


def test_pictures_go_out_with_immutable_cache_headers_ranges_and_304(server, catalog):
    image = next(iter(catalog.values()))[0]
    url = server.url + image.file.url
    data = image.file.read()

    whole = requests.get(url, timeout=10)
    again = requests.get(url, headers={"If-None-Match": whole.headers["ETag"]}, timeout=10)
    part = requests.get(url, headers={"Range": "bytes=10-99"}, timeout=10)
    head = requests.head(url, timeout=10)

    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert again.status_code == 304 and again.content == b""
    assert part.status_code == 206 and part.content == data[10:100]
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(data)}"
    assert (
        head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) == len(data)
    )


def test_metrics_add_up_the_requests_of_every_worker(server, catalog):
    image = next(iter(catalog.values()))[0]
    for _ in range(8):
        response = requests.get(f"{server.url}/api/images/{image.pk}/similar/?k=2", timeout=30)
        assert response.status_code == 200
    pids = set(
        re.findall(r'"GET /api/images/\d+/similar/ HTTP/1.1" 200 \d+ \d+ms <(\d+)>', server.log.read_text())
    )

    metrics = requests.get(server.url + "/metrics", timeout=10).text

    counted = [
        float(value)
        for line, value in re.findall(r"^(revimg_http_requests_total\{[^}]*\}) (\S+)$", metrics, re.M)
        if 'view="image-similar"' in line and 'status="200"' in line
    ]
    assert sum(counted) >= 8 and pids  # earlier tests of this module may have asked too
    assert "revimg_catalog_images" in metrics


def test_every_answer_carries_the_security_headers(server, catalog):
    page = requests.get(server.url + "/", timeout=30)

    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] and page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Permissions-Policy" in page.headers


def test_the_admin_login_locks_out_after_wrong_passwords_whichever_worker_answers(server, catalog):
    get_user_model().objects.create_superuser("curator", "curator@example.org", "right-password-42")

    def log_in(password):
        session = requests.Session()
        form = session.get(server.url + "/admin/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        return session.post(
            server.url + "/admin/login/?next=/admin/",
            data={"username": "curator", "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": server.url + "/admin/login/"},
            allow_redirects=False,
            timeout=30,
        )

    wrong = [log_in(f"guess-{n}").status_code for n in range(3)]
    right = log_in("right-password-42")

    assert wrong == [200, 200, 429]  # the third wrong password locks the account
    assert right.status_code == 429 and "too many" in right.text.lower()


@contextlib.contextmanager
def slow_clients(url, count):
    """Connections that send a request one byte every half second, as a bad link (or a slowloris attack)
    does: half of them still in their headers, half in the body of an upload the view must read."""
    host, port = url.removeprefix("http://").split(":")
    body_start = b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
    starts = [
        b"GET /api/classes/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nX-Padding: ",
        b"POST /api/search/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900000\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n" + body_start,
    ]
    clients = [socket.create_connection((host, int(port)), timeout=10) for _ in range(count)]
    for index, client in enumerate(clients):
        client.sendall(starts[index % 2])
    done = threading.Event()

    def trickle():
        while not done.wait(0.5):
            for client in clients:
                with contextlib.suppress(OSError):  # one the server gave up on
                    client.send(b"x")

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        yield
    finally:
        done.set()
        sender.join()
        for client in clients:
            client.close()


def test_slow_clients_hold_no_worker_while_a_search_is_answered(server, catalog):
    cache.clear()
    workers = len(server.wait_for_workers(2))
    with slow_clients(server.url, 3 * workers):
        time.sleep(1)  # every slow request under way before the search
        # With one request per worker at a time, the search would wait for the slow ones, which take the
        # worker's whole timeout (60 s): requests' timeout below then fails the test.
        status = upload(server.url, a_photo(), "198.51.100.99")

    assert status == 200


def sessions_opened():
    """How many connections the test database has had so far (PostgreSQL counts them)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_workers_hand_their_database_connections_on_from_one_search_to_the_next(server, catalog):
    photo = a_photo()
    upload(server.url, photo, "198.51.100.98")  # each worker may open its first ones now
    upload(server.url, photo, "198.51.100.98")
    cache.clear()
    before = sessions_opened()

    statuses = [upload(server.url, photo, "198.51.100.98") for _ in range(LIMIT)]
    opened = sessions_opened() - before

    assert statuses == [200] * LIMIT
    assert opened <= 2  # at most a connection per worker that had none idle; not one per search
