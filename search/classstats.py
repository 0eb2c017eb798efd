"""The verdict's statistics of a class (its tightness and centroid), computed from the catalog on demand
and cached until the class's searchable images change."""

from django.core.cache import cache

from catalog.models import CatalogImage

from . import verdict

# A changed class gets a new key, so entries never go stale; the timeout only frees memory.
CACHE_SECONDS = 24 * 3600


def class_stats_of(class_id):
    """verdict.ClassStats of a class's searchable images, or None when it has none.

    One small aggregate query per call (the class's fingerprint); the vectors are read and the O(n^2)
    statistics computed only when the class changed since they were last cached.
    """
    images = CatalogImage.objects.searchable().filter(wikidata_class_id=class_id)
    count, changed, embedded = images.fingerprint()
    if not count:
        return None
    stamps = "-".join(str(t.timestamp()) if t else "" for t in (changed, embedded))
    key = f"revimg:class-stats:{class_id}:{count}:{stamps}"
    stats = cache.get(key)
    if stats is None:
        stats = verdict.class_stats(images.vectors())
        cache.set(key, stats, CACHE_SECONDS)
    return stats
