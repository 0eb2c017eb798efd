"""import_images killed for real (SIGKILL) in the middle of its batches, with the HNSW index dropped for
the load, and run again: the catalog is what one uninterrupted import makes, and the index is back.

The import runs as a child process on pytest's test database (the test is transactional, so both
processes see committed rows); it is killed once some batches are committed and the index is gone.
"""

import io
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from catalog import hnswbuild
from catalog.models import CatalogImage
from catalog.store import content_hash
from tests.catalog_factories import picture_bytes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PICTURES = 320  # ten batches: time enough to land the kill between two
DEADLINE_SECONDS = 300  # a bound for a broken import, not a measurement


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    for number in range(PICTURES):
        label = f"class_{number % 4}"
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{number}.jpg").write_bytes(picture_bytes(number, size=(40 + number % 50, 40)))
    return root


def expected_catalog(folder):
    return {
        (content_hash(path.read_bytes()), path.parent.name.replace("_", " ")) for path in folder.glob("*/*")
    }


def catalog_contents():
    return {
        (image.sha256, image.wikidata_class.label)
        for image in CatalogImage.objects.select_related("wikidata_class")
    }


def start_import(folder, media_root, log_path):
    env = dict(
        os.environ,
        REVIMG_DATA_DIR=str(django_settings.REVIMG_DATA_DIR),
        REVIMG_DB_NAME=connection.settings_dict["NAME"],
        REVIMG_MEDIA_ROOT=str(media_root),
        REVIMG_IMPORT_INDEX_AFTER_ROWS="1",
    )
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "manage.py", "import_images", str(folder), "--no-progress"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=django_settings.BASE_DIR,
        )


def wait_for(condition, child, log_path):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert child.poll() is None, f"the import ended before the kill:\n{log_path.read_text()}"
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_an_import_killed_mid_load_and_run_again_gives_the_whole_catalog_and_its_index(
    folder, settings, tmp_path
):
    log_path = tmp_path / "import.log"
    child = start_import(folder, settings.MEDIA_ROOT, log_path)
    try:
        wait_for(
            lambda: hnswbuild.index_state() == "missing" and CatalogImage.objects.count() >= 64,
            child,
            log_path,
        )
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(DEADLINE_SECONDS)
    killed_at = CatalogImage.objects.count()
    assert 64 <= killed_at < PICTURES and hnswbuild.index_state() == "missing"

    out = io.StringIO()
    call_command("import_images", str(folder), "--no-progress", stdout=out, stderr=io.StringIO())

    assert f"{PICTURES - killed_at} created, {killed_at} skipped" in out.getvalue()
    assert catalog_contents() == expected_catalog(folder)
    assert not CatalogImage.objects.filter(embedding=None).exists()
    assert hnswbuild.index_state() == "valid"
    referenced = {n for image in CatalogImage.objects.all() for n in (image.file.name, image.thumbnail.name)}
    on_disk = {str(p.relative_to(settings.MEDIA_ROOT)) for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()}
    assert on_disk == referenced
