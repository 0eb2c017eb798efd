"""The catalog's HNSW index built after a large load instead of row by row during it.

Each row inserted while the index exists walks its graph (ef_construction=100); a build over the loaded
table does the same work in bulk, on parallel workers. While the index is absent, searches still answer,
by an exact scan of every vector. A load killed before the build leaves the index missing, or invalid if
the build itself was killed: the next load (ensure_built) builds it again.
"""

import logging
from contextlib import contextmanager

from django.conf import settings
from django.db import connections

from .models import CatalogImage

log = logging.getLogger(__name__)

INDEX_NAME = "image_embedding_hnsw"
# The advisory lock two loads ending together take, so one builds the index and the other finds it built.
BUILD_LOCK = 1_326_013


def embedding_index():
    """The HnswIndex declared in CatalogImage.Meta: the build runs its own SQL."""
    return next(index for index in CatalogImage._meta.indexes if index.name == INDEX_NAME)


def index_state(using="default"):
    """Whether the index is "valid", "invalid" (a build that did not finish) or "missing"."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
            [INDEX_NAME],
        )
        row = cursor.fetchone()
    if row is None:
        return "missing"
    return "valid" if row[0] else "invalid"


def worth_deferring(new_rows, catalog_rows):
    """Whether new_rows loaded into a catalog of catalog_rows are better loaded without the index."""
    return new_rows >= settings.REVIMG_IMPORT_INDEX_AFTER_ROWS and (
        new_rows >= settings.REVIMG_IMPORT_INDEX_AFTER_SHARE * catalog_rows
    )


class Load:
    """A load of total pictures: drops the index as soon as what it has created so far projects to
    worth_deferring() over the whole load (so a re-run that finds everything stored never drops it)."""

    def __init__(self, total, using="default"):
        self.total = total
        self.using = using
        self.catalog_rows = CatalogImage.objects.using(using).count()
        self.deferred = False

    def progress(self, created, seen):
        """created new rows among the first seen pictures of the load."""
        if self.deferred or not seen or not created:
            return
        projected = created + (self.total - seen) * created / seen
        if worth_deferring(projected, self.catalog_rows):
            drop(self.using)
            self.deferred = True


@contextmanager
def loading(total, using="default"):
    """A Load for the block; on the way out (an error included) the index is built again if it was
    dropped, or if an earlier load was killed before building it."""
    load = Load(total, using)
    try:
        yield load
    except BaseException:
        try:
            ensure_built(using)
        except Exception:  # the load's own error is the one to report; the next load builds it
            log.warning("the HNSW index was not built again after a failed load", exc_info=True)
        raise
    ensure_built(using)


def drop(using="default"):
    connection = connections[using]
    concurrently = "" if connection.in_atomic_block else " CONCURRENTLY"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX{concurrently} IF EXISTS {connection.ops.quote_name(INDEX_NAME)}")


def ensure_built(using="default"):
    """Build the index unless a valid one exists; searches and loads go on meanwhile (CONCURRENTLY),
    except inside a transaction (tests), where a plain build is the only one possible."""
    with _build_lock(using):
        state = index_state(using)
        if state == "valid":
            return
        if state == "invalid":
            drop(using)
        _build(connections[using])


@contextmanager
def _build_lock(using):
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [BUILD_LOCK])
        try:
            yield
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK])


def _build(connection):
    with connection.schema_editor(atomic=False) as editor, connection.cursor() as cursor:
        # Session settings: a concurrent build runs in transactions of its own, so SET LOCAL would not last.
        cursor.execute(
            "SELECT set_config('maintenance_work_mem', %s, false),"
            " set_config('max_parallel_maintenance_workers', %s, false)",
            [settings.REVIMG_INDEX_BUILD_MEMORY, str(settings.REVIMG_INDEX_BUILD_WORKERS)],
        )
        if connection.in_atomic_block:
            # A plain build refuses a table with foreign key checks still pending in the transaction.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        try:
            editor.add_index(CatalogImage, embedding_index(), concurrently=not connection.in_atomic_block)
        finally:
            cursor.execute("RESET maintenance_work_mem; RESET max_parallel_maintenance_workers")
