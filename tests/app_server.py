"""The real app server for tests: gunicorn with the repository's gunicorn.conf.py, on a free loopback port.

The server runs in a process group of its own and is always stopped (SIGTERM, then SIGKILL) when the
test ends. Its pid file and metrics folder are the test's own, so a server run by hand is never touched.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_DEADLINE = 120  # seconds: a bound for a broken start, not a measurement


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    log: Path

    def workers(self):
        return [child.pid for child in psutil.Process(self.process.pid).children() if child.is_running()]

    def wait_for_workers(self, count, exclude=(), deadline=START_DEADLINE):
        """The pids of count live workers, none of them in exclude (replacements after a kill)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            pids = [pid for pid in self.workers() if pid not in exclude]
            if len(pids) >= count and self.ready():
                return pids
            time.sleep(0.2)
        raise AssertionError(
            f"no {count} fresh workers in {deadline} s; log:\n{self.log.read_text()[-3000:]}"
        )

    def ready(self):
        try:
            return requests.get(self.url + "/readyz", timeout=5).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # still starting (a busy machine is slow)
            return False


def _wait_until_ready(server, deadline):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if server.process.poll() is not None:
            raise AssertionError(
                f"gunicorn exited with {server.process.returncode}:\n{server.log.read_text()}"
            )
        if server.ready():
            return
        time.sleep(0.25)
    raise AssertionError(f"gunicorn not ready in {deadline} s:\n{server.log.read_text()[-3000:]}")


@contextlib.contextmanager
def gunicorn_server(tmp_path, env, workers=2, pid_file=None, command=(str(GUNICORN), "revimg.wsgi")):
    """Run `gunicorn revimg.wsgi` (or command, which starts it) in the repository with env added; yields an
    AppServer once /readyz is 200.

    Its pid file is in tmp_path unless pid_file says where (the data dir's, for `make stop`).
    """
    port = free_loopback_port()
    full_env = dict(
        os.environ,
        HOST=f"127.0.0.1:{port}",
        REVIMG_WEB_WORKERS=str(workers),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        **env,
    )
    log = tmp_path / "gunicorn.log"
    command = [*command, "--pid", str(pid_file or tmp_path / "gunicorn.pid")]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = AppServer(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_ready(server, START_DEADLINE)
        yield server
    finally:
        _stop(process)


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
