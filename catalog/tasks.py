"""Catalog background work. Tasks take ids and re-read rows; without a broker they run eagerly."""

from datetime import timedelta

from celery import shared_task

from . import classstats, refresh, suspects, sweep


@shared_task(name="catalog.reembed_images")
def reembed_images(image_ids):
    return str(refresh.reembed(image_ids))


@shared_task(name="catalog.refetch_images")
def refetch_images(image_ids):
    return str(refresh.refetch(image_ids))


@shared_task(name="catalog.find_suspects")
def find_suspects():
    summary = suspects.find_suspects()
    return f"{summary.outliers} outliers, {summary.duplicates} duplicate pairs"


@shared_task(name="catalog.refresh_class_stats")
def refresh_class_stats(class_ids):
    return f"{classstats.refresh(class_ids)} classes recomputed"


@shared_task(name="catalog.sweep_media")
def sweep_media(grace_minutes=None):
    """Upkeep: remove media files no row refers to (catalog.sweep); grace_minutes defaults to an hour."""
    grace = sweep.DEFAULT_GRACE if grace_minutes is None else timedelta(minutes=grace_minutes)
    return str(sweep.sweep_media(grace))
