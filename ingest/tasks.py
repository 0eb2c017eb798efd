"""Celery tasks for the crawl. They take ids, re-read rows, and are safe to run twice.

Transient failures (HTTP 429/5xx/maxlag/timeouts after the client's own retries, a database restart) are
retried with exponential backoff and jitter; anything else is recorded on the row and not retried.
Without CELERY_BROKER_URL they run eagerly, in the caller's process.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from catalog.http import crawler as http
from revimg.celery import upkeep_task_name

from . import crawl, upkeep

TRANSIENT = (http.TransientHTTPError, OperationalError, InterfaceError)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 30,  # seconds, doubled per retry
    "retry_backoff_max": 30 * 60,
    "retry_jitter": True,  # several workers do not come back in step
    "max_retries": 8,
    "acks_late": True,
}


@shared_task(name="ingest.crawl", **RETRY)
def crawl_task(classes, per_class=1, dump_path=None):
    """Fetch the top classes, then plan each one in its own task."""
    ids = crawl.crawl_classes(classes, dump_path)
    for class_id in ids:
        transaction.on_commit(lambda class_id=class_id: plan_class.delay(class_id, per_class))
    return len(ids)


@shared_task(name="ingest.plan_class", **RETRY)
def plan_class(class_id, per_class=1):
    """Plan a class's images, then fetch each pending one in its own task."""
    planned = crawl.plan_images(class_id, per_class)
    for source_id in crawl.pending_sources([class_id]).values_list("id", flat=True):
        transaction.on_commit(lambda source_id=source_id: fetch_image.delay(source_id))
    return planned


@shared_task(name="ingest.fetch_image", **RETRY)
def fetch_image(source_id):
    """Fetch and store one planned image, then have it embedded; an unusable one has a spare fetched in
    its place."""
    outcome, detail = crawl.fetch_source(source_id)
    # Whatever the outcome: this may be the redelivery of a task whose worker was killed after storing the
    # image and before asking for its embedding.
    image_id = crawl.image_to_embed(source_id)
    if image_id is not None:
        transaction.on_commit(lambda: embed_images.delay([image_id]))
    if outcome != "created":  # unusable, or another class's file: the next spare stands in for it
        for spare_id in crawl.replacements(source_id):
            transaction.on_commit(lambda spare_id=spare_id: fetch_image.delay(spare_id))
    return f"{outcome}: {detail}"


@shared_task(name="ingest.embed_images", **RETRY)
def embed_images(image_ids):
    return crawl.embed_images(image_ids)


# --- upkeep (ingest.upkeep), sent by Celery beat on the schedule revimg.celery builds --------------------


def _upkeep_task(job):
    """The task of one upkeep job, named as revimg.celery's schedule expects. No automatic retries: a
    failed job is recorded failed, and beat sends it again when it is next due."""

    @shared_task(name=upkeep_task_name(job))
    def run_upkeep_job():
        return str(upkeep.run(job))  # a failure is recorded, then raised: the task fails too

    return run_upkeep_job


UPKEEP_TASKS = {job: _upkeep_task(job) for job in upkeep.JOBS}
