"""Services a test needs from the machine: missing ones skip a test on a developer's machine, but fail it
in CI (CI=true), which must have them."""

import os
import shutil
import sys
from pathlib import Path

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


def program_or_skip(name, install):
    """The path of the program name, on PATH or beside this Python (the virtualenv's); install says how
    to get it."""
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed, and CI must have it ({install})")
        pytest.skip(f"{name} is not installed ({install})")
    return path
