"""A deployment across "machines" that share no disk: the web server on A, Celery workers on B and C.

Each machine is a separate process tree with a data dir of its own (its own copy of the image model, its own
secret, no media folder in common). They share only what a real deployment shares over the network, all on
loopback here: PostgreSQL over TCP (the embedded server of a fourth data dir, with a password), Redis (the
broker and the crawler's shared pace) and an S3 API (moto's standalone server). A crawl queued from A against
the local Wikimedia stand-in is carried out by B and C; B is killed (SIGKILL, its whole process tree) in the
middle of a download, and C finishes: the task B held is handed to C once Redis' visibility timeout
(REVIMG_TASK_REDELIVERY_SECONDS) has passed. Every planned picture ends stored once and embedded once, and A
finds it.
"""

import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings as django_settings
from pytest_httpserver import HTTPServer

from catalog.embedding import get_embedder
from tests.app_server import free_loopback_port, gunicorn_server
from tests.crawl_server import FakeWikimedia, standard_scenario
from tests.s3_server import create_bucket, moto_server, s3_client, s3_env
from tests.services import redis_or_skip

pytestmark = [pytest.mark.slow]

BROKER = "redis://127.0.0.1:6379/13"
REDELIVERY_SECONDS = 8
DEADLINE = 300  # seconds: a bound for a broken deployment, not a measurement
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def wiki(wikimedia_fixtures):
    """The stand-in Wikimedia on a server of its own that answers requests in parallel: one machine's
    download held (see Downloads) must not stop the other's requests."""
    server = HTTPServer(host="127.0.0.1", port=free_loopback_port(), threaded=True)
    server.start()
    try:
        yield FakeWikimedia(server, wikimedia_fixtures)
    finally:
        server.clear()
        server.stop()


@contextmanager
def machine(name):
    """A data dir of this machine's own, with its own copy (not a link) of the converted image model."""
    data = Path(os.path.realpath(django_settings.REVIMG_DATA_DIR)) / f"machine-{name}-{uuid.uuid4().hex[:6]}"
    data.mkdir(parents=True)
    get_embedder().load()  # the suite's model files exist from here on
    shutil.copytree(django_settings.REVIMG_MODEL_CACHE_DIR, data / "models")
    try:
        yield data
    finally:
        shutil.rmtree(data, ignore_errors=True)


def base_env(data_dir):
    """os.environ without anything that points at the suite's own database or media."""
    dropped = ("DATABASE_URL", "REVIMG_DB_NAME", "REVIMG_MEDIA_ROOT", "DJANGO_SECRET_KEY")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    return dict(env, REVIMG_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="revimg.settings")


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )


@contextmanager
def database_machine():
    """The embedded PostgreSQL of its own data dir, listening on a loopback port with a password; yields
    the DATABASE_URL the other machines use."""
    with machine("db") as data:
        password = secrets.token_urlsafe(18)
        port = free_loopback_port()
        env = dict(
            base_env(data),
            REVIMG_EMBEDDED_PG_LISTEN="127.0.0.1",
            REVIMG_EMBEDDED_PG_PORT=str(port),
            REVIMG_EMBEDDED_PG_PASSWORD=password,
        )
        manage(env, "embedded_postgres", "start")
        try:
            yield f"postgres://postgres:{password}@127.0.0.1:{port}/revimg"
        finally:
            manage(env, "embedded_postgres", "stop")


class Downloads:
    """The stand-in's file downloads, told apart by machine (the crawler's User-Agent carries
    REVIMG_CONTACT). B's first download is held until B is killed; C's wait until B has asked for one, so
    that B cannot miss its turn and C cannot finish before the kill."""

    def __init__(self, wiki):
        self.by_machine = {"B": [], "C": []}
        self.b_is_downloading = threading.Event()
        self.b_is_dead = threading.Event()
        self._answer = wiki.answer_file
        wiki.answer_file = self.answer

    def answer(self, request, params):
        who = re.search(r"machine-([BC])", request.headers.get("User-Agent", ""))
        name = who.group(1) if who else "?"
        self.by_machine.setdefault(name, []).append(request.path)
        if name == "B" and len(self.by_machine["B"]) == 1:
            self.b_is_downloading.set()
            self.b_is_dead.wait(DEADLINE)
        elif name == "C":
            self.b_is_downloading.wait(DEADLINE)
        return self._answer(request, params)


def worker(stack, name, env, log):
    command = [sys.executable, "-m", "celery", "-A", "revimg", "worker", "--pool=solo"]
    command += ["-Q", env["CELERY_TASK_DEFAULT_QUEUE"], "-n", f"{name}@%h", "--loglevel=INFO"]
    command += ["--without-gossip", "--without-mingle"]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack.callback(stop_tree, process)
    return process


def stop_tree(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_for(condition, what, logs):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    pytest.fail(f"{what} did not happen in {DEADLINE} s\n{tails}")


def query(database_url, sql):
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        return connection.execute(sql).fetchall()


def crawl_settled(database_url):
    """Every planned picture fetched and every stored picture embedded."""
    (planned, pending, images, unembedded), *_ = query(
        database_url,
        "SELECT (SELECT count(*) FROM ingest_imagesource),"
        " (SELECT count(*) FROM ingest_imagesource WHERE status = 'pending'),"
        " (SELECT count(*) FROM catalog_catalogimage),"
        " (SELECT count(*) FROM catalog_catalogimage WHERE embedding IS NULL)",
    )
    return planned > 0 and pending == 0 and images > 0 and unembedded == 0


EMBEDDED = re.compile(r"Task ingest\.embed_images\[[0-9a-f-]+\] succeeded in [0-9.e-]+s: (\d+)")
RECEIVED = re.compile(r"Task ingest\.fetch_image\[([0-9a-f-]+)\] received")
SUCCEEDED = re.compile(r"Task ingest\.fetch_image\[([0-9a-f-]+)\] succeeded")


def test_a_crawl_queued_on_the_web_machine_is_done_by_two_workers_and_survives_losing_one(wiki, tmp_path):
    broker = redis_or_skip(BROKER)
    standard_scenario(wiki)
    downloads = Downloads(wiki)
    queue = f"revimg-machines-{uuid.uuid4().hex[:8]}"
    bucket = f"revimg-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        create_bucket(endpoint, bucket)
        database_url = stack.enter_context(database_machine())
        shared = dict(
            s3_env(endpoint, bucket, prefix="catalog"),
            DATABASE_URL=database_url,
            CELERY_BROKER_URL=BROKER,
            CELERY_TASK_DEFAULT_QUEUE=queue,
            REVIMG_REDIS_URL=BROKER,
            REVIMG_TASK_REDELIVERY_SECONDS=str(REDELIVERY_SECONDS),
            REVIMG_HTTP_MIN_INTERVAL="0.01",
            REVIMG_HTTP_BACKOFF="0.01",
            REVIMG_HTTP_MAX_WAIT="1",
            REVIMG_WIKIDATA_SPARQL_URL=wiki.url("/sparql"),
            REVIMG_WIKIDATA_API_URL=wiki.url("/wikidata/api.php"),
            REVIMG_WIKIPEDIA_API_URL=wiki.url("/wikipedia/api.php"),
            REVIMG_COMMONS_API_URL=wiki.url("/commons/api.php"),
        )
        dirs = {name: stack.enter_context(machine(name)) for name in "ABC"}
        env = {name: dict(base_env(dirs[name]), **shared, REVIMG_CONTACT=f"machine-{name}") for name in "ABC"}
        stack.callback(broker.delete, queue)
        manage(env["A"], "migrate", "--no-input")
        logs = {name: tmp_path / f"worker-{name}.log" for name in "BC"}
        workers = {name: worker(stack, name, env[name], logs[name]) for name in "BC"}
        web = stack.enter_context(gunicorn_server(tmp_path, env["A"], workers=1))

        manage(env["A"], "crawl", "--queue", "--classes", "3", "--per-class", "6")
        assert downloads.b_is_downloading.wait(DEADLINE), "B never fetched a picture"
        held = RECEIVED.findall(logs["B"].read_text())[-1]
        os.killpg(workers["B"].pid, signal.SIGKILL)
        workers["B"].wait(30)
        downloads.b_is_dead.set()

        wait_for(lambda: crawl_settled(database_url), "the crawl's end", list(logs.values()))
        # C took over the fetch B was killed in, once its visibility timeout passed.
        wait_for(lambda: held in SUCCEEDED.findall(logs["C"].read_text()), "the redelivery", [logs["C"]])
        assert_stored_once_and_embedded_once(database_url, endpoint, bucket, logs)
        assert_searchable_through_the_web_machine(web.url, database_url)
        assert_nothing_shared_on_disk(dirs)


def assert_stored_once_and_embedded_once(database_url, endpoint, bucket, logs):
    sources = query(database_url, "SELECT status, count(*) FROM ingest_imagesource GROUP BY status")
    assert dict(sources) == {"done": sum(count for _, count in sources)}
    images = query(database_url, "SELECT file, thumbnail, sha256 FROM catalog_catalogimage")
    linked = query(database_url, "SELECT count(DISTINCT image_id) FROM ingest_imagesource")[0][0]
    assert len(images) == linked
    keys = bucket_keys(endpoint, bucket)
    assert keys == {f"catalog/{name}" for file, thumbnail, _ in images for name in (file, thumbnail)}
    # Each picture's vector was made once, by B before it died or by C: the embed tasks' counts add up.
    embedded = sum(int(n) for log in logs.values() for n in EMBEDDED.findall(log.read_text()))
    assert embedded == len(images)


def bucket_keys(endpoint, bucket):
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def assert_searchable_through_the_web_machine(web_url, database_url):
    (image_id, sha256, qid), *_ = query(
        database_url,
        "SELECT i.id, i.sha256, c.qid FROM catalog_catalogimage i"
        " JOIN catalog_wikidataclass c ON c.id = i.wikidata_class_id ORDER BY i.id LIMIT 1",
    )
    similar = requests.get(f"{web_url}/api/images/{image_id}/", timeout=30)
    assert similar.status_code == 200, similar.text
    picture = requests.get(similar.json()["image_url"], timeout=30)
    assert picture.status_code == 200
    assert hashlib.sha256(picture.content).hexdigest() == sha256
    answer = requests.post(f"{web_url}/api/search/", files={"image": ("q.jpg", picture.content)}, timeout=60)
    assert answer.status_code == 200, answer.text
    best = answer.json()["results"][0]
    assert (best["id"], best["class"]["qid"]) == (image_id, qid)
    assert best["image_url"].startswith(similar.json()["image_url"].split("?")[0])


def assert_nothing_shared_on_disk(dirs):
    for data in dirs.values():
        media = data / "media"
        assert not media.exists() or not any(path.is_file() for path in media.rglob("*"))
