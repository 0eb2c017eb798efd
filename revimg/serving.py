"""What the app server (gunicorn.conf.py) does around the Django app: how many workers, the embedded
database's lifetime, and a warm model in every worker before it takes a request.

The gunicorn master reads this before any worker exists, so it may only use the environment and the
settings module, never a database connection it would hand down to forked workers.
"""

import os
import subprocess
import sys
from pathlib import Path

from catalog.embedding import usable_cores
from revimg.env import env_int

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")


def web_workers():
    """REVIMG_WEB_WORKERS, default one per core (searches are CPU-bound)."""
    return env_int("REVIMG_WEB_WORKERS", usable_cores(), minimum=1)


def embed_threads_per_worker(workers):
    """The cores shared out between the workers: more model threads would only fight over them."""
    return max(1, usable_cores() // workers)


def pid_file():
    from django.conf import settings

    return Path(settings.REVIMG_DATA_DIR) / "gunicorn.pid"


def before_workers_start():
    """In the master, once: metrics shared by the workers, the embedded database, the model's file.

    The database started here belongs to the master, which outlives every worker: a worker that is killed
    or recycled never takes it down, and workers starting together find it already running.
    """
    from django.conf import settings

    from revimg import embedded_pg, metrics

    Path(settings.REVIMG_DATA_DIR).mkdir(parents=True, exist_ok=True)
    # One folder per running server: two servers sharing one would wipe each other's counts at start.
    metrics.prepare_multiprocess_dir(
        os.environ.get(metrics.MULTIPROC_ENV) or Path(settings.REVIMG_DATA_DIR) / "metrics"
    )
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "revimg.embedded_pg":
        embedded_pg.start_for_server(
            database["PGDATA"], database["USER"], database["NAME"], database["NETWORK"]
        )
    _export_model_once()


def _export_model_once():
    """On a fresh data dir, make the model's ONNX file before the workers start, in a child process: else
    every worker would import TensorFlow and export it at the same time, and the master, which forks
    them, must not hold TensorFlow's threads."""
    from catalog.embedding import Embedder

    if Embedder().onnx_cache_path.is_file():
        return
    load = "import django; django.setup(); from catalog.embedding import get_embedder; get_embedder().load()"
    subprocess.run([sys.executable, "-c", load], check=True, env=os.environ.copy())


def warm_up_worker():
    """In each worker, before its first request: load the model and run it once."""
    from PIL import Image

    from catalog.embedding import get_embedder

    get_embedder().embed([Image.new("RGB", (224, 224))])


def worker_exited(pid):
    from revimg import metrics

    metrics.worker_exited(pid)
