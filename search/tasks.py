"""search's one periodic job, sent by Celery beat (revimg.celery.SEARCH_SCHEDULE)."""

from celery import shared_task

from revimg.celery import DELETE_EXPIRED_SHARED

from . import shared


@shared_task(name=DELETE_EXPIRED_SHARED)
def delete_expired_shared():
    """Forget the uploads whose links have expired; how many."""
    return shared.delete_expired()
