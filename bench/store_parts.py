"""The parts of storing one picture, timed one by one, before and after issue 13's levers; and the HNSW
index built after a load against row by row. Used by bench/embed_throughput.py (--mode store-parts,
--mode index-after), with Django set up on the bench's own database and media folder."""

import io
import statistics
import threading
import time

import numpy as np
from PIL import Image

BATCH = 32


def legacy_thumbnail_bytes(image):
    """The thumbnail as stored before: Lanczos from the whole picture, a second pass for optimize=True."""
    from catalog.store import THUMBNAIL_SIZE

    thumb = image.copy()
    thumb.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def enlarged(data, width=960):
    """The photo as a Commons thumbnail would come (960 px wide), re-encoded as JPEG."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    height = round(image.height * width / image.width)
    out = io.BytesIO()
    image.resize((width, height), Image.Resampling.BICUBIC).save(out, format="JPEG", quality=90)
    return out.getvalue()


def ms_each(function, items):
    """Milliseconds function takes on each item."""
    times = []
    for item in items:
        start = time.perf_counter()
        function(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def image_parts(candidates):
    """Per-picture ms of the CPU parts, before and after, and the hash bits that moved."""
    from catalog import store
    from catalog.phash import hamming, phash_hex

    fresh = [store.prepare(c.data) for c in candidates]  # nothing cached on them yet
    bits = [hamming(phash_hex(c.image), store.perceptual_hash(c.image)) for c in candidates]
    sizes = [(len(legacy_thumbnail_bytes(c.image)), len(store.thumbnail_bytes(c.image))) for c in candidates]
    return (
        {
            "thumbnail before (Lanczos from the whole picture, optimize)": ms_each(
                lambda c: legacy_thumbnail_bytes(c.image), candidates
            ),
            "thumbnail after (reduced first, optimize)": ms_each(lambda c: c.thumbnail_jpeg, fresh),
            "perceptual hash before (from the whole picture)": ms_each(
                lambda c: phash_hex(c.image), candidates
            ),
            "perceptual hash after (from the thumbnail)": ms_each(lambda c: c.phash, fresh),
        },
        bits,
        sizes,
    )


def empty_catalog():
    from django.conf import settings
    from django.db import connection

    from catalog.models import CatalogImage, WikidataClass

    tables = ", ".join(model._meta.db_table for model in (CatalogImage, WikidataClass))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    import shutil

    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    return WikidataClass.objects.create(label="bench")


def unsaved_rows(wikidata_class, candidates, vectors):
    """Rows as store.save makes them, with their file names set as write_files would."""
    from catalog import store

    rows = []
    for candidate, vector in zip(candidates, vectors, strict=True):
        image = store.new_image(wikidata_class, candidate, vector)
        image.file.name = f"images/{candidate.sha256[:2]}/{candidate.sha256}.jpg"
        image.thumbnail.name = f"thumbs/{candidate.sha256[:2]}/{candidate.sha256}.jpg"
        image.width, image.height = candidate.size
        rows.append(image)
    return rows


def row_parts(candidates, vectors, with_index):
    """Per-picture ms of the database parts, in a catalog emptied first, with or without the index."""
    from django.db import transaction

    from catalog import copyrows, hnswbuild, store
    from catalog.models import CatalogImage

    (hnswbuild.ensure_built if with_index else hnswbuild.drop)()
    label = "with HNSW" if with_index else "without HNSW"
    for candidate in candidates:  # timed in image_parts; here the writes alone
        candidate.make_derived()
    parts = {}
    wikidata_class = empty_catalog()
    parts["existence check, one query a picture"] = ms_each(
        lambda c: CatalogImage.objects.filter(sha256=c.sha256).first(), candidates
    )
    parts["two file writes"] = ms_each(
        lambda c: store.write_files(store.new_image(wikidata_class, c, None), c), candidates
    )

    def save_one(image):
        with transaction.atomic():
            image.save()

    parts[f"row: INSERT + commit each, {label}"] = ms_each(
        save_one, unsaved_rows(wikidata_class, candidates, vectors)
    )
    wikidata_class = empty_catalog()
    rows = unsaved_rows(wikidata_class, candidates, vectors)
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]

    def copy_batch(batch):
        with transaction.atomic():
            copyrows.insert_images(batch)

    per_batch = ms_each(copy_batch, batches)
    parts[f"rows: COPY + commit per {BATCH}, {label}"] = [t / BATCH for t in per_batch]
    return parts


def threaded_copy(candidates, vectors, threads):
    """Pictures/s storing rows by COPY batches from this many threads, each with its own connection."""
    from django.db import connection, transaction

    from catalog import copyrows

    wikidata_class = empty_catalog()
    rows = unsaved_rows(wikidata_class, candidates, vectors)
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]

    def work(share):
        for batch in share:
            with transaction.atomic():
                copyrows.insert_images(batch)
        connection.close()

    workers = [threading.Thread(target=work, args=(batches[i::threads],)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(rows) / (time.perf_counter() - start)


def median(values):
    return statistics.median(values) if values else float("nan")


def print_parts(rounds, bits, sizes):
    names = list(rounds[0])
    print(f"{'part':<62} {'median ms a picture (each round)':>40}")
    for name in names:
        per_round = [median(r[name]) for r in rounds]
        print(f"{name:<62} {median(per_round):7.2f}  ({' / '.join(f'{v:.2f}' for v in per_round)})")
    print(
        f"perceptual hash, thumbnail's against whole picture's: {np.mean([b == 0 for b in bits]) * 100:.1f}%"
        f" equal, median {median(bits)} bits, max {max(bits)} bits of 64 ({len(bits)} pictures)"
    )
    before, after = zip(*sizes, strict=True)
    print(f"thumbnail bytes: {statistics.mean(before):.0f} before, {statistics.mean(after):.0f} after (mean)")


def synthetic_rows(wikidata_class, vectors, start=0):
    """Rows with the given vectors and made-up content hashes and file names (no files): the database
    side of a load only."""
    import hashlib

    from catalog.models import CatalogImage
    from catalog.store import set_embedding

    rows = []
    for i, vector in enumerate(vectors, start):
        sha256 = hashlib.sha256(str(i).encode()).hexdigest()
        image = CatalogImage(
            wikidata_class=wikidata_class, sha256=sha256, phash="0" * 16, origin=CatalogImage.Origin.LOCAL
        )
        set_embedding(image, vector)
        image.file.name = f"images/{sha256[:2]}/{sha256}.jpg"
        image.thumbnail.name = f"thumbs/{sha256[:2]}/{sha256}.jpg"
        image.width, image.height = 300, 200  # else loading the row would open its (absent) file
        rows.append(image)
    return rows


def load_rows(vectors, deferred, probe):
    """Seconds to COPY the vectors' rows in batches into an empty catalog, the index kept or dropped and
    built after (the build timed apart), and ms of an exact search (probe) midway when dropped."""
    from django.db import transaction

    from catalog import copyrows, hnswbuild
    from catalog.models import CatalogImage

    hnswbuild.ensure_built()
    wikidata_class = empty_catalog()
    if deferred:
        hnswbuild.drop()
    search_ms = None
    start = time.perf_counter()
    for i in range(0, len(vectors), BATCH * 32):
        rows = synthetic_rows(wikidata_class, vectors[i : i + BATCH * 32], i)
        for j in range(0, len(rows), BATCH):
            with transaction.atomic():
                copyrows.insert_images(rows[j : j + BATCH])
        if deferred and search_ms is None and i >= len(vectors) // 2:
            begun = time.perf_counter()
            CatalogImage.objects.nearest(probe, 10)
            search_ms = (time.perf_counter() - begun) * 1000
            start += time.perf_counter() - begun  # the probe is not the load's
    loaded = time.perf_counter() - start
    begun = time.perf_counter()
    hnswbuild.ensure_built()
    return loaded, time.perf_counter() - begun, search_ms
