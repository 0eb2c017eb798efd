"""Per-client search limits: one count in the shared cache, a client address nobody can forge, and a
larger budget for "more like this" than for searches that run the model."""

import threading

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from revimg.cache import AtomicDatabaseCache
from revimg.clientip import client_ip
from search.throttles import _seconds_until_allowed
from tests.catalog_factories import make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    return APIClient()


def statuses(send, times):
    return [send().status_code for _ in range(times)]


def bad_search(api, **headers):
    # An empty search is refused with a 400 after the limit is counted: no model needed.
    return api.post("/api/search/", {}, format="json", **headers)


def test_a_client_gets_exactly_the_rate_then_429(api, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "3/minute"

    assert statuses(lambda: bad_search(api), 5) == [400, 400, 400, 429, 429]


def test_refused_requests_do_not_use_up_the_budget(api, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "2/minute"
    statuses(lambda: bad_search(api), 10)

    (key,) = [k for k in _stored_keys() if "anon_search" in k]
    assert cache.get(key) == 2


def _stored_keys():
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key FROM revimg_cache")
        # Stored as ":<version>:<key>".
        return [row[0].split(":", 2)[2] for row in cursor.fetchall()]


def test_a_forged_forwarded_for_header_changes_nothing(api, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "3/minute"
    settings.REVIMG_TRUSTED_PROXIES = 0

    forged = [bad_search(api, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(5)]

    assert forged == [400, 400, 400, 429, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(api, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "1/minute"
    settings.REVIMG_TRUSTED_PROXIES = 1

    first = [bad_search(api, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code for _ in range(2)]
    other = bad_search(api, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code

    assert first == [400, 429] and other == 400


def test_more_like_this_has_its_own_larger_budget(api, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "1/minute"
    settings.REVIMG_ANON_SIMILAR_RATE = "3/minute"
    image = next(iter(make_catalog(classes=2, per_class=3).values()))[0]
    similar = f"/api/images/{image.pk}/similar/?k=2"

    uploads = statuses(lambda: bad_search(api), 2)
    likes = statuses(lambda: api.get(similar), 4)

    assert uploads == [400, 429] and likes == [200, 200, 200, 429]


def test_the_page_counts_more_like_this_apart_from_uploads(client, settings):
    settings.REVIMG_ANON_SEARCH_RATE = "1/minute"
    settings.REVIMG_ANON_SIMILAR_RATE = "2/minute"
    image = next(iter(make_catalog(classes=2, per_class=3).values()))[0]

    uploads = statuses(lambda: client.post("/", {}), 2)
    likes = statuses(lambda: client.get(f"/?similar={image.pk}"), 3)

    assert uploads == [400, 429] and likes == [200, 200, 429]


def test_the_client_address_is_the_socket_unless_proxies_are_trusted(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.7, 198.51.100.9")

    settings.REVIMG_TRUSTED_PROXIES = 0
    assert client_ip(request) == "10.0.0.5"
    settings.REVIMG_TRUSTED_PROXIES = 1
    assert client_ip(request) == "198.51.100.9"  # appended by our one proxy
    settings.REVIMG_TRUSTED_PROXIES = 2
    assert client_ip(request) == "203.0.113.7"
    settings.REVIMG_TRUSTED_PROXIES = 5  # more than the hops given: the leftmost, never past the header
    assert client_ip(request) == "203.0.113.7"


def test_retry_after_says_when_one_more_search_fits():
    # 10/minute, 30 s into a window: last window's 10 weigh 5 now, this window has 5 -> full.
    assert _seconds_until_allowed(previous=10, current=5, elapsed=30, window=60, limit=10) == pytest.approx(6)
    # This window alone is full: wait for it to end, then for its weight to fade enough for one more.
    assert _seconds_until_allowed(previous=0, current=10, elapsed=15, window=60, limit=10) == pytest.approx(
        51
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_increments_of_the_database_cache_lose_no_count():
    store = AtomicDatabaseCache("revimg_cache", {})
    store.add("counter", 0, timeout=60)

    def count(times):
        for _ in range(times):
            store.incr("counter")
        connection.close()

    threads = [threading.Thread(target=count, args=(25,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert store.get("counter") == 150
    store.delete("counter")


@pytest.mark.django_db(transaction=True)
def test_an_increment_keeps_the_entry_expiry():
    store = AtomicDatabaseCache("revimg_cache", {})
    store.add("short", 0, timeout=3600)
    store.incr("short")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT expires - now() FROM revimg_cache WHERE cache_key = %s", [store.make_key("short")]
        )
        left = cursor.fetchone()[0].total_seconds()
    store.delete("short")
    assert 3500 < left <= 3600
