"""Stopping a crawl at any moment and running it again: nothing fetched twice, duplicated or lost."""

import os
import socket
import subprocess
import sys

import pytest

from catalog.models import CatalogImage
from ingest import crawl, overlap, tasks
from ingest.models import ImageSource, IngestRun
from ingest.pipeline import run_classes, run_images
from tests.crawl_server import standard_scenario

pytestmark = pytest.mark.django_db


def kill_after(monkeypatch, n):
    """Stop the process (as Ctrl-C would) right after the n-th image is stored, before it is marked done:
    the worst moment, with a file and row written and the crawl state not yet updated."""
    calls = {"n": 0}
    real_finish = crawl._finish

    def finish(source, status, reason, image=None):
        if image is not None:
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
        real_finish(source, status, reason, image)

    monkeypatch.setattr(crawl, "_finish", finish)


def test_a_killed_crawl_resumes_without_duplicates_or_losses(wiki, monkeypatch):
    standard_scenario(wiki)
    ids, _ = run_classes(3)
    kill_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run_images(ids, per_class=4)
    assert IngestRun.objects.get(kind="images").status == "interrupted"
    assert CatalogImage.objects.count() == 3
    monkeypatch.undo()

    run_images(ids, per_class=4)

    # Q571: own image + 3 from the gallery; Q42: its article's image; the deleted class: nothing.
    assert CatalogImage.objects.count() == 5
    assert not ImageSource.objects.planned().exclude(status="done").exists()  # spares stay spare
    # Every file downloaded once, but for those downloaded ahead of the one stopped in (ingest.overlap).
    assert 5 <= len(wiki.requests_to("file")) <= 5 + overlap.AHEAD
    galleries = [p["query"] for p in wiki.requests_to("sparql") if "wdt:P31 wd:" in p["query"]]
    assert len(galleries) == 2  # Q571 and Q42 planned once each, before the kill; not again after
    assert sorted(IngestRun.objects.values_list("status", flat=True)) == ["done", "done", "interrupted"]


def test_a_run_whose_process_is_gone_is_marked_interrupted_by_the_next_run():
    here = socket.gethostname()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    killed = IngestRun.objects.create(kind="images", host=here, pid=int(ended.stdout))
    alive = IngestRun.objects.create(kind="images", host=here, pid=os.getpid())
    elsewhere = IngestRun.objects.create(kind="images", host=here + "-other", pid=int(ended.stdout))

    run_classes(0)

    killed.refresh_from_db()
    assert killed.status == "interrupted" and "killed" in killed.error
    assert IngestRun.objects.get(id=alive.id).status == "running"  # still going, in this very process
    assert IngestRun.objects.get(id=elsewhere.id).status == "running"  # another machine's: not ours to judge


@pytest.mark.slow
def test_a_fetch_task_redelivered_after_its_worker_died_has_the_stored_image_embedded(
    wiki, django_capture_on_commit_callbacks
):
    standard_scenario(wiki)
    ids, _ = run_classes(3)
    crawl.plan_images(ids[0], per_class=1)
    source = ImageSource.objects.get()
    crawl.fetch_source(source.id)  # what the worker did before it died: stored, not yet sent to embedding
    assert CatalogImage.objects.get().embedding is None

    with django_capture_on_commit_callbacks(execute=True):
        tasks.fetch_image.apply(args=[source.id]).get()  # the broker hands the unacknowledged task out again

    assert CatalogImage.objects.get().embedding is not None
    assert len(wiki.requests_to("file")) == 1
