"""Starting revimg prints only what a person needs: no warning about static files not yet collected, no
narration of the model's conversion by tf2onnx, and no 404 for the icon browsers ask for."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from revimg.settings import BASE_DIR

# What tf2onnx says, at INFO, while it converts a model.
CONVERTER_NARRATION = (
    "Using tensorflow=",
    "Using opset",
    "values for constant folding",
    "Optimizing ONNX model",
    "After optimization",
)


def run_python(code, data_dir, timeout):
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(
        REVIMG_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="revimg.settings", PYTHONWARNINGS="default"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


@pytest.mark.django_db
def test_favicon_ico_leads_to_the_pages_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(icon.streaming_content)


def test_the_app_loads_without_a_warning_before_static_files_are_collected(tmp_path):
    run = run_python("import revimg.wsgi", tmp_path, timeout=120)

    assert not (tmp_path / "static").exists()
    assert run.stderr == ""


@pytest.mark.slow
def test_converting_the_model_prints_no_converter_narration(tmp_path):
    # The suite's converted weights are shared in (when there are) so that only the ONNX export runs.
    (tmp_path / "models").mkdir()
    for weights in django_settings.REVIMG_MODEL_CACHE_DIR.glob("*.keras"):
        (tmp_path / "models" / weights.name).symlink_to(weights)

    run = run_python(
        "import django; django.setup(); from catalog.embedding import get_embedder; get_embedder().load()",
        tmp_path,
        timeout=900,
    )

    output = run.stdout + run.stderr
    assert "exporting the Keras model to ONNX" in output  # the conversion did run
    assert list((tmp_path / "models").glob("*.onnx"))
    assert [line for line in output.splitlines() if any(said in line for said in CONVERTER_NARRATION)] == []
