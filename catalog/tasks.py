"""Catalog background work. Tasks take ids and re-read rows; without a broker they run eagerly."""

from celery import shared_task

from . import classstats, refresh, suspects


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
