import os
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
