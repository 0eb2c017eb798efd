"""Re-embedding and re-fetching catalog images (the admin's "re-embed" and "re-fetch from the source").

Both live in catalog, not ingest: the row knows its own file and source URL, and catalog.http is the one
way out to the network, so curating never needs the crawler.
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from . import store
from .errors import Refusal
from .http import untrusted
from .imagefile import ImageError, open_image
from .models import CatalogImage

log = logging.getLogger(__name__)


@dataclass
class RefreshSummary:
    done: int = 0
    unchanged: int = 0
    failed: int = 0
    failures: list = field(default_factory=list)  # (image id, why)

    def fail(self, image_id, reason):
        self.failed += 1
        self.failures.append((image_id, reason))

    def __str__(self):
        text = f"{self.done} done, {self.unchanged} unchanged, {self.failed} failed"
        if self.failures:
            text += ": " + "; ".join(f"#{pk}: {why}" for pk, why in self.failures[:5])
        return text


def reembed(ids, batch_size=32):
    """Embed the images again from their stored files with the current model."""
    summary = RefreshSummary()
    rows = list(CatalogImage.objects.filter(pk__in=list(ids)).defer("embedding").order_by("id"))
    for start in range(0, len(rows), batch_size):
        decoded = []
        for image in rows[start : start + batch_size]:
            try:
                with image.file.open("rb") as f:
                    decoded.append((image, open_image(f.read())))
            except (OSError, ImageError) as exc:
                summary.fail(image.pk, str(getattr(exc, "message", exc)))
        if not decoded:
            continue
        vectors = store.get_embedder().embed([picture for _, picture in decoded])
        for (image, picture), vector in zip(decoded, vectors, strict=True):
            store.set_embedding(image, vector)
            image.phash = image.phash or store.perceptual_hash(picture)
            image.save(update_fields=[*store.EMBEDDING_FIELDS, "phash"])
            summary.done += 1
    return summary


def refetch(ids):
    """Download each image again from its source URL; a changed picture replaces the stored one."""
    summary = RefreshSummary()
    for image in CatalogImage.objects.filter(pk__in=list(ids)).defer("embedding").order_by("id"):
        if not image.source_url:
            summary.fail(image.pk, "no source URL to fetch from")
            continue
        try:
            data = untrusted.fetch_untrusted_image(
                image.source_url, settings.REVIMG_MAX_DOWNLOAD_MB * 1024 * 1024
            )
            candidate = store.prepare(data.content)
        except Refusal as exc:  # the address refused or unreachable, or not a picture
            summary.fail(image.pk, exc.message)
            continue
        if candidate.sha256 == image.sha256:
            summary.unchanged += 1
            continue
        other = CatalogImage.objects.filter(sha256=candidate.sha256).values_list("pk", flat=True).first()
        if other is not None:
            summary.fail(image.pk, f"the source now holds the same picture as #{other}")
            continue
        replace_content(image, candidate, store.embed([candidate])[0])
        summary.done += 1
    return summary


def replace_content(image, candidate, vector):
    """Point image at new content: new files, hash, size, perceptual hash and vector, in one commit."""
    old_names = [image.file.name, image.thumbnail.name]
    image.sha256 = candidate.sha256
    image.phash = candidate.phash
    store.set_embedding(image, vector)
    with transaction.atomic():
        store.write_files(image, candidate)
        image.save()
    # Content-addressed names: the old files go once no row refers to them any more.
    store.delete_unreferenced(old_names, image.file.storage)
