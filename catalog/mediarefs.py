"""Which media files rows refer to: every FileField of every model, so a file is kept while any row names it."""

from functools import reduce
from operator import or_
from pathlib import PurePosixPath

from django.apps import apps
from django.db import models
from django.db.models import Q


def file_fields():
    """[(model, [names of its FileFields])] for every installed model that has any (images, thumbnails)."""
    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        if names:
            found.append((model, names))
    return found


def referenced_names():
    """The set of every file name some row refers to, read in one pass per model."""
    names = set()
    for model, fields in file_fields():
        for field in fields:
            names.update(model._base_manager.exclude(**{field: ""}).values_list(field, flat=True).iterator())
    return names


def is_referenced(name):
    """Whether any row refers to the file name now (one query per model with file fields)."""
    return any(
        model._base_manager.filter(reduce(or_, (Q(**{field: name}) for field in fields))).exists()
        for model, fields in file_fields()
    )


def is_plain_name(name):
    """Whether a media file name stays under MEDIA_ROOT as written: relative, "/"-separated, with no empty,
    "." or ".." step (nor a NUL or a backslash). Such names are refused rather than normalised, so that one
    file has one name and nothing climbs out of the media folder (the /media/ view, backups, the sweep)."""
    if "\x00" in name or "\\" in name or PurePosixPath(name).is_absolute():
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))
