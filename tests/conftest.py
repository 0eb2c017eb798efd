import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CALTECH = SHARED / "datasets" / "caltech101-dev"
WIKIMEDIA_FIXTURES = SHARED / "fixtures" / "wikimedia"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
