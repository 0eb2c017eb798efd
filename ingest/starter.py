"""The starter catalog `make run` builds: a crawl of a few hundred classes, or a local folder offline."""

from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from catalog.http import crawler as http
from catalog.models import CatalogImage
from catalog.progress import no_progress

from . import local, pipeline

PROBE_TIMEOUT = 3.0


def default_starter_dir():
    if settings.REVIMG_STARTER_DIR:
        return Path(settings.REVIMG_STARTER_DIR)
    return settings.BASE_DIR.parent / "shared" / "datasets" / "caltech101-dev"


def build(say, progress=no_progress):
    """Fill an empty catalog; say(line) tells what happens. Never raises for lack of network."""
    count = CatalogImage.objects.count()
    if count:
        say(f"The catalog already has {count} images; starter catalog not needed.")
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
            if CatalogImage.objects.exists():
                return
    else:
        host = urlsplit(url).hostname
        say(f"Wikimedia is unreachable from here ({host}: {reason}); skipping the crawl.")
    import_local(say, progress)


def import_local(say, progress=no_progress):
    folder = default_starter_dir()
    if not folder.is_dir():
        say(
            "To fill the catalog, import a folder of images (one subfolder per class): "
            "python manage.py import_images DIR"
        )
        return
    say(f"Importing the starter catalog from {folder} (one subfolder per class)...")
    summary = local.import_folder(folder, progress=progress)
    say(f"{summary.created} images imported, {summary.skipped} already there, {summary.failed} failed.")
