"""Upkeep: the jobs that keep the catalog in shape, run by Celery beat on a schedule (revimg.celery,
settings.REVIMG_UPKEEP_HOURS) or all at once by `manage.py upkeep`.

- suspects: score outliers and duplicates again (catalog.suspects);
- class_stats: recompute the class statistics that are stale (WikidataClass.objects.stale_statistics());
- reembed: embed again, in bounded batches, the vectors another model made (CatalogImage.objects.stale());
- recrawl: ask Wikidata which crawled classes' items changed since they were read, and crawl those again;
- sweep_media: remove media files no row refers to (catalog.sweep).

Each run of a job is an IngestRun of kind "upkeep:<job>" with its counts, failures and a summary line. A job
holds an advisory lock while it runs, so a second run of the same job meanwhile (beat's next tick on a slow
job, the command beside a worker) skips, saying so, instead of doing the work twice.
"""

import zlib
from dataclasses import dataclass

from catalog import classstats, suspects, sweep
from catalog.embedding import MODEL_NAME, MODEL_VERSION
from catalog.http import crawler as http
from catalog.models import CatalogImage

from . import crawl, pipeline, wikidata
from .locks import advisory_lock
from .models import ClassCrawl, IngestRun
from .runs import recorded_run

# The first key of the advisory locks that keep a job to one run at a time (the second names the job).
UPKEEP_LOCK_SPACE = 7_304_002
# Re-embedding: images per model call, and per run (a model change on a big catalog is caught up over a
# few runs rather than in one that holds the worker for hours).
REEMBED_BATCH = 32
REEMBED_PER_RUN = 10_000


@dataclass
class Outcome:
    job: str
    status: str  # done, failed or skipped
    summary: str
    run_id: int | None = None  # the IngestRun, when the job ran

    def __str__(self):
        where = f" (IngestRun #{self.run_id})" if self.run_id else ""
        return f"{self.job}: {self.status}: {self.summary}{where}"


def run(job):
    """Run one job now, recorded; an Outcome done or skipped. A job that fails is recorded failed and its
    exception propagates."""
    with advisory_lock(UPKEEP_LOCK_SPACE, lock_key(job)) as got:
        if not got:
            return Outcome(job, "skipped", f"another upkeep:{job} run is still running")
        with recorded_run(f"upkeep:{job}") as recorder:
            recorder.run.summary = JOBS[job](recorder)
        return Outcome(job, "done", recorder.run.summary, recorder.run.id)


def lock_key(job):
    """The second key of a job's advisory lock: the same in every process and release."""
    return zlib.crc32(job.encode()) & 0x7FFFFFFF


def run_all(jobs):
    """Run the jobs one after the other; one that fails does not stop the others. Their Outcomes."""
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(run(job))
        except Exception as exc:  # recorded on its IngestRun already; the other jobs still run
            outcomes.append(Outcome(job, "failed", f"{type(exc).__name__}: {exc}", _last_run_id(job)))
    return outcomes


def _last_run_id(job):
    runs = IngestRun.objects.filter(kind=f"upkeep:{job}").order_by("-started_at", "-id")
    return runs.values_list("id", flat=True).first()


# --- the jobs: each takes its RunRecorder and returns its summary line -------------------------------------


def find_suspects(recorder):
    summary = suspects.find_suspects()
    recorder.created(summary.outliers + summary.duplicates)
    return str(summary)


def refresh_class_stats(recorder):
    stale = classstats.stale_classes()
    recorder.set_total(len(stale))
    for class_id, fingerprint in stale:
        classstats.refresh_class(class_id, fingerprint)
        recorder.done()
    emptied = sum(fingerprint is None for _, fingerprint in stale)
    return f"{len(stale) - emptied} classes recomputed, {emptied} without searchable images any more"


def reembed(recorder):
    """Embed again, batch by batch in id order, the images whose vector another model (or version) made:
    REEMBED_BATCH at a time, up to REEMBED_PER_RUN in a run."""
    batch_size, per_run = REEMBED_BATCH, REEMBED_PER_RUN
    stale = CatalogImage.objects.stale().order_by("id")
    recorder.set_total(min(stale.count(), per_run))
    after = 0
    while recorder.run.processed < per_run:
        room = per_run - recorder.run.processed
        ids = list(stale.filter(id__gt=after).values_list("id", flat=True)[: min(batch_size, room)])
        if not ids:
            break
        crawl.embed_batch(ids, recorder)
        after = ids[-1]
    left = stale.count()
    return (
        f"{recorder.run.created} re-embedded with {MODEL_NAME} {MODEL_VERSION}, {recorder.run.failed} failed, "
        f"{left} stale left"
    )


def sweep_media(recorder):
    summary = sweep.sweep_media(sweep.DEFAULT_GRACE)
    recorder.done(len(summary.removed))
    recorder.skipped(len(summary.kept))
    for name, why in summary.failed:
        recorder.failed(name, why)
    return str(summary)


def recrawl(recorder):
    """Crawl again the classes whose Wikidata item has another revision than the one last read: their
    label, description and picture, and their images planned again, then fetched and embedded.

    Classes read before revisions were kept have none: they are crawled again once, which records it.
    """
    planned = ClassCrawl.objects.planned()
    recorder.set_total(planned.count())
    changed = []
    for batch in _batches(planned, wikidata.ENTITIES_PER_REQUEST):
        changed += _changed(batch, recorder)
    for state in changed:
        try:
            crawl.plan_images(state.wikidata_class_id, state.per_class, ask_again=True)
            recorder.created()
        except http.HTTPError as exc:
            recorder.failed(state.wikidata_class.qid, exc)
    if not changed:
        return f"none of {recorder.run.total} crawled classes changed on Wikidata"
    images = pipeline.run_images([state.wikidata_class_id for state in changed])
    embeddings = pipeline.run_embeddings()
    return (
        f"{recorder.run.created} of {recorder.run.total} crawled classes changed on Wikidata and were crawled "
        f"again; images: {images.summary()}; embeddings: {embeddings.summary()}"
    )


def _batches(planned, size):
    """The planned classes with their class row, size at a time in id order, never all held at once."""
    rows = planned.select_related("wikidata_class").order_by("id")
    after = 0
    while batch := list(rows.filter(id__gt=after)[:size]):
        yield batch
        after = batch[-1].id


def _changed(batch, recorder):
    """The crawl states of this batch whose item has another revision now (one request for the batch)."""
    current = wikidata.revisions([state.wikidata_class.qid for state in batch])
    changed = []
    for state in batch:
        revision = current.get(state.wikidata_class.qid)
        if revision is None:
            recorder.failed(state.wikidata_class.qid, "deleted or missing on Wikidata")
        elif revision == state.wikidata_class.wikidata_revision:
            recorder.skipped()
        else:
            changed.append(state)
    return changed


JOBS = {
    "suspects": find_suspects,
    "class_stats": refresh_class_stats,
    "reembed": reembed,
    "recrawl": recrawl,
    "sweep_media": sweep_media,
}
