"""Each class's vector statistics (catalog.vectorstats), stored in ClassStatistics and never served stale.

A row carries the fingerprint of the searchable images it was computed from. Reading a class's statistics
is one query that also computes the class's current fingerprint; when they differ, or there is no row,
the statistics are recomputed from the images there and then and stored for every process. Imports
refresh the classes they touched, so searches after them find the rows ready.
"""

from dataclasses import replace

import numpy as np
from django.db import DEFAULT_DB_ALIAS
from django.db.models import F, OuterRef

from .models import CatalogImage, ClassStatistics, VectorBytes, WikidataClass
from .progress import no_progress
from .vectorstats import ClassStats, class_stats


def stats_of(class_id, using=DEFAULT_DB_ALIAS) -> ClassStats | None:
    """The statistics of a class's searchable images, or None when it has none.

    One query (on the database alias using: a search's replica) when the stored row still holds; otherwise
    two more on the primary (the vectors, the upsert), once per change of the class for all processes.
    """
    row = (
        WikidataClass.objects.using(using)
        .filter(pk=class_id)
        .annotate(current=CatalogImage.objects.searchable().class_fingerprint(OuterRef("pk")))
        .values(
            "current",
            fingerprint=F("statistics__fingerprint"),
            count=F("statistics__image_count"),
            tightness=F("statistics__tightness"),
            tightness_sample=F("statistics__tightness_sample"),
            centroid=VectorBytes("statistics__centroid"),
        )
        .first()
    )
    if row is None or row["current"] is None:
        return None
    if row["fingerprint"] != row["current"]:
        # A replica's fingerprint may be older than the primary's: the primary reads its own.
        return refresh_class(class_id, row["current"] if using == DEFAULT_DB_ALIAS else None)
    return ClassStats(
        count=row["count"],
        tightness=row["tightness"],
        centroid=VectorBytes.to_array(row["centroid"]).astype(np.float64),
        tightness_sample=row["tightness_sample"],
    )


def refresh_class(class_id, fingerprint=None) -> ClassStats | None:
    """Recompute and store one class's statistics; None, and no row, when it has no searchable images.

    fingerprint: the class's current one, when the caller just read it.
    """
    images = CatalogImage.objects.searchable().filter(wikidata_class_id=class_id)
    # The fingerprint is read before the vectors: if the class changes in between, the row gets the older
    # fingerprint and the next reader recomputes it. The other order could label old figures as current.
    if fingerprint is None:
        fingerprint = images.fingerprint()
    vectors = images.vectors()
    if not len(vectors):
        ClassStatistics.objects.filter(wikidata_class_id=class_id).delete()
        return None
    stats = class_stats(vectors)
    # Served as stored (float32), so a search gives the same figures whether it recomputed them or not.
    stats = replace(stats, centroid=stats.centroid.astype(np.float32).astype(np.float64))
    _store(class_id, stats, fingerprint)
    return stats


def _store(class_id, stats, fingerprint):
    """Insert or overwrite the class's row in one statement: two processes may recompute it at once."""
    row = ClassStatistics(
        wikidata_class_id=class_id,
        image_count=stats.count,
        tightness=stats.tightness,
        tightness_sample=stats.tightness_sample,
        centroid=stats.centroid.astype(np.float32),
        fingerprint=fingerprint,
    )
    fields = ["image_count", "tightness", "tightness_sample", "centroid", "fingerprint", "computed_at"]
    ClassStatistics.objects.bulk_create(
        [row], update_conflicts=True, unique_fields=["wikidata_class"], update_fields=fields
    )


def refresh(class_ids=None, progress=no_progress):
    """Bring the statistics of these classes (default: all) up to date. Returns how many were recomputed.

    Classes whose stored row still holds, or that have no searchable images, cost nothing more than one
    query for all of them.
    """
    stale = stale_classes(class_ids)
    for class_id, fingerprint in progress(stale):
        refresh_class(class_id, fingerprint)
    return sum(fingerprint is not None for _, fingerprint in stale)


def stale_classes(class_ids=None):
    """[(class id, current fingerprint)] of the classes (default: all) whose statistics are stale, by id.

    A None fingerprint: the class has no searchable images left, and refresh_class removes its row.
    """
    classes = WikidataClass.objects.all()
    if class_ids is not None:
        classes = classes.filter(pk__in=list(class_ids))
    return list(classes.stale_statistics().order_by("pk").values_list("pk", "current_fingerprint"))
