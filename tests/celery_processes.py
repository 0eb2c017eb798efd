"""Real Celery processes for tests: a worker (and beat) on the Redis at 127.0.0.1:6379, with a queue of
their own so they cannot take anyone else's tasks, pointed at pytest's test database (the test must be
transactional so that what it writes is committed) and at the local Wikimedia stand-in's base URLs."""

import contextlib
import os
import subprocess
import sys
import uuid

from django.conf import settings as django_settings
from django.db import connection

BROKER = "redis://127.0.0.1:6379/14"
STOP_SECONDS = 30  # a bound for a process that ignores SIGTERM, not a measurement


def new_queue():
    return f"revimg-test-{uuid.uuid4().hex[:8]}"


def celery_env(queue, **extra):
    """The environment of a test's Celery process: this test's database, broker, queue and base URLs."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="revimg.settings",
        REVIMG_DATA_DIR=str(django_settings.REVIMG_DATA_DIR),
        REVIMG_DB_NAME=connection.settings_dict["NAME"],
        CELERY_BROKER_URL=BROKER,
        CELERY_TASK_DEFAULT_QUEUE=queue,
        REVIMG_WIKIDATA_SPARQL_URL=django_settings.REVIMG_WIKIDATA_SPARQL_URL,
        REVIMG_WIKIDATA_API_URL=django_settings.REVIMG_WIKIDATA_API_URL,
        REVIMG_WIKIPEDIA_API_URL=django_settings.REVIMG_WIKIPEDIA_API_URL,
        REVIMG_COMMONS_API_URL=django_settings.REVIMG_COMMONS_API_URL,
    )
    return dict(env, **extra)


def worker_command(queue):
    command = [sys.executable, "-m", "celery", "-A", "revimg", "worker", "--pool=solo", "-Q", queue]
    return command + ["--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]


def beat_command():
    return [sys.executable, "-m", "celery", "-A", "revimg", "beat", "--loglevel=INFO"]


@contextlib.contextmanager
def celery_process(command, env, log):
    """The process running for the block, its output in log; stopped (SIGTERM, then SIGKILL) whatever
    happens."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=django_settings.BASE_DIR
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
