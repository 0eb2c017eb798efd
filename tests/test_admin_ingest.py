"""Ingest and embedding runs in the admin: what ran, how far it got, what failed and why."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import WikidataClass
from ingest.models import ImageSource, IngestRun

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:ingest_ingestrun_changelist")


@pytest.fixture
def runs():
    start = timezone.now() - timedelta(hours=1)
    finished = IngestRun.objects.create(
        kind="images",
        status=IngestRun.Status.FAILED,
        total=200,
        processed=50,
        created=40,
        skipped=5,
        failed=5,
        failures=[["File:Map.svg", "not a photo: SVG"], ["File:Gone.jpg", "404 Not Found"]],
        error="Wikimedia answered 503 five times",
        started_at=start,
        finished_at=start + timedelta(minutes=12, seconds=3),
    )
    running = IngestRun.objects.create(kind="embeddings", total=1000, processed=250)
    return finished, running


def test_run_list_shows_progress_and_outcome(admin_client, runs):
    response = admin_client.get(RUNS)

    assert response.status_code == 200
    assert "50 / 200 (25 %)" in response.text
    assert "250 / 1000 (25 %)" in response.text
    assert "0:12:03" in response.text and "still running" in response.text


def test_a_run_page_says_what_failed_and_why(admin_client, runs):
    failed, _ = runs

    response = admin_client.get(reverse("admin:ingest_ingestrun_change", args=[failed.pk]))

    assert response.status_code == 200
    assert "File:Map.svg" in response.text and "not a photo: SVG" in response.text
    assert "Wikimedia answered 503 five times" in response.text


def test_runs_are_filtered_by_status(admin_client, runs):
    response = admin_client.get(RUNS, {"status__exact": "failed"})

    assert [run.kind for run in response.context["cl"].result_list] == ["images"]


def test_failed_planned_images_can_be_queued_again(admin_client):
    wikidata_class = WikidataClass.objects.create(label="lighthouse", qid="Q39715")
    failed = ImageSource.objects.create(
        wikidata_class=wikidata_class,
        commons_file="Lighthouse.jpg",
        origin="p18",
        status=ImageSource.Status.FAILED,
        reason="timeout",
    )

    response = admin_client.post(
        reverse("admin:ingest_imagesource_changelist"),
        {"action": "fetch_again", "_selected_action": [failed.pk]},
        follow=True,
    )

    assert "1 planned image(s) will be fetched" in response.text
    failed.refresh_from_db()
    assert failed.status == ImageSource.Status.PENDING
