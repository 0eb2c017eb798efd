"""System checks: the database must have pgvector, and the vector column the embedder's dimension."""

from django.core.checks import Error, Tags, register
from django.db import connections
from django.db.utils import DatabaseError

from .embedding import EMBEDDING_DIM

VECTOR_COLUMN_SQL = """
SELECT format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relname = 'catalog_catalogimage' AND a.attname = 'embedding' AND NOT a.attisdropped
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
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is None:
            return [
                Error(
                    f"Database {alias!r} has no pgvector extension available.",
                    hint="Use a PostgreSQL with pgvector, or unset DATABASE_URL to use the embedded one.",
                    id="catalog.E001",
                )
            ]
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
