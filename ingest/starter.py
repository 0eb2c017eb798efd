"""The starter catalog `make run` builds: a crawl of a few hundred classes, or a local folder offline, then
a search for suspects so the admin's Suspects page has its first findings."""

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from catalog.http import crawler as http
from catalog.models import CatalogImage
from catalog.progress import no_progress

from . import folder_metadata, pipeline, upkeep
from .folder_metadata import METADATA_FILE, NO_METADATA, MetadataError

PROBE_TIMEOUT = 3.0
# The metadata of starter folders that cannot hold their own (../shared is read-only), one file per folder
# name, in the shape of an import's metadata file (ingest.folder_metadata).
STARTER_METADATA_DIR = Path(__file__).with_name("starter_metadata")


def default_starter_dir():
    if settings.REVIMG_STARTER_DIR:
        return Path(settings.REVIMG_STARTER_DIR)
    return settings.BASE_DIR.parent / "shared" / "datasets" / "caltech101-dev"


def build(say, progress=no_progress):
    """Fill an empty catalog; say(line) tells what happens. Never raises for lack of network."""
    count = CatalogImage.objects.count()
    if count:
        say(f"The catalog already has {count} images; starter catalog not needed.")
        say_stale(say)
        return
    url = settings.REVIMG_WIKIDATA_API_URL
    reason = http.unreachable_reason(url, PROBE_TIMEOUT)
    if reason is None:
        say(f"Crawling a starter catalog of {settings.REVIMG_STARTER_CLASSES} classes from Wikimedia...")
        try:
            runs = pipeline.run_crawl(settings.REVIMG_STARTER_CLASSES, per_class=1, progress=progress)
        except http.HTTPError as exc:
            say(f"The crawl stopped: {exc}. Run `python manage.py crawl` later to continue.")
        else:
            for kind, recorder in zip(("classes", "images", "embeddings"), runs, strict=True):
                say(f"{kind}: {recorder.summary()}")
    else:
        host = urlsplit(url).hostname
        say(f"Wikimedia is unreachable from here ({host}: {reason}); skipping the crawl.")
    if not CatalogImage.objects.exists():
        import_local(say, progress)
    if CatalogImage.objects.exists():
        find_suspects(say)


def say_stale(say):
    """Point at embed_images when the model changed since pictures were embedded: `make run` must not wait
    for a re-embedding (hours for a large catalog), and search answers from the older vectors meanwhile."""
    stale = CatalogImage.objects.stale().count()
    if stale:
        say(
            f"{stale} of them were embedded by an earlier model version; run `python manage.py embed_images`"
            " to embed them again (search answers meanwhile)."
        )


def import_local(say, progress=no_progress):
    folder = default_starter_dir()
    if not folder.is_dir():
        say(
            "To fill the catalog, import a folder of images (one subfolder per class): "
            "python manage.py import_images DIR"
        )
        return
    try:
        metadata = starter_metadata(folder)
    except MetadataError as exc:
        say(f"Not importing the starter folder: {exc}")
        return
    say(f"Importing the starter catalog from {folder} (one subfolder per class)...")
    summary = pipeline.run_import(folder, metadata, progress=progress)
    say(f"{summary.created} images imported, {summary.skipped} already there, {summary.failed} failed.")


def starter_metadata(folder):
    """The licence and credit of a starter folder: its own metadata file when it has one, else the one kept
    here for a folder of its name (the Caltech-101 subset), else none."""
    if (folder / METADATA_FILE).exists():
        return folder_metadata.of_folder(folder)
    kept = STARTER_METADATA_DIR / f"{folder.name}.json"
    return folder_metadata.read_file(kept) if kept.exists() else NO_METADATA


def find_suspects(say):
    """Score the new catalog's outliers and duplicates, recorded as upkeep's suspects job is."""
    say("Looking for suspects (outliers, duplicates) for the admin's Suspects page...")
    say(str(upkeep.run("suspects")))
