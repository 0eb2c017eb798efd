"""Two workers never fetch the same planned image: each fetch claims it first, and a claim goes with the
connection of the process that holds it."""

import time

import pytest
from django.db import connections

from ingest import crawl
from ingest.models import ImageSource
from ingest.pipeline import run_classes
from tests.crawl_server import claim_lock_held, standard_scenario

pytestmark = pytest.mark.django_db

DEADLINE_SECONDS = 30  # a bound for a broken server, not a measurement


@pytest.fixture
def planned_image(wiki):
    standard_scenario(wiki)
    ids, _ = run_classes(3)
    crawl.plan_images(ids[0], per_class=1)
    return ImageSource.objects.get()


def test_an_image_claimed_by_another_process_is_left_to_it(wiki, planned_image):
    other_worker = connections.create_connection("default")
    try:
        with other_worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [crawl.CLAIM_LOCK_SPACE, planned_image.id])

        assert crawl.fetch_source(planned_image.id) == ("skipped", "being fetched by another process")
        assert not wiki.requests_to("commons") and not wiki.requests_to("file")
        planned_image.refresh_from_db()
        assert (planned_image.status, planned_image.attempts) == ("pending", 0)
    finally:
        other_worker.close()  # as when that worker dies: Postgres drops its locks with its connection

    deadline = time.monotonic() + DEADLINE_SECONDS
    while claim_lock_held(planned_image.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert crawl.fetch_source(planned_image.id)[0] == "created"
    assert len(wiki.requests_to("file")) == 1


def test_a_fetch_releases_its_claim(wiki, planned_image):
    assert crawl.fetch_source(planned_image.id)[0] == "created"
    assert not claim_lock_held(planned_image.id)
    assert crawl.fetch_source(planned_image.id) == ("skipped", "already handled")
