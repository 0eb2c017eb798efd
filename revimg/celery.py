"""The Celery app. Without CELERY_BROKER_URL tasks run eagerly, in the calling process.

`celery -A revimg beat` sends the upkeep jobs (ingest.upkeep) on the schedule settings.REVIMG_UPKEEP_HOURS
gives; a worker runs them.
"""

import os
from datetime import timedelta

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")

app = Celery("revimg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def upkeep_task_name(job):
    """The name ingest.tasks registers an upkeep job's task under."""
    return f"ingest.upkeep_{job}"


def upkeep_schedule(hours_by_job):
    """Beat's schedule: each job every so many hours; a job at 0 hours is not scheduled.

    A message expires once its job is due again, so a worker that was down does not find a backlog of
    the same job waiting for it.
    """
    schedule = {}
    for job, hours in hours_by_job.items():
        if hours > 0:
            every = timedelta(hours=hours)
            schedule[f"upkeep-{job}"] = {
                "task": upkeep_task_name(job),
                "schedule": every,
                "options": {"expires": every.total_seconds()},
            }
    return schedule


# search's own job (search.tasks): the kept uploads whose links have expired are deleted every hour, so
# none outlives REVIMG_SHARED_QUERY_HOURS by more than that.
DELETE_EXPIRED_SHARED = "search.delete_expired_shared"  # the name search.tasks registers it under
SEARCH_SCHEDULE = {
    "search-delete_expired_shared": {
        "task": DELETE_EXPIRED_SHARED,
        "schedule": timedelta(hours=1),
        "options": {"expires": timedelta(hours=1).total_seconds()},
    }
}


@app.on_after_configure.connect
def schedule_upkeep(sender, **_kwargs):
    # Here, not at import: revimg.settings imports this package, so the settings are read once loaded.
    from django.conf import settings

    sender.conf.beat_schedule = {**upkeep_schedule(settings.REVIMG_UPKEEP_HOURS), **SEARCH_SCHEDULE}


@worker_process_init.connect
def warm_up_embedder(**_kwargs):
    # Load the image model once per worker process, never at import time of a web process.
    from catalog.embedding import get_embedder

    get_embedder().load()
