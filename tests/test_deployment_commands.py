"""The commands compose.yaml runs (deploy/entrypoint.sh's web, worker, beat, migrate) started on this
machine, without containers, as the image starts them: against the suite's database and the Redis at
127.0.0.1:6379 (its own database number and queue), each answering before a bounded wait ends and always
stopped. What only a container can prove (the image builds, its user, its volumes) is not tested here."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from celery import Celery
from django.conf import settings as django_settings
from django.db import connection

from tests.app_server import gunicorn_server
from tests.deployment import (
    ENTRYPOINT,
    ROOT,
    compose_config,
    compose_project,
    dockerfile_healthcheck,
    env_example_lines,
    env_file_from_example,
)
from tests.services import program_or_skip, redis_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REDIS = "redis://127.0.0.1:6379/12"
DEADLINE = 180  # seconds: a bound for a broken start, not a measurement


@pytest.fixture
def redis_db():
    return redis_or_skip(REDIS)


@pytest.fixture
def app_env(tmp_path):
    """The environment the image gives a container, pointed at the suite's database; its own programs
    (gunicorn, celery, python) first on PATH, as /opt/venv/bin is in the image."""
    return {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "revimg.settings",
        "REVIMG_DATA_DIR": str(django_settings.REVIMG_DATA_DIR),
        "REVIMG_DB_NAME": connection.settings_dict["NAME"],
        "REVIMG_MEDIA_ROOT": str(tmp_path / "media"),
    }


@contextlib.contextmanager
def running(command, env, log):
    """The entrypoint's command in a process group of its own, stopped (TERM, then KILL) at the end."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(ENTRYPOINT), command],
            cwd=ROOT,
            env=dict(os.environ, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)


def wait_until(condition, process, log):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"nothing within {DEADLINE} s:\n{log.read_text()[-4000:]}")


def test_migrate_finds_the_suite_database_fully_migrated(app_env):
    result = subprocess.run(
        [str(ENTRYPOINT), "migrate", "--check"],
        cwd=ROOT,
        env=dict(os.environ, **app_env),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_web_serves_healthz_and_passes_the_image_health_check(app_env, tmp_path):
    command = (str(ENTRYPOINT), "web")
    # The example's host names, which must let the health check's request in.
    env = dict(app_env, DJANGO_ALLOWED_HOSTS=env_example_lines()[0]["DJANGO_ALLOWED_HOSTS"])
    with gunicorn_server(tmp_path, env, workers=1, command=command) as server:
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        check = [
            part.replace("127.0.0.1:8000", server.url.removeprefix("http://"))
            for part in dockerfile_healthcheck()
        ]
        result = subprocess.run(check, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr


def compose_healthcheck(service, tmp_path):
    docker_compose = program_or_skip("docker-compose", "make compose-validator: Debian's docker-compose")
    (tmp_path / "compose").mkdir()
    project = compose_project(tmp_path / "compose", env_file_from_example())
    test = compose_config(docker_compose, project)["services"][service]["healthcheck"]["test"]
    # `config` prints a compose file, so "$$" stays escaped; a container's shell is given "$".
    return [part.replace("$$", "$") for part in test]


def test_worker_runs_a_task_from_its_queue_and_passes_its_health_check(app_env, redis_db, tmp_path):
    queue = f"revimg-deploy-{uuid.uuid4().hex[:8]}"
    env = dict(app_env, CELERY_BROKER_URL=REDIS, CELERY_RESULT_BACKEND=REDIS, CELERY_TASK_DEFAULT_QUEUE=queue)
    health = compose_healthcheck("worker", tmp_path)
    log = tmp_path / "worker.log"
    client = Celery(broker=REDIS, backend=REDIS)
    try:
        with running("worker", env, log) as process:
            token = uuid.uuid4().hex
            result = client.send_task("celery.accumulate", args=[token], queue=queue)
            wait_until(result.ready, process, log)
            assert result.get(timeout=5) == [token]
            # The compose health check asks this worker by name (celery@ its container's host name).
            ping = subprocess.run(
                ["sh", "-c", health[1]],
                cwd=ROOT,
                env=dict(os.environ, **env, HOSTNAME=socket.gethostname()),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert ping.returncode == 0, ping.stdout + ping.stderr
            assert "pong" in ping.stdout
            result.forget()
    finally:
        # The queue and kombu's bindings for it: nothing of this test stays in Redis.
        for key in redis_db.scan_iter(f"*{queue}*"):
            redis_db.delete(key)


def test_beat_starts_and_logs_its_schedule(app_env, redis_db, tmp_path):
    data_dir = tmp_path / "data"
    env = dict(
        app_env,
        REVIMG_DATA_DIR=str(data_dir),
        CELERY_BROKER_URL=REDIS,
        CELERY_TASK_DEFAULT_QUEUE=f"revimg-deploy-{uuid.uuid4().hex[:8]}",
        REVIMG_LOG_LEVEL="DEBUG",
        DJANGO_SECRET_KEY="beat-test",
    )
    log = tmp_path / "beat.log"
    with running("beat", env, log) as process:
        wait_until(lambda: "Current schedule:" in log.read_text(), process, log)
    text = log.read_text()
    assert "beat: Starting..." in text
    assert str(data_dir / "beat" / "schedule") in text
    for name in getattr(django_settings, "CELERY_BEAT_SCHEDULE", {}):
        assert f"<ScheduleEntry: {name} " in text
