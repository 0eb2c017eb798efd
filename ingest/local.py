"""Importing a local folder of images: each immediate subfolder is a class, each file in it an image."""

from dataclasses import dataclass, field
from pathlib import Path

from catalog import store
from catalog.imagefile import ImageError
from catalog.models import CatalogImage, WikidataClass

BATCH_SIZE = 32


@dataclass
class ImportSummary:
    created: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list = field(default_factory=list)  # (path, reason)

    def fail(self, path, reason):
        self.failed += 1
        self.failures.append((str(path), reason))


def class_label(folder):
    return folder.name.replace("_", " ").strip()


def image_files(root):
    """(class folder, file) pairs in a stable order; hidden files and folders are not ours to import."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a directory")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            yield folder, path


def import_folder(root, progress=None):
    """Store and embed every image under root; re-running imports nothing twice. Returns an ImportSummary."""
    summary = ImportSummary()
    files = list(image_files(root))
    classes = {}
    batch = []
    for folder, path in progress(files) if progress else files:
        if folder not in classes:
            classes[folder] = local_class(class_label(folder))
        candidate = _read(path, summary)
        if candidate is not None:
            batch.append((classes[folder], candidate))
        if len(batch) >= BATCH_SIZE:
            _store_batch(batch, summary)
            batch = []
    _store_batch(batch, summary)
    return summary


def local_class(label):
    wikidata_class, _ = WikidataClass.objects.get_or_create(qid=None, label=label)
    return wikidata_class


def _read(path, summary):
    try:
        data = path.read_bytes()
    except OSError as exc:
        summary.fail(path, f"cannot read: {exc.strerror or exc}")
        return None
    if CatalogImage.objects.filter(sha256=store.content_hash(data)).exists():
        summary.skipped += 1
        return None
    try:
        return store.prepare(
            data, origin=CatalogImage.Origin.LOCAL, origin_detail=str(path)[-255:], source_url=""
        )
    except ImageError as exc:
        summary.fail(path, exc.message)
        return None


def _store_batch(batch, summary):
    if not batch:
        return
    vectors = store.embed([candidate for _, candidate in batch])
    for (wikidata_class, candidate), vector in zip(batch, vectors, strict=True):
        _, created = store.save(wikidata_class, candidate, vector)
        if created:
            summary.created += 1
        else:
            summary.skipped += 1
