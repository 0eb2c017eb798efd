"""What the Dockerfile's build relies on, run here without an engine: serving needs no TensorFlow once the
model is converted (the image leaves the exporter out), and collecting static files writes no secret key
into the image."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from catalog.embedding import Embedder
from tests.deployment import ROOT, exporter_requirements

pytestmark = pytest.mark.slow

# Each module named on the command line cannot be imported, as in the image; then the model serves.
SERVE_WITHOUT = """
import sys
for name in sys.argv[1:]:
    sys.modules[name] = None
import django
django.setup()
from PIL import Image
from catalog.embedding import get_embedder
print(get_embedder().embed([Image.new("RGB", (224, 224))]).shape)
"""
LOAD = "import django; django.setup(); from catalog.embedding import get_embedder; get_embedder().load()"
MODULES = {"tensorflow-cpu": "tensorflow", "keras": "keras", "tf2onnx": "tf2onnx"}


def run_python(code, *args, **env):
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="revimg.settings", **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_image_leaves_out_exactly_the_model_exporter():
    names = sorted(line.split("==")[0] for line in exporter_requirements())
    assert names == sorted(MODULES)


def test_serving_needs_no_tensorflow_once_the_model_is_converted():
    data_dir = str(django_settings.REVIMG_DATA_DIR)
    if not Embedder(cache_dir=django_settings.REVIMG_MODEL_CACHE_DIR).onnx_cache_path.is_file():
        assert run_python(LOAD, REVIMG_DATA_DIR=data_dir).returncode == 0  # the build's conversion
    served = run_python(SERVE_WITHOUT, *MODULES.values(), REVIMG_DATA_DIR=data_dir)
    assert served.returncode == 0, served.stderr[-3000:]
    assert served.stdout.strip() == "(1, 1280)"


def test_collecting_static_files_writes_no_secret_key(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env=dict(os.environ, REVIMG_DATA_DIR=str(tmp_path), DJANGO_SECRET_KEY="build-only"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "admin" / "css" / "base.css.gz").is_file()
    assert not (tmp_path / "secret_key").exists()
