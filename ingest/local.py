"""Importing a local folder of images: each immediate subfolder is a class, each file in it an image."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from django.db import transaction

from catalog import classstats, hnswbuild, store
from catalog.embedding import INPUT_SIZE, get_embedder
from catalog.imagefile import ImageError, preprocess
from catalog.models import CatalogImage, WikidataClass
from catalog.progress import no_progress

from .folder_metadata import NO_METADATA

BATCH_SIZE = 32
# Two decoding threads: decoding costs a fraction of the model's time, so two keep the model fed while
# its own threads get most of the CPU.
DECODE_THREADS = 2


@dataclass
class ImportSummary:
    created: int = 0
    skipped: int = 0
    licensed: int = 0  # skipped ones stored earlier without a licence, given the folder's now
    failed: int = 0
    failures: list = field(default_factory=list)  # (path, reason)

    def seen(self):
        return self.created + self.skipped + self.failed

    def fail(self, path, reason):
        self.failed += 1
        self.failures.append((str(path), reason))

    def __str__(self):
        line = (
            f"{self.created} created, {self.skipped} skipped (already in the catalog), {self.failed} failed"
        )
        if self.licensed:
            line += f"; {self.licensed} of the skipped given the folder's licence"
        return line


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


def import_folder(root, metadata=NO_METADATA, progress=no_progress):
    """Store and embed every image under root, each with metadata (a FolderMetadata); re-running imports
    nothing twice, but gives metadata's licence to the pictures stored earlier without one. Returns an
    ImportSummary.

    Three stages overlap: threads decode and preprocess the next batch and make its thumbnails and
    perceptual hashes (Pillow releases the GIL), one thread runs the model on the batch before it (ONNX
    Runtime releases it too), and this thread stores the batch before that, its rows in one COPY and one
    commit, so the database connection stays in the thread that owns it. A large import into a smaller
    catalog builds the HNSW index once at the end (catalog.hnswbuild).
    """
    summary = ImportSummary()
    files = list(image_files(root))
    classes = {}  # label -> the class row, once one of its images is stored
    embedder = get_embedder()
    with (
        hnswbuild.loading(len(files)) as load,
        ThreadPoolExecutor(DECODE_THREADS) as decoders,
        ThreadPoolExecutor(1) as model,
    ):
        pending = None
        for chunk in _chunks(progress(files), BATCH_SIZE):
            fresh = _unseen(_read_all(chunk, summary), metadata, summary)
            prepared = decoders.map(partial(_prepare, metadata=metadata), fresh)
            batch = [item for item in prepared if _kept(item, summary)]
            vectors = model.submit(embedder.embed_batch, _inputs(batch))
            _store_batch(pending, classes, summary)
            load.progress(summary.created, summary.seen())
            pending = (batch, vectors)
        _store_batch(pending, classes, summary)
    # Searches find the classes' statistics ready instead of computing them on first use.
    classstats.refresh([wikidata_class.pk for wikidata_class in classes.values()])
    return summary


def _chunks(items, size):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def local_class(label):
    """The class of a local folder, and whether it was made now."""
    return WikidataClass.objects.get_or_create(qid=None, label=label)


@dataclass
class _File:
    path: Path
    label: str
    data: bytes
    sha256: str


def _read_all(chunk, summary):
    files = []
    for folder, path in chunk:
        try:
            data = path.read_bytes()
        except OSError as exc:
            summary.fail(path, f"cannot read: {exc.strerror or exc}")
            continue
        files.append(_File(path, class_label(folder), data, store.content_hash(data)))
    return files


def _unseen(files, metadata, summary):
    """The files whose content the catalog does not hold yet, found with one query per batch; those it
    holds are given metadata's licence if they were imported without any."""
    known = CatalogImage.objects.stored_hashes([f.sha256 for f in files])
    summary.skipped += sum(f.sha256 in known for f in files)
    if known and metadata.license:
        summary.licensed += (
            CatalogImage.objects.filter(sha256__in=known).unlicensed_imports().update(**metadata.given())
        )
    return [f for f in files if f.sha256 not in known]


def _prepare(file, metadata):
    """Decode and preprocess one file (in a decoding thread): (file, candidate, model input) or (file, error).
    The thumbnail and perceptual hash are made here too, off the storing thread."""
    try:
        candidate = store.prepare(
            file.data,
            origin=CatalogImage.Origin.LOCAL,
            origin_detail=str(file.path)[-255:],
            **metadata.as_fields(),
        )
    except ImageError as exc:
        return file, exc
    candidate.make_derived()
    return file, candidate, preprocess(candidate.image, INPUT_SIZE)


def _kept(item, summary):
    if isinstance(item[1], ImageError):
        summary.fail(item[0].path, item[1].message)
        return False
    return True


def _inputs(batch):
    if not batch:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    return np.stack([model_input for _, _, model_input in batch])


def _store_batch(pending, classes, summary):
    """Store a batch in one transaction; if any of it fails, store it again one picture at a time, so a
    failing picture costs no other (and the error of the one that fails is raised, as before)."""
    if pending is None:
        return
    batch, vectors = pending
    entries = _new_entries(list(zip(batch, vectors.result(), strict=True)), summary)
    try:
        with transaction.atomic():
            class_of = {file.label: _class_of(file.label, classes) for (file, _, _), _ in entries}
            store.save_batch(
                [(class_of[file.label], candidate, vector) for (file, candidate, _), vector in entries]
            )
    except Exception:
        for (file, candidate, _), vector in entries:
            if _store(file, candidate, vector, classes):
                summary.created += 1
            else:
                summary.skipped += 1
        return
    classes.update(class_of)
    summary.created += len(entries)


def _new_entries(entries, summary):
    """entries without the content stored since the batch was read (by the batch before it) and without
    a second copy of one content within the batch; those count as skipped."""
    known = CatalogImage.objects.stored_hashes([file.sha256 for (file, _, _), _ in entries])
    kept = []
    for entry in entries:
        sha256 = entry[0][0].sha256
        if sha256 in known:
            summary.skipped += 1
        else:
            known.add(sha256)
            kept.append(entry)
    return kept


def _class_of(label, classes):
    """The class of label's folder; made now (in the caller's transaction) if none of its images is stored."""
    return classes.get(label) or local_class(label)[0]


def _store(file, candidate, vector, classes):
    """Store one image; whether it was new. A class is created in the transaction of its first stored image,
    so a failed write (or content the catalog already holds) never leaves an empty class behind."""
    with transaction.atomic():
        wikidata_class = classes.get(file.label)
        made = False
        if wikidata_class is None:
            wikidata_class, made = local_class(file.label)
        _, created = store.save(wikidata_class, candidate, vector)
        if made and not created:
            transaction.set_rollback(True)  # the class would hold nothing
            return False
    classes[file.label] = wikidata_class
    return created
