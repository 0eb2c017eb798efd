"""The catalog lives in a real PostgreSQL with pgvector, and start-up checks say when it does not fit."""

import pytest
from django.core.checks import run_checks
from django.db import connection

from catalog.checks import check_pgvector

pytestmark = pytest.mark.django_db


def test_the_database_has_pgvector_and_the_catalog_passes_its_checks():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cursor.fetchone()
    assert tuple(int(part) for part in version.split(".")[:2]) >= (0, 8)
    assert [e for e in run_checks(databases=["default"]) if e.id and e.id.startswith("catalog.")] == []


def test_the_embedding_column_has_an_hnsw_cosine_index_on_its_halfvec_cast():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'image_embedding_hnsw'")
        (definition,) = cursor.fetchone()
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'catalog_catalogimage'::regclass AND attname = 'embedding'"
        )
        (column_type,) = cursor.fetchone()
    assert "USING hnsw" in definition and "((embedding)::halfvec(1280)) halfvec_cosine_ops" in definition
    assert "m='24'" in definition and "ef_construction='100'" in definition
    assert column_type == "vector(1280)"  # the column itself keeps full precision


def test_a_vector_column_of_another_dimension_is_reported():
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX image_embedding_hnsw")
        cursor.execute("ALTER TABLE catalog_catalogimage ALTER COLUMN embedding TYPE vector(512)")

    errors = check_pgvector(databases=["default"])

    assert [e.id for e in errors] == ["catalog.E002"]
    assert "vector(512)" in errors[0].msg and "vector(1280)" in errors[0].msg
