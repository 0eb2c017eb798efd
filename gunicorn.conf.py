"""gunicorn's settings for revimg: `gunicorn revimg.wsgi` run in this folder reads this file (`make run`).

Every knob is an environment variable, like the app's own settings (README, "Running in production").
The work of the hooks lives in revimg.serving; this file only says when it runs.
"""

# The gevent workers' cooperative I/O replaces the blocking one first, in the master, before anything else
# is imported: the per-thread state made before it (Django's database connections) would otherwise be
# shared by every request of a worker.
from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

from revimg import serving  # noqa: E402
from revimg.env import env_int  # noqa: E402

# Where to listen: "127.0.0.1:8000", "0.0.0.0:8000", "[::]:8000" or "unix:/run/revimg.sock".
bind = [os.environ.get("HOST") or "127.0.0.1:8000"]
workers = serving.web_workers()
# Read by the settings, so set before anything loads them: each worker's share of the cores for the model.
os.environ.setdefault("REVIMG_EMBED_THREADS", str(serving.embed_threads_per_worker(workers)))
# Each worker waits on many connections at once (gevent's cooperative I/O), so clients that send slowly, on
# purpose or on a bad link, hold a connection each and never a worker; the searches themselves still run
# one at a time per worker, since the model's CPU work does not yield. At most this many connections per
# worker: each may hold an upload being received (in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, on disk past it).
worker_class = "gevent"
worker_connections = env_int("REVIMG_WEB_CONNECTIONS", 100, minimum=1)
# Database connections are per greenlet: each worker keeps a few idle ones for its next requests
# (revimg/postgres).
os.environ.setdefault("REVIMG_DB_IDLE_CONNECTIONS", "4")
# A search takes tens of milliseconds; a minute covers a 20 MB upload on a slow link before the worker
# is declared stuck and replaced.
timeout = env_int("REVIMG_WEB_TIMEOUT", 60, minimum=1)
graceful_timeout = env_int("REVIMG_WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
# Recycle workers now and then so a slow leak in a library never grows without bound; the jitter keeps
# them from restarting all at once.
max_requests = env_int("REVIMG_WEB_MAX_REQUESTS", 5000, minimum=1)
max_requests_jitter = max_requests // 10
pidfile = str(serving.pid_file())
# The access log: one line per request, on stderr. The path without its query string, and the worker's
# pid (which process answered); never the request body.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %(p)s'
# gunicorn's runtime control socket sits at one path per user (~/.gunicorn), which two servers on one
# machine would fight over; nothing here uses it.
control_socket_disable = True
# Heartbeat files in memory, not on a possibly slow disk (a blocked write would look like a stuck worker).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def on_starting(server):
    serving.before_workers_start()


def post_worker_init(worker):
    serving.warm_up_worker()


def child_exit(server, worker):
    serving.worker_exited(worker.pid)
