"""A real `celery -A revimg beat` and a real worker on Redis: with a tiny interval, beat sends the media sweep,
the worker runs it, and the run is left as an IngestRun; jobs at 0 hours are never sent."""

import os
import time

import pytest

from ingest.models import IngestRun
from tests.celery_processes import BROKER, beat_command, celery_env, celery_process, new_queue, worker_command
from tests.services import redis_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEADLINE_SECONDS = 120  # a bound for a broken beat or worker, not a measurement
TWO_HOURS_AGO = time.time() - 2 * 3600
EVERY_TWO_SECONDS = str(2 / 3600)  # hours


def logs(*paths):
    return "\n".join(f"--- {path.name}:\n{path.read_text()[-3000:]}" for path in paths if path.exists())


def test_beat_sends_a_due_job_that_a_worker_runs_and_records(tmp_path):
    broker = redis_or_skip(BROKER)
    queue = new_queue()
    media = tmp_path / "worker-media"
    orphan = media / "images" / "ab" / ("ab" * 32 + ".jpg")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a killed import")
    os.utime(orphan, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    beat_data = tmp_path / "beat-data"  # beat needs no database: its own data dir shows where its file goes
    schedule = {
        "REVIMG_UPKEEP_SWEEP_HOURS": EVERY_TWO_SECONDS,
        "REVIMG_UPKEEP_SUSPECTS_HOURS": "0",
        "REVIMG_UPKEEP_CLASS_STATS_HOURS": "0",
        "REVIMG_UPKEEP_REEMBED_HOURS": "0",
        "REVIMG_UPKEEP_RECRAWL_HOURS": "0",
    }
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker_env = celery_env(queue, REVIMG_MEDIA_ROOT=str(media))
    beat_env = celery_env(queue, REVIMG_DATA_DIR=str(beat_data), **schedule)

    try:
        with (
            celery_process(worker_command(queue), worker_env, worker_log),
            celery_process(beat_command(), beat_env, beat_log),
        ):
            deadline = time.monotonic() + DEADLINE_SECONDS
            while time.monotonic() < deadline and not IngestRun.objects.filter(status="done").exists():
                time.sleep(0.5)
    finally:
        broker.delete(queue)

    runs = list(IngestRun.objects.values_list("kind", "status", "summary"))
    assert runs, "no job ran:\n" + logs(beat_log, worker_log)
    assert {kind for kind, _, _ in runs} == {"upkeep:sweep_media"}
    assert ("upkeep:sweep_media", "done", "1 files removed, 23 bytes freed") in runs
    assert not orphan.exists()
    assert list(beat_data.glob("celerybeat-schedule*")), "beat kept its schedule elsewhere"
