"""The crawl through a real Celery worker process and a real Redis broker.

The worker is `celery -A revimg worker --pool=solo`, started for this test with its own Redis database
number and queue name (so it cannot take anyone else's tasks), pointed at pytest's test database through
REVIMG_DB_NAME (the test is transactional, so what it writes is committed and visible to the worker), and
at the local Wikimedia stand-in through the base URL settings.
"""

import re
import time
from collections import defaultdict

import pytest
from celery import Celery

from catalog.models import CatalogImage
from ingest.models import ImageSource
from tests.celery_processes import BROKER, celery_env, celery_process, new_queue, worker_command
from tests.crawl_server import ADMONT, standard_scenario
from tests.services import redis_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEADLINE_SECONDS = 300  # a bound for a broken worker, not a measurement


@pytest.fixture
def redis_broker():
    return redis_or_skip(BROKER)


@pytest.fixture
def worker(wiki, redis_broker, tmp_path):
    queue = new_queue()
    env = celery_env(
        queue,
        REVIMG_MEDIA_ROOT=str(tmp_path / "worker-media"),
        REVIMG_REDIS_URL=BROKER,  # the shared rate limit, for real
        REVIMG_HTTP_MIN_INTERVAL="0.01",
        REVIMG_HTTP_BACKOFF="0.01",
        REVIMG_HTTP_MAX_WAIT="1",
    )
    log = tmp_path / "worker.log"
    try:
        with celery_process(worker_command(queue), env, log):
            yield queue, log
    finally:
        redis_broker.delete(queue)


def wait_for(condition, log):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail("the worker did not finish; its log:\n" + log.read_text()[-5000:])


TASK_LINE = re.compile(r"Task ingest\.\w+\[([0-9a-f-]+)\] (received|succeeded|raised|retry|failed)")


def tasks_in(text):
    """{task id: its lines' words in order} from the worker's log: received, then how it ended."""
    tasks = defaultdict(list)
    for task_id, word in TASK_LINE.findall(text):
        tasks[task_id].append(word)
    return tasks


def test_a_real_worker_runs_the_crawl_tasks_through_redis(wiki, worker, redis_broker):
    standard_scenario(wiki)
    queue, log = worker
    client = Celery(broker=BROKER)
    client.send_task("ingest.crawl", args=[3, 2], queue=queue)

    def finished():
        return (
            ImageSource.objects.planned().count() == 3  # Q571's own and one instance's, Q42's
            and not ImageSource.objects.filter(status="pending").exists()
            and CatalogImage.objects.count() == 3
            and not CatalogImage.objects.filter(embedding__isnull=True).exists()
        )

    wait_for(finished, log)
    book = CatalogImage.objects.get(commons_file=ADMONT)
    assert (book.wikidata_class.qid, book.license) == ("Q571", "CC BY-SA 3.0")
    # Sending the same crawl again changes nothing: the tasks are idempotent.
    sources = ImageSource.objects.count()  # the planned ones and a spare
    marker = len(log.read_text())
    client.send_task("ingest.crawl", args=[3, 2], queue=queue)
    client.send_task("ingest.fetch_image", args=[ImageSource.objects.first().id], queue=queue)
    settled = []

    def all_done():
        """Nothing waits in the queue or runs (acks are late: a message leaves the queue once received, and
        is logged then), and every task received since the re-run has ended; twice in a row, half a second
        apart, so that a task the last one queued has had time to be received."""
        before = log.read_text()[marker:]
        idle = redis_broker.llen(queue) == 0
        tasks = tasks_in(log.read_text()[marker:])
        ended = len(tasks) >= 2 and all(
            w.count("received") == len(w) - w.count("received") for w in tasks.values()
        )
        settled.append(idle and ended and tasks_in(before) == tasks)
        return settled[-2:] == [True, True]

    wait_for(all_done, log)
    tasks = tasks_in(log.read_text()[marker:])
    # The re-run: the crawl, one plan per class with images, the fetch; all succeeded and changed nothing.
    assert all(words == ["received", "succeeded"] for words in tasks.values())
    assert len(tasks) >= 4
    assert ImageSource.objects.count() == sources
    assert CatalogImage.objects.count() == 3
