"""Data dirs of their own for tests that run their own embedded PostgreSQL (and the app on it).

Not under pytest's tmp_path: PostgreSQL runs as another user (when the tests run as root) and must
traverse every parent folder, which pytest keeps private (mode 0700, reset by every pytest run).
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings as django_settings

from revimg import embedded_pg
from revimg.settings import BASE_DIR

DEADLINE = 120  # seconds: a bound for a broken start, not a measurement


@contextlib.contextmanager
def fresh_data_dir(share_model=True):
    """A new, empty data dir; with share_model, the suite's image model files linked in (no export)."""
    data = Path(tempfile.mkdtemp(dir=django_settings.REVIMG_DATA_DIR, prefix="data-dir-test-"))
    if share_model:
        models = django_settings.REVIMG_DATA_DIR / "models"
        models.mkdir(parents=True, exist_ok=True)
        (data / "models").symlink_to(models)
    try:
        yield data
    finally:
        embedded_pg.stop(str(data / "postgres"))  # whatever a failed test left running
        shutil.rmtree(data, ignore_errors=True)


def env_for(data_dir):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REVIMG_DB_NAME")}
    return dict(env, REVIMG_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="revimg.settings")


def manage(data_dir, *args, env=None):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=dict(env_for(data_dir), **(env or {})),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=True,
    )


def postmaster(data_dir):
    return embedded_pg.running_pid(str(data_dir / "postgres"))
