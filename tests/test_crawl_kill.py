"""A crawl killed for real (SIGKILL: no exception handler, no clean-up) and run again.

`manage.py crawl` runs as a child process against the local Wikimedia stand-in served by this test, on
pytest's test database (REVIMG_DB_NAME; the test is transactional, so both processes see committed rows).
The stand-in holds one file download until the child is killed, so the kill lands at a known point: some
images stored, the next one half-fetched. The resumed catalog is compared with an uninterrupted crawl of
the same scenario.
"""

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from io import StringIO
from urllib.parse import unquote

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from catalog.embedding import MODEL_NAME
from catalog.models import CatalogImage, WikidataClass
from ingest.crawl import fetch_source
from ingest.models import ImageSource, IngestRun
from tests.crawl_server import claim_lock_held, picture_bytes, standard_scenario

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CRAWL = ["crawl", "--classes", "3", "--per-class", "4", "--no-progress"]
STORED_BEFORE_KILL = 2
DEADLINE_SECONDS = 300  # a bound for a broken crawl, not a measurement


class Downloads:
    """Counts the stand-in's file downloads by file name; once told to, holds the one after the next n
    until released."""

    def __init__(self, wiki):
        self.counts = Counter()
        self.hold_at = None
        self.holding = threading.Event()
        self.released = threading.Event()
        self.held_file = None
        self._answer = wiki.answer_file
        wiki.answer_file = self.answer

    def hold_after(self, n):
        self.counts.clear()
        self.hold_at = n + 1

    def answer(self, request, params):
        name = unquote(request.path[len("/files/") :]).replace("_", " ")
        self.counts[name] += 1
        if self.hold_at is not None and self.counts.total() == self.hold_at:
            self.held_file = name
            self.holding.set()
            self.released.wait(DEADLINE_SECONDS)
        return self._answer(request, params)


def crawl_env(media_root):
    return dict(
        os.environ,
        REVIMG_DATA_DIR=str(django_settings.REVIMG_DATA_DIR),
        REVIMG_DB_NAME=connection.settings_dict["NAME"],
        REVIMG_MEDIA_ROOT=str(media_root),
        CELERY_BROKER_URL="",
        REVIMG_REDIS_URL="",
        REVIMG_HTTP_MIN_INTERVAL="0",
        REVIMG_HTTP_BACKOFF="0.01",
        REVIMG_HTTP_MAX_WAIT="1",
        REVIMG_WIKIDATA_SPARQL_URL=django_settings.REVIMG_WIKIDATA_SPARQL_URL,
        REVIMG_WIKIDATA_API_URL=django_settings.REVIMG_WIKIDATA_API_URL,
        REVIMG_WIKIPEDIA_API_URL=django_settings.REVIMG_WIKIPEDIA_API_URL,
        REVIMG_COMMONS_API_URL=django_settings.REVIMG_COMMONS_API_URL,
    )


def start_crawl(env, log_path):
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", *CRAWL],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=django_settings.BASE_DIR,
        )


def catalog_contents():
    """What a crawl leaves, by natural keys (ids differ from one crawl to another)."""
    images = {
        (i.wikidata_class.qid, i.commons_file, i.sha256, i.origin, i.license)
        for i in CatalogImage.objects.select_related("wikidata_class")
    }
    sources = {
        (s.wikidata_class.qid, s.commons_file, s.status)
        for s in ImageSource.objects.select_related("wikidata_class")
    }
    mains = dict(WikidataClass.objects.values_list("qid", "main_image__commons_file"))
    return images, sources, mains


def uninterrupted_crawl(downloads):
    """The same crawl run once without a kill (in this process, not embedded); then the catalog is emptied.
    Returns what it stored and how often it downloaded each file."""
    call_command("crawl", *CRAWL[1:], "--no-embed", stdout=StringIO())
    contents = catalog_contents()
    needed = Counter(downloads.counts)
    WikidataClass.objects.all().delete()  # with their images, plans and crawl states
    IngestRun.objects.all().delete()
    return contents, needed


def wait_for(condition):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def files_on_disk(media_root):
    return {str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file()}


def plant_half_written_file(media_root, commons_file):
    """What a kill between writing an image's file and committing its row leaves: a file at the image's
    content-addressed name that no row refers to (here cut short, as if killed mid-write)."""
    data = picture_bytes(sum(commons_file.encode()))  # what the stand-in serves for that file
    sha = hashlib.sha256(data).hexdigest()
    path = media_root / "images" / sha[:2] / f"{sha}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path, sha


def test_a_crawl_killed_mid_download_resumes_without_duplicates_or_losses(wiki, tmp_path):
    standard_scenario(wiki)
    held = Downloads(wiki)
    expected, needed = uninterrupted_crawl(held)
    assert len(expected[0]) == 5  # the scenario: Q571's own image and 3 of its gallery, Q42's article image
    assert set(needed.values()) == {1}

    media = tmp_path / "crawl-media"
    env = crawl_env(media)
    held.hold_after(STORED_BEFORE_KILL)
    killed = start_crawl(env, tmp_path / "killed.log")
    try:
        assert held.holding.wait(DEADLINE_SECONDS), (tmp_path / "killed.log").read_text()
        # Downloads run ahead of storing (ingest.overlap): the images before the held one are stored
        # meanwhile, and no further one, as every later download waits behind the held one.
        wait_for(lambda: CatalogImage.objects.count() == STORED_BEFORE_KILL)
        # Meanwhile a second worker (this process) is asked for the image being downloaded: it leaves it.
        in_flight = ImageSource.objects.get(commons_file=held.held_file).id
        assert fetch_source(in_flight) == ("skipped", "being fetched by another process")
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.kill()
        killed.wait()
        held.released.set()
    assert killed.returncode == -signal.SIGKILL
    assert IngestRun.objects.get(kind="images").status == "running"  # the kill left it so
    wait_for(lambda: not claim_lock_held(in_flight))  # the claim went with the killed process's connection
    orphan, orphan_sha = plant_half_written_file(media, held.held_file)

    resumed = subprocess.run(
        [sys.executable, "manage.py", *CRAWL],
        env=env,
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
        timeout=DEADLINE_SECONDS,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    # Nothing lost, nothing duplicated: the same catalog as the uninterrupted crawl, every image embedded.
    assert catalog_contents() == expected
    assert not CatalogImage.objects.needing_embedding().exists()
    assert CatalogImage.objects.filter(embedding_model=MODEL_NAME).count() == 5
    # Every file on disk belongs to a row and holds that row's content; the half-written one was rewritten.
    referenced = set()
    for image in CatalogImage.objects.all():
        referenced |= {image.file.name, image.thumbnail.name}
        assert hashlib.sha256((media / image.file.name).read_bytes()).hexdigest() == image.sha256
    assert files_on_disk(media) == referenced
    assert str(orphan.relative_to(media)) == CatalogImage.objects.get(sha256=orphan_sha).file.name
    # The killed run is recorded as interrupted, not running forever.
    runs = sorted(IngestRun.objects.values_list("kind", "status"))
    assert runs == [
        ("classes", "done"),
        ("classes", "done"),
        ("embeddings", "done"),
        ("images", "done"),
        ("images", "interrupted"),
    ]
    # Only the download the kill cut short was made twice.
    assert held.counts - needed == Counter({held.held_file: 1})
    assert set(held.counts) == set(needed)


def test_a_terminated_crawl_records_its_run_as_interrupted_and_leaves_no_stray_file(wiki, tmp_path):
    standard_scenario(wiki)
    held = Downloads(wiki)
    held.hold_after(STORED_BEFORE_KILL)
    media = tmp_path / "crawl-media"
    terminated = start_crawl(crawl_env(media), tmp_path / "terminated.log")
    try:
        assert held.holding.wait(DEADLINE_SECONDS), (tmp_path / "terminated.log").read_text()
        wait_for(lambda: CatalogImage.objects.count() == STORED_BEFORE_KILL)  # as above
        terminated.terminate()  # SIGTERM, as kill, docker stop or systemd send
        terminated.wait(DEADLINE_SECONDS)
    finally:
        terminated.kill()
        terminated.wait()
        held.released.set()

    assert terminated.returncode == 130, (tmp_path / "terminated.log").read_text()
    assert "run the command again to continue" in (tmp_path / "terminated.log").read_text()
    run = IngestRun.objects.get(kind="images")
    assert (run.status, run.error) == ("interrupted", "stopped before the end")
    assert run.finished_at is not None
    referenced = {name for i in CatalogImage.objects.all() for name in (i.file.name, i.thumbnail.name)}
    assert len(referenced) == 2 * STORED_BEFORE_KILL and files_on_disk(media) == referenced
