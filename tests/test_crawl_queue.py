"""`manage.py crawl --queue` hands the crawl to the Celery workers; what it cannot hand over, it refuses."""

import pytest
from django.core.management import CommandError, call_command

from tests.app_server import free_loopback_port


@pytest.fixture(autouse=True)
def wikimedia_nowhere(settings):
    """Should a crawl start after all, it asks a closed loopback port, never the real Wikimedia."""
    closed = f"http://127.0.0.1:{free_loopback_port()}"
    settings.REVIMG_WIKIDATA_SPARQL_URL = closed + "/sparql"
    settings.REVIMG_WIKIDATA_API_URL = closed + "/w/api.php"
    settings.REVIMG_HTTP_RETRIES = 0


def test_queueing_a_crawl_without_a_broker_is_refused(settings):
    settings.CELERY_BROKER_URL = ""
    with pytest.raises(CommandError, match="--queue needs CELERY_BROKER_URL"):
        call_command("crawl", "--queue", "--classes", "3")


@pytest.mark.parametrize("option", [["--dump", "dump.json"], ["--refresh"], ["--no-embed"]])
def test_options_the_workers_cannot_honour_are_refused_with_queue(settings, option):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/13"
    with pytest.raises(CommandError, match="--queue takes only --classes and --per-class"):
        call_command("crawl", "--queue", *option)
