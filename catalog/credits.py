"""Where the catalog's pictures come from, for the footer of every page: how many pictures of how many
classes, from which sources, under which licences. Read in one query, kept a minute in the shared cache."""

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.db import DatabaseError, InterfaceError

from .models import CatalogImage
from .weburl import web_url_or_none

log = logging.getLogger(__name__)

CACHE_KEY = "catalog:credits"
CACHE_SECONDS = 60
# Sources named in a footer: past these, the rest are counted (a catalog of many imported folders).
SHOWN_SOURCES = 3
# What imports that stated no attribution are called.
UNNAMED = "imported folders that name no source"


@dataclass(frozen=True)
class Source:
    name: str  # models.COMMONS, an import's attribution, or UNNAMED
    license: str = ""
    license_url: str = ""

    @property
    def license_link(self):
        """license_url if it is safe to link to, else None (as CatalogImage.license_link)."""
        return web_url_or_none(self.license_url)


@dataclass(frozen=True)
class Credits:
    pictures: int
    classes: int
    sources: tuple  # Source, by name, UNNAMED ones last

    @property
    def shown_sources(self):
        return self.sources[:SHOWN_SOURCES]

    @property
    def more_sources(self):
        return max(0, len(self.sources) - SHOWN_SOURCES)


def compute():
    """The searchable catalog's Credits, from the database now."""
    figures = CatalogImage.objects.searchable().credits()
    sources = sorted(
        {Source(**source) for source in figures["sources"]},
        key=lambda source: (not source.name, source.name, source.license, source.license_url),
    )
    named = (Source(source.name or UNNAMED, source.license, source.license_url) for source in sources)
    return Credits(figures["pictures"], figures["classes"], tuple(named))


def current():
    """Credits at most a minute old; None when the database, or the cache kept in it, cannot be reached,
    so that a page shown during an outage still renders (with a generic footer)."""
    try:
        return cache.get_or_set(CACHE_KEY, compute, CACHE_SECONDS)
    except (DatabaseError, InterfaceError) as exc:
        log.warning("catalog credits unavailable: %s: %s", type(exc).__name__, exc)
        return None
