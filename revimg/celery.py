"""The Celery app. Without CELERY_BROKER_URL tasks run eagerly, in the calling process."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")

app = Celery("revimg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def warm_up_embedder(**_kwargs):
    # Load the image model once per worker process, never at import time of a web process.
    from catalog.embedding import get_embedder

    get_embedder().load()
