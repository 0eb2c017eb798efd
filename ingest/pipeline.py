"""The crawl steps and the import of a local folder as recorded runs: what the management commands (and
starter_catalog) call.

Each function records an IngestRun and keeps going past one item's failure; transient failures leave the
item to the next run.
"""

from collections import deque
from contextlib import closing
from pathlib import Path

from catalog.http import crawler as http
from catalog.models import WikidataClass
from catalog.progress import no_progress

from . import crawl, local
from .folder_metadata import NO_METADATA
from .overlap import AHEAD, fetch_in_order
from .runs import recorded_run


def run_classes(limit, dump_path=None, refresh=False, progress=no_progress):
    """Fetch the top classes; returns (class ids best first, RunRecorder)."""
    with recorded_run("classes", limit=limit, dump=str(dump_path or ""), refresh=refresh) as recorder:
        ids = crawl.crawl_classes(limit, dump_path, recorder, progress, refresh)
    return ids, recorder


def catalog_class_ids(limit=None):
    """Classes from Wikidata already in the catalog, most instances first."""
    classes = WikidataClass.objects.filter(qid__isnull=False).order_by("-instance_count", "qid")
    ids = list(classes.values_list("id", flat=True))
    return ids[:limit] if limit else ids


def run_images(class_ids, per_class=1, retry_failed=False, progress=no_progress, embed=False, ahead=AHEAD):
    """Plan the images of the classes and fetch every pending one, and the spares that stand in for those
    that prove unusable, embedding each as it is stored when embed; returns the RunRecorder.

    Downloads run up to `ahead` images before the one being stored (ingest.overlap; 0: one at a time), and a
    class is planned when its first image is due, so its requests go out while the images before download."""
    with recorded_run("images", classes=len(class_ids), per_class=per_class) as recorder:
        if retry_failed:
            crawl.retry_failed(class_ids)
        recorder.set_total(0)
        replacements = deque()
        source_ids = _planned_then_pending(class_ids, per_class, replacements, recorder, progress)
        while source_ids is not None:
            with closing(fetch_in_order(source_ids, embed, ahead)) as fetched:
                for source_id, outcome, detail in fetched:
                    more = _count(source_id, outcome, detail, recorder)
                    recorder.set_total(recorder.run.total + len(more))
                    replacements.extend(more)
            # Spares promoted after the last image was handed out get a round of their own.
            source_ids = _drain(replacements) if replacements else None
    return recorder


def _planned_then_pending(class_ids, per_class, replacements, recorder, progress):
    """Each class planned in turn, then its images still to fetch; the spares promoted meanwhile first."""
    for class_id in progress(class_ids, "classes"):
        try:
            crawl.plan_images(class_id, per_class)
        except http.HTTPError as exc:  # the class stays unplanned: the next run asks again
            recorder.failed(f"class {class_id}", exc)
        pending = list(crawl.pending_sources([class_id]).values_list("id", flat=True))
        recorder.set_total(recorder.run.total + len(pending))
        for source_id in pending:
            yield from _drain(replacements)
            yield source_id
    yield from _drain(replacements)


def _drain(ids):
    while ids:
        yield ids.popleft()


def _count(source_id, outcome, detail, recorder):
    """Count a fetch's outcome; returns the ids of the spares that stand in for the image when it gave its
    class no picture."""
    if outcome == "pending":
        recorder.failed(f"image source {source_id}", f"{detail} (left to fetch on the next run)")
        return []
    if outcome == "created":
        recorder.created()
        return []
    if outcome == "skipped":
        recorder.skipped()
    else:
        recorder.failed(f"image source {source_id}", detail)
    return _replacements(source_id, recorder)


def _replacements(source_id, recorder):
    try:
        return crawl.replacements(source_id)
    except http.HTTPError as exc:  # asking for more instances failed: the next run tops the class up
        recorder.failed(f"image source {source_id}", f"no replacement: {exc}")
        return []


def run_embeddings(batch_size=16, progress=no_progress):
    with recorded_run("embeddings", batch_size=batch_size) as recorder:
        crawl.embed_images(batch_size=batch_size, recorder=recorder, progress=progress)
    return recorder


def run_crawl(classes, per_class=1, dump_path=None, refresh=False, embed=True, progress=no_progress):
    """The whole crawl: classes, images (embedded as they are stored), then the embedding of any image still
    without a vector; returns the three recorders (embeddings may be None)."""
    ids, class_run = run_classes(classes, dump_path, refresh, progress)
    image_run = run_images(ids, per_class, progress=progress, embed=embed)
    embed_run = run_embeddings(progress=progress) if embed else None
    return class_run, image_run, embed_run


def run_import(folder, metadata=NO_METADATA, progress=no_progress):
    """Import a local folder (ingest.local) with metadata, recorded as a run of kind "import"; returns its
    ImportSummary. A folder that is not there is refused before any run is recorded."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a directory")
    with recorded_run("import", directory=str(folder.resolve()), **metadata.given()) as recorder:
        summary = local.import_folder(folder, metadata, progress)
        recorder.set_total(summary.created + summary.skipped + summary.failed)
        recorder.created(summary.created)
        recorder.skipped(summary.skipped)
        for path, reason in summary.failures:
            recorder.failed(path, reason)
        recorder.run.summary = str(summary)
    return summary
