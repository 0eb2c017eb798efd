"""Upkeep jobs (ingest.upkeep): each does its work and leaves an IngestRun saying what; one failing does not
stop the others; two runs of one job at once do not both work; `manage.py upkeep` reports per job."""

import io
import os
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from catalog import curation
from catalog.embedding import MODEL_NAME, MODEL_VERSION
from catalog.models import CatalogImage, ClassStatistics, Suspect, WikidataClass
from ingest import upkeep
from ingest.models import ClassCrawl, IngestRun
from tests.catalog_factories import centre, make_catalog, make_class, make_image, near
from tests.crawl_server import server_error, standard_scenario

pytestmark = pytest.mark.django_db

TWO_HOURS_AGO = time.time() - 2 * 3600


def stray_file(media, name):
    """A file no row refers to, older than the sweep's grace."""
    path = media / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left by a killed import")
    os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    return path


def wait_until_released(key, seconds=30):
    """The server drops a closed connection's locks a moment after the close: wait for it, boundedly."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
                [upkeep.UPKEEP_LOCK_SPACE, key],
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)
    pytest.fail("the closed connection's lock was never released")


def upkeep_command(*args):
    out = io.StringIO()
    call_command("upkeep", *args, stdout=out)
    return out.getvalue()


def the_run(job):
    return IngestRun.objects.get(kind=f"upkeep:{job}")


def test_the_suspects_job_stores_the_suspects_and_records_how_many(settings):
    catalog = make_catalog(classes=3, per_class=8)
    first, second = list(catalog)[:2]
    stray = make_image(first, 500, vector=near(centre(second.pk), 500))

    outcome = upkeep.run("suspects")

    assert Suspect.objects.filter(kind="outlier").first().image == stray
    run = the_run("suspects")
    assert (outcome.status, outcome.run_id, run.status) == ("done", run.id, "done")
    assert run.created == Suspect.objects.count() > 0
    assert run.summary.startswith(f"{Suspect.objects.filter(kind='outlier').count()} outliers")


def test_the_class_stats_job_recomputes_only_the_stale_classes():
    catalog = make_catalog(classes=3, per_class=4)
    classes = list(catalog)
    upkeep.run("class_stats")
    computed = dict(ClassStatistics.objects.values_list("wikidata_class", "computed_at"))
    make_image(classes[0], 77)  # one class changed
    curation.exclude([image.pk for image in catalog[classes[1]]], "all of them wrong")  # one emptied

    outcome = upkeep.run("class_stats")

    assert outcome.summary == "1 classes recomputed, 1 without searchable images any more"
    assert ClassStatistics.objects.get(wikidata_class=classes[0]).image_count == 5
    assert not ClassStatistics.objects.filter(wikidata_class=classes[1]).exists()
    unchanged = ClassStatistics.objects.get(wikidata_class=classes[2])
    assert unchanged.computed_at == computed[classes[2].pk]
    assert upkeep.run("class_stats").summary == "0 classes recomputed, 0 without searchable images any more"


def test_stale_statistics_are_those_whose_images_changed_since():
    catalog = make_catalog(classes=2, per_class=3)
    first, second = catalog
    assert set(WikidataClass.objects.stale_statistics()) == {first, second}  # no rows yet
    upkeep.run("class_stats")
    assert not WikidataClass.objects.stale_statistics().exists()
    make_image(second, 99)
    assert list(WikidataClass.objects.stale_statistics()) == [second]


def made_by_an_older_model(image):
    CatalogImage.objects.filter(pk=image.pk).update(embedding_version="an-older-version")
    return image


@pytest.mark.slow  # the real image model
def test_the_reembed_job_replaces_other_models_vectors_in_bounded_runs(monkeypatch):
    lighthouse = make_class("lighthouse", qid="Q39715")
    stale = [made_by_an_older_model(make_image(lighthouse, seed)) for seed in range(4)]
    current = make_image(lighthouse, 10)
    monkeypatch.setattr(upkeep, "REEMBED_BATCH", 2)
    monkeypatch.setattr(upkeep, "REEMBED_PER_RUN", 3)

    first = upkeep.run("reembed")

    assert first.summary == f"3 re-embedded with {MODEL_NAME} {MODEL_VERSION}, 0 failed, 1 stale left"
    assert list(CatalogImage.objects.stale()) == [stale[3]]  # in id order
    redone = CatalogImage.objects.get(pk=stale[0].pk)
    assert (redone.embedding_model, redone.embedding_version) == (MODEL_NAME, MODEL_VERSION)
    assert CatalogImage.objects.get(pk=current.pk).embedded_at == current.embedded_at  # left alone
    second = upkeep.run("reembed")
    assert second.summary.endswith("0 stale left")
    assert not CatalogImage.objects.stale().exists()


def test_a_stale_image_whose_file_is_gone_is_recorded_failed(settings):
    image = made_by_an_older_model(make_image(make_class("lighthouse"), 1))
    store_path = settings.MEDIA_ROOT / image.file.name
    store_path.unlink()

    outcome = upkeep.run("reembed")

    run = the_run("reembed")
    assert (run.status, run.failed, run.created) == ("done", 1, 0)
    assert run.failures[0][0] == f"image {image.pk}"
    assert "1 failed, 1 stale left" in outcome.summary


def test_the_sweep_job_removes_orphans_and_records_it(settings):
    kept = make_image(make_class("lighthouse"), 1)
    orphan = stray_file(settings.MEDIA_ROOT, "images/ab/" + "ab" * 32 + ".jpg")

    outcome = upkeep.run("sweep_media")

    assert not orphan.exists()
    assert (settings.MEDIA_ROOT / kept.file.name).exists()
    run = the_run("sweep_media")
    assert (run.processed, run.failed, run.status) == (1, 0, "done")
    assert outcome.summary == run.summary == "1 files removed, 23 bytes freed"


def test_a_job_already_running_elsewhere_is_skipped_not_run_twice(settings):
    orphan = stray_file(settings.MEDIA_ROOT, "images/ab/" + "ab" * 32 + ".jpg")
    other_process = connections.create_connection("default")
    try:
        with other_process.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s, %s)", [upkeep.UPKEEP_LOCK_SPACE, upkeep.lock_key("sweep_media")]
            )
        outcome = upkeep.run("sweep_media")
        other_job = upkeep.run("class_stats")  # another job's lock is another lock
    finally:
        other_process.close()  # its locks go with its connection

    assert (outcome.status, outcome.summary) == (
        "skipped",
        "another upkeep:sweep_media run is still running",
    )
    assert orphan.exists()
    assert not IngestRun.objects.filter(kind="upkeep:sweep_media").exists()
    assert other_job.status == "done"
    wait_until_released(upkeep.lock_key("sweep_media"))
    assert upkeep.run("sweep_media").status == "done"
    assert not orphan.exists()


@pytest.fixture
def wikidata_down(wiki):
    """A crawled class, and a Wikidata that answers every request with 503 from now on."""
    book = make_class("book", qid="Q571")
    standard_scenario(wiki)
    ClassCrawl.objects.create(wikidata_class=book, planned_at=timezone.now(), per_class=1)
    wiki.fault("wikidata", server_error(503), times=100)
    return wiki


def test_a_failing_job_is_recorded_failed_and_the_others_still_run(wikidata_down, settings):
    orphan = stray_file(settings.MEDIA_ROOT, "images/ab/" + "ab" * 32 + ".jpg")

    outcomes = upkeep.run_all(["recrawl", "sweep_media"])

    assert [(o.job, o.status) for o in outcomes] == [("recrawl", "failed"), ("sweep_media", "done")]
    failed = the_run("recrawl")
    assert failed.status == "failed" and "TransientHTTPError" in failed.error
    assert outcomes[0].run_id == failed.id and "TransientHTTPError" in outcomes[0].summary
    assert not orphan.exists()


def test_the_command_prints_a_line_per_job_it_was_asked_for(settings):
    stray_file(settings.MEDIA_ROOT, "thumbs/ab/" + "ab" * 32 + ".jpg")
    make_catalog(classes=1, per_class=2)

    out = upkeep_command("--only", "sweep_media", "--only", "class_stats")

    lines = out.splitlines()
    class_run, sweep_run = the_run("class_stats"), the_run("sweep_media")
    assert lines == [
        f"class_stats: done: 1 classes recomputed, 0 without searchable images any more "
        f"(IngestRun #{class_run.id})",
        f"sweep_media: done: 1 files removed, 23 bytes freed (IngestRun #{sweep_run.id})",
    ]
    assert set(IngestRun.objects.values_list("kind", flat=True)) == {
        "upkeep:class_stats",
        "upkeep:sweep_media",
    }


def test_the_command_fails_when_a_job_failed_after_running_the_others(wikidata_down, settings):
    stray_file(settings.MEDIA_ROOT, "images/ab/" + "ab" * 32 + ".jpg")
    out = io.StringIO()

    with pytest.raises(CommandError, match="upkeep failed: recrawl") as raised:
        call_command("upkeep", "--only", "recrawl", "--only", "sweep_media", stdout=out)

    assert raised.value.returncode == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("recrawl: failed: TransientHTTPError")
    assert lines[1].startswith("sweep_media: done: 1 files removed")


def test_the_command_runs_every_job_by_default(settings):
    outcomes = {line.split(":")[0] for line in upkeep_command().splitlines()}

    assert outcomes == set(upkeep.JOBS)
    assert IngestRun.objects.filter(status="done").count() == len(upkeep.JOBS)


def test_the_command_refuses_an_unknown_job():
    with pytest.raises(CommandError, match="invalid choice: 'everything'"):
        upkeep_command("--only", "everything")


def test_each_job_has_a_celery_task_that_runs_it_and_says_how_it_went(settings):
    from ingest.tasks import UPKEEP_TASKS

    stray_file(settings.MEDIA_ROOT, "images/ab/" + "ab" * 32 + ".jpg")

    answer = UPKEEP_TASKS["sweep_media"].apply().get()

    assert set(UPKEEP_TASKS) == set(upkeep.JOBS)
    assert (
        answer
        == f"sweep_media: done: 1 files removed, 23 bytes freed (IngestRun #{the_run('sweep_media').id})"
    )


def test_an_upkeep_run_shows_its_summary_in_the_admin(admin_client, settings):
    stray_file(settings.MEDIA_ROOT, "images/ab/" + "ab" * 32 + ".jpg")
    run_id = upkeep.run("sweep_media").run_id

    page = admin_client.get(reverse("admin:ingest_ingestrun_change", args=[run_id]))

    assert page.status_code == 200
    assert "upkeep:sweep_media" in page.content.decode()
    assert "1 files removed, 23 bytes freed" in page.content.decode()
