"""Health checks: /healthz says whether the database answers, /readyz whether a worker can search now;
neither says why not (the reason is logged, never shown)."""

import json
import os
import subprocess
import sys

import pytest

from catalog import embedding
from revimg.settings import BASE_DIR
from tests.app_server import free_loopback_port

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_when_the_database_answers(client):
    response = client.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_says_unavailable_but_never_why(tmp_path):
    # A real failure: the database is a closed port on loopback. The error names host and port; the
    # answer must not.
    port = free_loopback_port()
    script = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "r = Client().get('/healthz')\n"
        "print(json.dumps({'status': r.status_code, 'body': r.content.decode()}))\n"
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="revimg.settings",
        DATABASE_URL=f"postgresql://revimg:secret-password@127.0.0.1:{port}/revimg",
        REVIMG_DATA_DIR=str(tmp_path),
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])

    assert answer["status"] == 503
    assert json.loads(answer["body"]) == {"status": "unavailable"}
    assert "health check database failed" in done.stderr  # the reason went to the log


@pytest.fixture
def fresh_embedder(monkeypatch):
    unloaded = embedding.Embedder(threads=1)
    monkeypatch.setattr(embedding, "_shared_embedder", unloaded)
    return unloaded


def test_readyz_waits_for_the_model(client, fresh_embedder):
    waiting = client.get("/readyz")
    fresh_embedder.load()
    ready = client.get("/readyz")

    assert waiting.status_code == 503
    assert waiting.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "model": "failing", "cache": "ok"},
    }
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


def test_readyz_fails_when_the_shared_cache_does_not_answer(client, fresh_embedder, settings):
    fresh_embedder.load()
    port = free_loopback_port()  # nothing listens there
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }

    response = client.get("/readyz")

    assert response.status_code == 503 and response.json()["checks"]["cache"] == "failing"
    assert str(port) not in response.content.decode()
