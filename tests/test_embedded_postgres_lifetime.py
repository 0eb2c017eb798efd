"""The embedded PostgreSQL belongs to the server as a whole: no worker takes it down, however it ends;
processes starting together start it once; stopping the server (or `embedded_postgres stop`) stops it.

Each test runs on a data dir of its own, so it starts its own PostgreSQL (initdb included), with the
image model's cache linked in from the suite's data dir.
"""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from revimg.settings import BASE_DIR
from tests.app_server import gunicorn_server
from tests.data_dirs import DEADLINE, env_for, fresh_data_dir, manage, postmaster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="DATABASE_URL: no embedded PostgreSQL"),
]


@pytest.fixture
def bare_data_dir():
    with fresh_data_dir(share_model=False) as data:
        yield data


@pytest.fixture
def data_dir():
    with fresh_data_dir() as data:
        yield data


CONNECT_AND_WAIT = """
import sys, time, django
from pathlib import Path
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_postmaster_start_time()")
    print(cursor.fetchone()[0].isoformat(), flush=True)
go = Path(sys.argv[1])
end = time.monotonic() + 60
while not go.exists() and time.monotonic() < end:  # hold the server until every process has connected
    time.sleep(0.05)
"""


def test_processes_starting_together_start_the_database_once(data_dir, tmp_path):
    go = tmp_path / "all-connected"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CONNECT_AND_WAIT, str(go)],
            cwd=BASE_DIR,
            env=env_for(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    started = [process.stdout.readline().strip() for process in processes]
    go.touch()
    for process in processes:
        assert process.wait(DEADLINE) == 0, process.stderr.read()

    assert all(started) and len(set(started)) == 1  # one server, started once
    assert postmaster(data_dir) is None  # and stopped when the last of them left


def test_the_database_outlives_killed_and_recycled_workers_and_stops_with_the_server(bare_data_dir, tmp_path):
    # A fresh machine: no database, no model files. The server makes both, the model once for all workers.
    data_dir = bare_data_dir
    manage(data_dir, "migrate", "--no-input")
    assert postmaster(data_dir) is None  # migrate started it for itself, and stopped it

    with gunicorn_server(tmp_path, {"REVIMG_DATA_DIR": str(data_dir), "REVIMG_DB_NAME": "revimg"}) as server:
        database = postmaster(data_dir)
        first, second = server.wait_for_workers(2)
        os.kill(first, signal.SIGKILL)  # a crash
        os.kill(second, signal.SIGTERM)  # a recycle: the worker exits normally, running its exit handlers
        server.wait_for_workers(2, exclude={first, second})

        answers = [requests.get(server.url + "/healthz", timeout=10).status_code for _ in range(6)]
        assert answers == [200] * 6
        assert postmaster(data_dir) == database  # the same server throughout
        assert server.log.read_text().count("exporting the Keras model to ONNX") == 1
        master = psutil.Process(server.process.pid)
        server.process.terminate()
        server.process.wait(60)

    assert not master.is_running()
    end = time.monotonic() + 30
    while postmaster(data_dir) is not None and time.monotonic() < end:
        time.sleep(0.2)
    assert postmaster(data_dir) is None  # the server's end is the database's end


def kill_a_holder(data_dir):
    """A process that joined the server, killed outright (SIGKILL): it never leaves the list of holders."""
    holder = subprocess.Popen(
        [sys.executable, "-c", CONNECT_AND_WAIT, str(data_dir / "never")],
        cwd=BASE_DIR,
        env=env_for(data_dir),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip()
    holder.kill()
    holder.wait(30)


def test_embedded_postgres_stop_stops_a_database_left_running(data_dir):
    manage(data_dir, "migrate", "--no-input")
    kill_a_holder(data_dir)  # the server is left running with nobody to stop it
    assert postmaster(data_dir) is not None

    status = manage(data_dir, "embedded_postgres", "status").stdout
    stopped = manage(data_dir, "embedded_postgres", "stop").stdout

    assert status.startswith("running, pid") and stopped.startswith("stopped")
    assert postmaster(data_dir) is None


def test_make_stop_stops_the_server_then_its_database(data_dir, tmp_path):
    manage(data_dir, "migrate", "--no-input")
    env = {"REVIMG_DATA_DIR": str(data_dir), "REVIMG_DB_NAME": "revimg"}
    with gunicorn_server(tmp_path, env, pid_file=data_dir / "gunicorn.pid") as server:
        assert postmaster(data_dir) is not None
        # The README's stop command, as a person runs it in the checkout.
        stopping = subprocess.Popen(
            ["make", "stop"], cwd=BASE_DIR, env=env_for(data_dir), stdout=subprocess.PIPE, text=True
        )
        # This test started gunicorn, so it must reap it: until then the master lingers as a zombie, which
        # `make stop` would take for a server still running.
        assert server.process.wait(60) == 0  # a graceful stop
        out, _ = stopping.communicate(timeout=DEADLINE)

    assert stopping.returncode == 0 and "stopping gunicorn" in out
    assert postmaster(data_dir) is None


def test_a_holder_killed_outright_does_not_keep_the_database_running(data_dir):
    manage(data_dir, "migrate", "--no-input")
    kill_a_holder(data_dir)  # its pid stays in the list of holders

    manage(data_dir, "migrate", "--no-input")  # joins, then leaves as the last live holder

    assert postmaster(data_dir) is None
