"""REVIMG_MEDIA_STORAGE and REVIMG_S3_*: a storage that cannot work refuses to start, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
S3 = {"REVIMG_MEDIA_STORAGE": "s3", "REVIMG_S3_BUCKET": "pictures"}


def start(tmp_path, **env):
    """Load the settings in a fresh process with env; (exit status, what it printed)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REVIMG_S3_", "REVIMG_MEDIA_STORAGE"))}
    code = "import revimg.settings as s; print(s.STORAGES['default'])"
    finished = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "REVIMG_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return finished.returncode, finished.stdout + finished.stderr


@pytest.mark.parametrize(
    "env, refusal",
    [
        ({"REVIMG_MEDIA_STORAGE": "s3"}, "REVIMG_MEDIA_STORAGE=s3 needs REVIMG_S3_BUCKET"),
        ({"REVIMG_MEDIA_STORAGE": "ftp"}, "REVIMG_MEDIA_STORAGE must be one of local, s3, got 'ftp'"),
        ({**S3, "REVIMG_S3_SIGNED_URLS": "sometimes"}, "REVIMG_S3_SIGNED_URLS must be a boolean"),
        ({**S3, "REVIMG_S3_URL_EXPIRY_SECONDS": "0"}, "REVIMG_S3_URL_EXPIRY_SECONDS must be at least 1"),
        ({**S3, "REVIMG_S3_ENDPOINT_URL": "minio:9000"}, "REVIMG_S3_ENDPOINT_URL must be an http(s) URL"),
        (
            {**S3, "REVIMG_S3_PUBLIC_URL": "https://cdn.example.org"},
            "REVIMG_S3_PUBLIC_URL serves public URLs: set REVIMG_S3_SIGNED_URLS=false",
        ),
    ],
)
def test_a_storage_that_cannot_work_refuses_to_start(tmp_path, env, refusal):
    status, output = start(tmp_path, **env)

    assert status != 0
    assert f"ImproperlyConfigured: {refusal}" in output


def test_the_local_folder_is_the_default(tmp_path):
    status, output = start(tmp_path)

    assert status == 0 and "FileSystemStorage" in output and "'allow_overwrite': True" in output


def test_s3_settings_reach_the_storage(tmp_path):
    status, output = start(
        tmp_path,
        **S3,
        REVIMG_S3_PREFIX="/revimg/media/",
        REVIMG_S3_REGION="eu-central-1",
        REVIMG_S3_SIGNED_URLS="false",
        REVIMG_S3_PUBLIC_URL="https://cdn.example.org/pics",
    )

    assert status == 0, output
    for expected in (
        "'bucket_name': 'pictures'",
        "'location': 'revimg/media'",
        "'region_name': 'eu-central-1'",
        "'querystring_auth': False",
        "'custom_domain': 'cdn.example.org/pics'",
        "'url_protocol': 'https:'",
    ):
        assert expected in output
