"""revimg runs on PostgreSQL 15+ with pgvector 0.7+, and `manage.py check` refuses anything older."""

import subprocess
import sys

import pytest
from django.db import connection

from catalog.checks import version_errors
from revimg.settings import BASE_DIR
from tests.services import postgres_or_skip

# The machine's own PostgreSQL 15, which has no pgvector (on loopback; trust authentication).
POSTGRES_15_WITHOUT_PGVECTOR = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.django_db
def test_the_embedded_server_is_recent_enough_for_the_checks():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int, extversion FROM pg_extension"
                       " WHERE extname = 'vector'")  # fmt: skip
        server_version_num, pgvector_version = cursor.fetchone()
    assert server_version_num >= 150000
    assert version_errors("default", server_version_num, pgvector_version) == []


@pytest.mark.parametrize(
    ("server_version_num", "pgvector_version", "error_id"),
    [
        (140012, "0.8.0", "catalog.E004"),
        (150000, None, "catalog.E001"),
        (150004, "0.6.2", "catalog.E005"),
        (170002, "0.5.1", "catalog.E005"),
    ],
)
def test_an_old_server_or_pgvector_is_refused_with_a_hint(server_version_num, pgvector_version, error_id):
    errors = version_errors("default", server_version_num, pgvector_version)

    assert [error.id for error in errors] == [error_id]
    assert "PostgreSQL 15+ with pgvector 0.7+" in errors[0].hint


@pytest.mark.parametrize("pgvector_version", ["0.7.0", "0.7.4", "0.8.1", "1.0.0-dev"])
def test_pgvector_from_0_7_on_is_accepted(pgvector_version):
    assert version_errors("default", 150000, pgvector_version) == []


def test_a_database_url_to_a_postgresql_without_pgvector_fails_the_checks(tmp_path):
    url = postgres_or_skip(POSTGRES_15_WITHOUT_PGVECTOR)
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "REVIMG_DATA_DIR": str(tmp_path)}

    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert checked.returncode != 0
    assert "catalog.E001" in checked.stderr
    assert "Database 'default' has no pgvector extension available." in checked.stderr
