import os
import uuid
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CALTECH = SHARED / "datasets" / "caltech101-dev"
WIKIMEDIA_FIXTURES = SHARED / "fixtures" / "wikimedia"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """The read replicas of tests/replicas.py, made before pytest-django makes the test database."""
    from django.db import connections

    from tests.replicas import add_test_replicas

    add_test_replicas(connections)


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    """Every test writes its image files in a folder of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server (tests/s3_server.py), one for the session: its endpoint URL."""
    from tests.s3_server import MotoServerError, moto_server

    try:
        with moto_server() as endpoint:
            yield endpoint
    except MotoServerError as error:
        if os.environ.get("CI"):
            pytest.fail(f"{error}\nCI must run the S3 tests (requirements-dev.txt installs moto[server])")
        pytest.skip(str(error))


@pytest.fixture
def s3_media(moto_endpoint, settings, monkeypatch):
    """This test's pictures in a fresh bucket of its own on moto's server (signed URLs, a key prefix)."""
    from revimg.mediastorage import S3, s3_storage
    from tests.s3_server import REGION, S3Bucket, create_bucket, s3_env

    bucket = f"revimg-{uuid.uuid4().hex[:16]}"
    client = create_bucket(moto_endpoint, bucket)
    env = s3_env(moto_endpoint, bucket, prefix="pictures")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(name, env[name])
    # No profile or credentials file of the machine's user is read in place of the ones above.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.REVIMG_MEDIA_STORAGE = S3
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(bucket, prefix="pictures", endpoint_url=moto_endpoint, region=REGION),
    }
    return S3Bucket(moto_endpoint, bucket, "pictures", client)


@pytest.fixture
def caltech():
    if not CALTECH.is_dir():
        pytest.skip("../shared/datasets/caltech101-dev is absent")
    return CALTECH


@pytest.fixture
def wikimedia_fixtures():
    if not WIKIMEDIA_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures/wikimedia is absent")
    return WIKIMEDIA_FIXTURES


@pytest.fixture
def wiki(httpserver, wikimedia_fixtures, settings):
    """The stand-in Wikidata, Wikipedia and Commons (tests/crawl_server.py), every base URL pointed at it
    and the client made quick."""
    from catalog.http import crawler as http
    from tests.crawl_server import FakeWikimedia

    fake = FakeWikimedia(httpserver, wikimedia_fixtures)
    fake.configure(settings)
    http.reset_session()
    yield fake
    http.reset_session()


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser build); `make browser` installs it."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed, and CI must have it (make browser)")
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django then refuses database calls from it
    # unless told that this is deliberate (the test's own ORM calls are still synchronous).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
