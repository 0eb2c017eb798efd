"""Embedding throughput, side by side in one run: a reference pipeline, our model stage, our import.

- reference: Pillow decode + centre crop + bicubic resize on one thread, feeding ONNX Runtime (2 threads,
  batch 32, default session options) the same EfficientNet-Lite0 export, one batch after the other;
- TensorFlow FP32: the Keras model in a tf.function (the source of truth, for context and agreement);
- our embedding stage: Embedder.embed_batch on preprocessed images (the model alone);
- our import: ingest.local.import_folder (decode + embed + phash + thumbnail + files + rows), into a
  database and media folder of the bench's own, emptied before each repeat; start-up (model load,
  Postgres start, migrations) excluded;
- single-image latency: Embedder.embed([one image]), as a search query runs it.

Repeats interleave the pipelines and the ratios are taken per repeat, since the machine's load drifts;
medians are printed last. Agreement: the largest cosine distance between our vectors and TensorFlow's.

    REVIMG_DATA_DIR=/work/var-me python bench/embed_throughput.py [--images 960] [--repeats 3]

Other modes (--mode), for the store's levers (issue 13):
- store-parts: each part of storing a picture timed on its own, before and after (thumbnail, perceptual
  hash and the bits it moved, existence check, file writes, a row per commit against COPY batches, each
  with and without the HNSW index, COPY from one and two threads);
- index-after: import_images into an empty catalog with the HNSW index kept against built after the load;
- index-rows: the same for the rows alone, --rows of them (dev-set vectors grown by bench/scale_vectors.py),
  with an exact search timed midway while the index is absent.

The model cache in REVIMG_DATA_DIR/models is reused; the catalog there is not touched (the bench imports
into the database named by --db-name and a temporary media folder).
"""

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "caltech101-dev"
REFERENCE_BATCH = 32
REFERENCE_THREADS = 2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--images", type=int, default=960, help="photos taken evenly across the dataset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db-name", default="revimg_embed_bench", help="embedded database for the import")
    parser.add_argument(
        "--mode",
        choices=("import", "store-parts", "index-after", "index-rows"),
        default="import",
        help="import: reference, model stage and import_images side by side; store-parts: each part of"
        " storing a picture timed, before and after; index-after: an import with the HNSW index kept"
        " against one that builds it after the load; index-rows: the same for the rows alone (COPY batches"
        " of dev-set vectors grown to --rows, no files, no model)",
    )
    parser.add_argument("--rows", type=int, default=30_000, help="catalog size for --mode index-rows")
    return parser.parse_args()


def setup_django(db_name, media_root):
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["REVIMG_DB_NAME"] = db_name
    os.environ["REVIMG_MEDIA_ROOT"] = str(media_root)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def pick_photos(dataset, count):
    files = sorted(dataset.glob("*/*.jpg"))
    if not files:
        sys.exit(f"no photos under {dataset}")
    step = max(1, len(files) // count)
    return files[::step][:count]


def link_folder(photos, target):
    """A class-folder tree of symlinks to the chosen photos, for import_folder."""
    for path in photos:
        (target / path.parent.name).mkdir(parents=True, exist_ok=True)
        (target / path.parent.name / path.name).symlink_to(path)
    return target


def timed(function, count):
    start = time.perf_counter()
    result = function()
    return count / (time.perf_counter() - start), result


def reference_pipeline(session, datas):
    """One thread decodes and resizes a batch with Pillow, then ONNX Runtime embeds it, and so on."""
    from PIL import Image

    from catalog.imagefile import center_crop_box

    name = session.get_inputs()[0].name
    vectors = []
    for start in range(0, len(datas), REFERENCE_BATCH):
        batch = []
        for data in datas[start : start + REFERENCE_BATCH]:
            image = Image.open(io.BytesIO(data)).convert("RGB")
            box = center_crop_box(*image.size, 224)
            resized = image.crop(box).resize((224, 224), Image.Resampling.BICUBIC)
            batch.append((np.asarray(resized, np.float32) - 127.0) / 128.0)
        vectors.append(session.run(None, {name: np.stack(batch)})[0])
    return np.concatenate(vectors)


def reference_session(path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = REFERENCE_THREADS
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def configure_tensorflow_threads():
    """Use every core for the ops themselves; the model is one chain, so parallel ops gain nothing."""
    import tensorflow as tf

    from catalog.embedding import usable_cores

    try:
        tf.config.threading.set_intra_op_parallelism_threads(usable_cores())
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        print("TensorFlow already initialised; thread settings unchanged", file=sys.stderr)


def tensorflow_features(embedder, inputs):
    """FP32 TensorFlow features and images/s: the Keras model in a tf.function."""
    from catalog.embedding import _import_keras_builder

    lite = _import_keras_builder()
    configure_tensorflow_threads()
    run = lite.inference_function(lite.load_or_build(embedder.cache_path))
    run(inputs[:REFERENCE_BATCH])  # trace once
    rate, chunks = timed(
        lambda: [run(inputs[s : s + REFERENCE_BATCH])[0] for s in range(0, len(inputs), REFERENCE_BATCH)],
        len(inputs),
    )
    return rate, np.concatenate(chunks)


def import_once(folder, count):
    from django.conf import settings
    from django.db import connection

    from catalog.models import CatalogImage, WikidataClass
    from ingest.local import import_folder

    # TRUNCATE rather than DELETE: dead rows left in the HNSW index would slow the next repeat's inserts.
    tables = ", ".join(model._meta.db_table for model in (CatalogImage, WikidataClass))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)  # the bench's own temporary folder
    rate, summary = timed(lambda: import_folder(folder), count)
    if summary.created != count:
        sys.exit(f"import created {summary.created} of {count} images: {summary.failures[:3]}")
    return rate


def single_image_latency_ms(embedder, images):
    embedder.embed(images[:1])
    times = []
    for image in images:
        start = time.perf_counter()
        embedder.embed([image])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def max_cosine_distance(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((1 - (a * b).sum(axis=1)).max())


def run_repeat(session, datas, inputs, embedder, folder):
    reference, reference_vectors = timed(lambda: reference_pipeline(session, datas), len(datas))
    stage, _ = timed(lambda: embedder.embed_batch(inputs), len(inputs))
    imported = import_once(folder, len(datas))
    return {"reference": reference, "stage": stage, "import": imported}, reference_vectors


def print_repeat(label, row):
    print(
        f"{label:>8}  reference {row['reference']:6.1f} img/s | embedding stage {row['stage']:6.1f} img/s"
        f" ({row['stage'] / row['reference']:.2f}x) | import_images {row['import']:6.1f} img/s"
        f" ({row['import'] / row['reference']:.2f}x)",
        flush=True,
    )


def store_parts(args, datas, inputs, embedder):
    """Each part of storing a picture, before and after the levers, on the photos as they are and enlarged
    to 960 px (a Commons thumbnail): rounds of every part, medians per round."""
    from bench import store_parts as parts
    from catalog import store

    vectors = embedder.embed_batch(inputs)
    as_they_are = [store.prepare(data) for data in datas]
    large = [store.prepare(parts.enlarged(data)) for data in datas[: len(datas) // 4]]
    rounds, threads = [], []
    for _ in range(args.repeats):
        small_cpu, bits, sizes = parts.image_parts(as_they_are)
        large_cpu, large_bits, _ = parts.image_parts(large)
        row = {f"{name}, dev photo": times for name, times in small_cpu.items()}
        row.update({f"{name}, 960 px": times for name, times in large_cpu.items()})
        for with_index in (True, False):
            row.update(parts.row_parts(as_they_are, vectors, with_index))
        rounds.append(row)
        threads.append([parts.threaded_copy(as_they_are, vectors, n) for n in (1, 2)])
        print(f"round {len(rounds)} done; load average {os.getloadavg()[0]:.2f}", flush=True)
    parts.print_parts(rounds, bits + large_bits, sizes)
    for n, index in ((1, 0), (2, 1)):
        rates = [t[index] for t in threads]
        print(f"COPY batches from {n} thread(s), without HNSW: {statistics.median(rates):.0f} rows/s", end="")
        print(f" ({' / '.join(f'{r:.0f}' for r in rates)})")


def index_after(args, folder, count):
    """import_images of the photos into an empty catalog, with the HNSW index kept during the load against
    one built after it (the build counted in the time), alternating which goes first."""
    from django.conf import settings

    rows = []
    for repeat in range(args.repeats):
        row = {}
        for deferred in (False, True) if repeat % 2 == 0 else (True, False):
            settings.REVIMG_IMPORT_INDEX_AFTER_ROWS = 1 if deferred else 10**9
            settings.REVIMG_IMPORT_INDEX_AFTER_SHARE = 0.0
            row[deferred] = import_once(folder, count)
        print(
            f"  run {repeat + 1}  index kept {row[False]:6.1f} img/s | built after {row[True]:6.1f} img/s"
            f" ({row[True] / row[False]:.2f}x); load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        rows.append(row)
    ratio = statistics.median(row[True] / row[False] for row in rows)
    print(f"  median  built after / index kept: {ratio:.2f}x")


def index_rows(args):
    """Rows alone: an empty catalog loaded with --rows rows, the index kept against built after."""
    from django.conf import settings

    from bench import scale_vectors
    from bench import store_parts as parts

    cache = Path(settings.REVIMG_DATA_DIR) / "bench" / "caltech101-dev-embeddings.npz"
    real, labels, _ = scale_vectors.real_embeddings(cache, args.dataset)
    vectors = np.concatenate([chunk for _, chunk in scale_vectors.grow(real, labels, args.rows)])
    print(f"{len(vectors)} rows; load average {os.getloadavg()[0]:.2f}", flush=True)
    for repeat in range(args.repeats):
        for deferred in (False, True) if repeat % 2 == 0 else (True, False):
            loaded, build, search_ms = parts.load_rows(vectors, deferred, real[0])
            how = "built after" if deferred else "index kept "
            line = f"  run {repeat + 1}  {how}: load {loaded:6.1f} s + build {build:5.1f} s"
            line += f" = {loaded + build:6.1f} s ({len(vectors) / (loaded + build):5.0f} rows/s)"
            if search_ms is not None:
                line += f"; exact search midway {search_ms:.0f} ms"
            print(f"{line}; load average {os.getloadavg()[0]:.2f}", flush=True)


def main():
    args = parse_args()
    media = tempfile.TemporaryDirectory(prefix="embed-bench-media-")
    links = tempfile.TemporaryDirectory(prefix="embed-bench-photos-")
    setup_django(args.db_name, media.name)

    from catalog.embedding import get_embedder
    from catalog.imagefile import open_image, preprocess

    if args.mode == "index-rows":
        index_rows(args)
        return
    photos = pick_photos(args.dataset, args.images)
    folder = link_folder(photos, Path(links.name))
    if args.mode == "index-after":
        get_embedder().load()  # start-up excluded, as in the other modes
        print(f"{len(photos)} photos; load average {os.getloadavg()[0]:.2f}", flush=True)
        index_after(args, folder, len(photos))
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        return
    datas = [path.read_bytes() for path in photos]
    images = [open_image(data) for data in datas]
    inputs = np.stack([preprocess(image) for image in images])
    embedder = get_embedder()
    embedder.load()
    session = reference_session(str(embedder.onnx_cache_path))
    print(f"{len(photos)} photos from {args.dataset}; load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.mode == "store-parts":
        store_parts(args, datas, inputs, embedder)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        return

    rows = []
    for repeat in range(args.repeats):
        row, reference_vectors = run_repeat(session, datas, inputs, embedder, folder)
        print_repeat(f"run {repeat + 1}", row)
        rows.append(row)
    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    ratios = {
        key: statistics.median(row[key] / row["reference"] for row in rows) for key in ("stage", "import")
    }
    print(
        f"  median  reference {median['reference']:.1f} img/s | embedding stage {median['stage']:.1f} img/s"
        f" ({ratios['stage']:.2f}x) | import_images {median['import']:.1f} img/s ({ratios['import']:.2f}x)"
    )

    ours = embedder.embed_batch(inputs)
    tf_rate, tf_vectors = tensorflow_features(embedder, inputs)
    print(
        f"TensorFlow FP32 tf.function: {tf_rate:.1f} img/s (embedding stage {median['stage'] / tf_rate:.2f}x)"
    )
    print(f"single-image latency (embed one image): {single_image_latency_ms(embedder, images[:20]):.1f} ms")
    print(
        f"agreement with FP32 TensorFlow: max cosine distance {max_cosine_distance(ours, tf_vectors):.2e} (ours),"
        f" {max_cosine_distance(reference_vectors, tf_vectors):.2e} (reference)"
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    media.cleanup()
    links.cleanup()


if __name__ == "__main__":
    main()
