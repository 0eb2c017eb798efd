"""Services a test needs from the machine: missing ones skip a test on a developer's machine, but fail it
in CI (CI=true), which must have them."""

import os

import pytest


def redis_or_skip(url):
    """A client for the Redis at url."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"no Redis answers at {url}, and CI must have one")
        pytest.skip(f"no Redis answers at {url}")
    return client


def postgres_or_skip(url):
    """url, when a PostgreSQL answers there."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no PostgreSQL answers at {url}, and CI must have one: {exc}")
        pytest.skip(f"no PostgreSQL answers at {url}")
    return url
