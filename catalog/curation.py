"""What a curator does to catalog images, recorded in Django's admin log (who, what, when).

Each function takes ids (or a QuerySet) and the acting user, so the admin, a shell or a task share them.
Excluding is a status change on the row: search reads CatalogImage.objects.searchable(), so an excluded
image is gone from results at the next query, with no index to rebuild.
"""

import logging

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction
from django.utils import timezone

from .models import CatalogImage, Suspect, WikidataClass

log = logging.getLogger(__name__)


def record(user, objects, message):
    """One admin log entry per object, so each image's History page shows the change."""
    if user is not None and objects:
        LogEntry.objects.log_actions(user.pk, objects, CHANGE, change_message=message)


def _set_status(ids, status, reason, user, message):
    """Move the images in ids that are not in status yet to it; returns how many changed."""
    with transaction.atomic():
        changing = _not_yet(ids, status=status)
        _update(changing, status=status, status_reason=reason)
        record(user, changing, message)
    return len(changing)


def _not_yet(ids, **target):
    """The images in ids whose fields are not all at target yet, with their class (for History messages)."""
    return list(
        CatalogImage.objects.filter(pk__in=list(ids))
        .exclude(**target)
        .select_related("wikidata_class")
        .defer("embedding")
    )


def _update(images, **fields):
    CatalogImage.objects.filter(pk__in=[i.pk for i in images]).update(**fields, updated_at=timezone.now())


def exclude(ids, reason, user=None):
    """Take images out of search (the file and row stay, so restoring is one click)."""
    reason = reason.strip()
    ids = list(ids)
    count = _set_status(ids, CatalogImage.Status.EXCLUDED, reason, user, f"Excluded: {reason}")
    # An excluded picture must not go on standing for its class.
    for wikidata_class in WikidataClass.objects.filter(main_image__in=ids):
        WikidataClass.objects.filter(pk=wikidata_class.pk).update(main_image=None, updated_at=timezone.now())
        record(user, [wikidata_class], f"Main image #{wikidata_class.main_image_id} excluded: none now")
    return count


def restore(ids, user=None):
    return _set_status(ids, CatalogImage.Status.ACTIVE, "", user, "Restored")


def flag(ids, reason="", user=None):
    """Mark images for a second look; they stay searchable meanwhile."""
    reason = reason.strip()
    message = f"Flagged for review: {reason}" if reason else "Flagged for review"
    return _set_status(ids, CatalogImage.Status.FLAGGED, reason, user, message)


def make_main_image(image_id, user=None):
    """Make an image its class's main image; returns the class."""
    image = CatalogImage.objects.defer("embedding").select_related("wikidata_class").get(pk=image_id)
    wikidata_class = image.wikidata_class
    with transaction.atomic():
        WikidataClass.objects.filter(pk=wikidata_class.pk).update(main_image=image, updated_at=timezone.now())
        wikidata_class.main_image = image
        record(user, [wikidata_class], f"Main image set to #{image.pk}")
        record(user, [image], f"Made the main image of {wikidata_class.label}")
    return wikidata_class


def move(ids, wikidata_class, user=None):
    """File images under another class (a picture of a lighthouse found among the windmills)."""
    with transaction.atomic():
        moving = _not_yet(ids, wikidata_class=wikidata_class)
        _update(moving, wikidata_class=wikidata_class)
        for image in moving:
            record(user, [image], f"Moved from {image.wikidata_class.label} to {wikidata_class.label}")
        WikidataClass.objects.filter(main_image__in=moving).update(main_image=None)
    return len(moving)


def resolve_suspect(suspect, decision, user):
    """Carry out a curator's one-click decision on a suspect; returns the message to show.

    Decisions: "dismiss"; for an outlier "move" (to its suggested class) or "exclude"; for a cluster of
    copies "keep-<id>", which excludes every other copy.
    """
    if decision == "dismiss":
        Suspect.objects.filter(pk=suspect.pk).update(dismissed_at=timezone.now())
        record(user, [suspect.image], f"Suspicion dismissed: {suspect.get_kind_display().lower()}")
        return f"Dismissed: {suspect}."
    if suspect.kind == Suspect.Kind.DUPLICATE and decision.startswith("keep-"):
        return keep_one_copy(suspect, decision.removeprefix("keep-"), user)
    if suspect.kind == Suspect.Kind.OUTLIER and decision == "move" and suspect.suggested_class_id:
        move([suspect.image_id], suspect.suggested_class, user)
        Suspect.objects.filter(pk=suspect.pk).delete()  # settled; the next run judges it in its new class
        return f"Moved #{suspect.image_id} to {suspect.suggested_class.label}."
    if suspect.kind == Suspect.Kind.OUTLIER and decision == "exclude":
        reason = f"outlier in its class ({suspect.reason})"
        exclude([suspect.image_id], reason, user)
        return f"Excluded #{suspect.image_id}: {reason}."
    return "Nothing done: unknown choice."


def keep_one_copy(suspect, kept, user):
    """Keep one picture of a cluster of copies (kept: its id, as typed in the request) and exclude the rest."""
    members = set(suspect.members.values_list("pk", flat=True))
    if not kept.isdigit() or int(kept) not in members:
        return f"Nothing done: #{kept} is not one of the copies."
    kept = int(kept)
    others = sorted(members - {kept})
    exclude(others, f"the same picture as #{kept}, which was kept", user)
    return f"Kept #{kept}; excluded {', '.join(f'#{pk}' for pk in others)}."
