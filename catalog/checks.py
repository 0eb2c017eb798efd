"""System checks: the database must be PostgreSQL 15 or later with pgvector 0.7 or later, and the vector
column must have the embedder's dimension."""

import re

from django.core.checks import Error, Tags, register
from django.db import connections
from django.db.utils import DatabaseError

from .embedding import EMBEDDING_DIM

# The oldest versions revimg runs on: pgvector 0.7 brought halfvec (the HNSW index on half-precision
# vectors, catalog.models.half_embedding); PostgreSQL 15 is the oldest that pgvector's 0.7+ releases and
# Django 5.2 both support and that we have run the suite on.
MIN_POSTGRES = (15,)
MIN_PGVECTOR = (0, 7)

VECTOR_COLUMN_SQL = """
SELECT format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relname = 'catalog_catalogimage' AND a.attname = 'embedding' AND NOT a.attisdropped
"""
VERSIONS_SQL = """
SELECT current_setting('server_version_num')::int, (
    SELECT coalesce(installed_version, default_version) FROM pg_available_extensions WHERE name = 'vector'
)
"""


@register(Tags.database)
def check_pgvector(app_configs=None, databases=None, **kwargs):
    errors = []
    for alias in databases or []:
        try:
            errors.extend(_check_database(connections[alias], alias))
        except DatabaseError as exc:
            errors.append(Error(f"Database {alias!r} could not be inspected: {exc}", id="catalog.E003"))
    return errors


def _check_database(connection, alias):
    with connection.cursor() as cursor:
        cursor.execute(VERSIONS_SQL)
        server_version_num, pgvector_version = cursor.fetchone()
        errors = version_errors(alias, server_version_num, pgvector_version)
        if errors:
            return errors
        cursor.execute(VECTOR_COLUMN_SQL)
        row = cursor.fetchone()
    expected = f"vector({EMBEDDING_DIM})"
    if row is not None and row[0] != expected:
        return [
            Error(
                f"catalog_catalogimage.embedding is {row[0]}, but the embedder makes {expected}.",
                hint="Migrate the catalog to the current embedding dimension and re-embed.",
                id="catalog.E002",
            )
        ]
    return []


def version_errors(alias, server_version_num, pgvector_version):
    """What refuses a server: server_version_num as PostgreSQL gives it (150004), pgvector's installed
    version, else the one CREATE EXTENSION would install, else None (not available at all)."""
    hint = "Point DATABASE_URL at PostgreSQL 15+ with pgvector 0.7+, or unset it to use the embedded one."
    server = (server_version_num // 10000,)
    if server < MIN_POSTGRES:
        return [Error(f"Database {alias!r} is PostgreSQL {server[0]}; revimg needs 15 or later.", hint=hint,
                      id="catalog.E004")]  # fmt: skip
    if pgvector_version is None:
        return [
            Error(f"Database {alias!r} has no pgvector extension available.", hint=hint, id="catalog.E001")
        ]
    if _version_tuple(pgvector_version) < MIN_PGVECTOR:
        return [Error(f"Database {alias!r} has pgvector {pgvector_version}; revimg needs 0.7 or later.",
                      hint=hint, id="catalog.E005")]  # fmt: skip
    return []


def _version_tuple(text):
    # pgvector versions are dotted numbers (0.8.0); a suffix such as "-dev" is ignored.
    return tuple(int(number) for number in re.findall(r"\d+", text.split("-")[0]))
