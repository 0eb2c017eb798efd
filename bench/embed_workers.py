"""Embedding throughput of ingest workers: ONE worker process against TWO on the same cores, side by side.

Each worker does what a crawl worker does to a fetched picture before storing it: catalog.store.prepare
(decode and check the bytes) and catalog.store.embed (preprocess and run the model), a batch at a time
(--batch, default 16: ingest.crawl.embed_images' batch). Workers pull batches from one queue, as Celery
workers pull tasks. A worker limits its ONNX Runtime threads through REVIMG_EMBED_THREADS, set before its
settings load, as a deployment sets it for a Celery worker (gunicorn.conf.py shares the cores out itself).

Configurations are PROCESSESxTHREADS, default `1xC,2x(C/2),2xC` on C cores: one worker with every core
(a lone Celery worker's default), two sharing the cores out (as gunicorn does), and two each taking every
core (two Celery workers started without REVIMG_EMBED_THREADS). Rounds alternate their order; medians last.

Pictures: the caltech101-dev photos, resized to --width pixels wide (default 960: the Commons thumbnails a
crawl fetches, REVIMG_THUMB_WIDTH) and saved as JPEG quality 85, so decoding costs what a thumbnail's pixels
cost; --width 0 keeps the photos as they are. Every worker holds every picture in memory before timing.

    REVIMG_DATA_DIR=/path/to/var python bench/embed_workers.py [--images 480] [--rounds 3] [--width 960]

Printed per measurement: pictures/s, the workers' CPU milliseconds per picture (what CPU-hours are made of,
whatever else runs), and the cores other processes kept busy meanwhile, beside the load average. Then the
bytes a stored picture and its thumbnail take (catalog.store's own thumbnail), and the CPU of the storing
steps that are not the database (thumbnail, perceptual hash). Needs only the model cache in
REVIMG_DATA_DIR/models (made on first use), no database.
"""

import argparse
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "caltech101-dev"
READY_TIMEOUT_S = 180


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_configs():
    return f"1x{cores()},2x{max(1, cores() // 2)},2x{cores()}"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--images", type=int, default=480, help="pictures per measurement (default 480)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--batch", type=int, default=16, help="pictures per task (default 16)")
    parser.add_argument("--width", type=int, default=960, help="resize photos to this width; 0: as they are")
    parser.add_argument("--configs", default=default_configs(), help="PROCESSESxTHREADS, comma-separated")
    return parser.parse_args()


def parse_configs(text):
    return [tuple(int(part) for part in config.split("x")) for config in text.split(",")]


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
    import django

    django.setup()


# --- Pictures ---------------------------------------------------------------------------------------------


def pick_photos(dataset, count):
    files = sorted(dataset.glob("*/*.jpg"))
    step = max(1, len(files) // count)
    return files[::step][:count]


def resized_jpeg(path, width):
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if width:
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
        return out.getvalue()


def write_pictures(photos, width, folder):
    """The pictures the workers read: the photos themselves (width 0) or their resized copies."""
    if not width:
        return [str(path) for path in photos]
    paths = []
    for index, photo in enumerate(photos):
        path = Path(folder) / f"{index:05d}.jpg"
        path.write_bytes(resized_jpeg(photo, width))
        paths.append(str(path))
    return paths


# --- Workers ----------------------------------------------------------------------------------------------


def worker(threads, paths, batch, tasks, done):
    """A spawned worker: load the model with its share of threads, then decode and embed what it is given."""
    os.environ["REVIMG_EMBED_THREADS"] = str(threads)
    setup_django()
    from catalog import store

    datas = [Path(path).read_bytes() for path in paths]
    store.embed([store.prepare(data) for data in datas[:batch]])  # load the model, warm its buffers
    done.put("ready")
    for indexes in iter(tasks.get, None):
        store.embed([store.prepare(datas[index]) for index in indexes])
        done.put(len(indexes))


@dataclass
class Pool:
    processes: int
    threads: int
    children: list
    tasks: object
    done: object

    @property
    def label(self):
        return f"{self.processes} x {self.threads} thread{'s' if self.threads > 1 else ''}"

    def cpu_seconds(self):
        return sum(sum(psutil.Process(child.pid).cpu_times()[:2]) for child in self.children)

    def stop(self):
        for _ in self.children:
            self.tasks.put(None)
        for child in self.children:
            child.join(30)
            if child.is_alive():
                child.terminate()


def start_pool(context, processes, threads, paths, batch):
    tasks, done = context.Queue(), context.Queue()
    children = [
        context.Process(target=worker, args=(threads, paths, batch, tasks, done), daemon=True)
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    for _ in children:
        done.get(timeout=READY_TIMEOUT_S)
    return Pool(processes, threads, children, tasks, done)


# --- Measuring --------------------------------------------------------------------------------------------


def machine_busy_seconds():
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


@dataclass
class Measurement:
    rate: float  # pictures per second
    cpu_ms: float  # the workers' CPU per picture
    others: float  # cores other processes kept busy meanwhile
    load: float  # 1-minute load average at the end


def measure(pool, count, batch):
    """Feed count pictures to the pool's queue in batches; time until the last batch is done."""
    own = psutil.Process()
    busy, workers_cpu, own_cpu = machine_busy_seconds(), pool.cpu_seconds(), sum(own.cpu_times()[:2])
    started = time.perf_counter()
    for start in range(0, count, batch):
        pool.tasks.put(list(range(start, min(start + batch, count))))
    finished = 0
    while finished < count:
        finished += pool.done.get(timeout=READY_TIMEOUT_S)
    wall = time.perf_counter() - started
    workers_cpu = pool.cpu_seconds() - workers_cpu
    others = machine_busy_seconds() - busy - workers_cpu - (sum(own.cpu_times()[:2]) - own_cpu)
    return Measurement(count / wall, workers_cpu * 1000 / count, max(0.0, others / wall), os.getloadavg()[0])


def print_measurement(label, m):
    print(
        f"  {label:<14} {m.rate:6.1f} pictures/s  {m.cpu_ms:5.1f} ms CPU/picture"
        f"  other processes {m.others:4.2f} cores  load {m.load:4.2f}",
        flush=True,
    )


def run_rounds(pools, count, batch, rounds):
    results = {pool.label: [] for pool in pools}
    for round_number in range(rounds):
        order = pools if round_number % 2 == 0 else pools[::-1]
        print(f"round {round_number + 1}")
        for pool in order:
            measurement = measure(pool, count, batch)
            results[pool.label].append(measurement)
            print_measurement(pool.label, measurement)
    return results


def print_medians(results):
    labels = list(results)
    print("medians")
    for label in labels:
        rows = results[label]
        print_measurement(
            label,
            Measurement(
                *(statistics.median(getattr(m, key) for m in rows) for key in Measurement.__annotations__)
            ),
        )
    first = results[labels[0]]
    for label in labels[1:]:
        ratios = [m.rate / base.rate for m, base in zip(results[label], first, strict=True)]
        print(f"  {label} / {labels[0]}: {statistics.median(ratios):.2f}x (per round {_joined(ratios)})")


def _joined(values):
    return ", ".join(f"{value:.2f}" for value in values)


# --- What a stored picture costs besides the model -------------------------------------------------------


def storage_figures(paths, width):
    """Bytes of a stored picture (and per pixel) and of its thumbnail; the CPU of decoding, thumbnail and
    perceptual hash, the local work of storing a fetched picture besides the database."""
    setup_django()
    from catalog import store
    from catalog.phash import phash_hex

    warm = store.prepare(Path(paths[0]).read_bytes()).image  # imports on first use are not the picture's
    phash_hex(warm), store.thumbnail_bytes(warm)
    file_bytes, pixels, thumb_bytes = [], [], []
    decode_s = thumb_s = 0.0
    for path in paths:
        data = Path(path).read_bytes()
        started = time.process_time()
        candidate = store.prepare(data)
        decoded = time.process_time()
        thumb_bytes.append(len(store.thumbnail_bytes(candidate.image)))
        phash_hex(candidate.image)
        thumb_s += time.process_time() - decoded
        decode_s += decoded - started
        file_bytes.append(len(data))
        pixels.append(candidate.size[0] * candidate.size[1])
    kind = f"{width} px JPEG q85 copies" if width else "dev photos as they are"
    print(
        f"storage ({kind}): file {statistics.mean(file_bytes) / 1000:.1f} kB mean"
        f" ({sum(file_bytes) / sum(pixels):.3f} bytes/pixel), thumbnail {statistics.mean(thumb_bytes) / 1000:.1f}"
        f" kB mean; CPU per picture, one thread: decode {decode_s * 1000 / len(paths):.1f} ms,"
        f" thumbnail + phash {thumb_s * 1000 / len(paths):.1f} ms"
    )


def main():
    args = parse_args()
    if not args.dataset.is_dir():
        print(f"skipped: no dataset at {args.dataset}")
        return
    photos = pick_photos(args.dataset, args.images)
    context = multiprocessing.get_context("spawn")  # fresh interpreters: each reads its own thread setting
    with tempfile.TemporaryDirectory(prefix="embed-workers-") as folder:
        paths = write_pictures(photos, args.width, folder)
        size = f"{args.width} px wide" if args.width else "as they are"
        print(
            f"{len(paths)} pictures ({size}) from {args.dataset}, batches of {args.batch}, {cores()} cores;"
            f" load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
            flush=True,
        )
        pools = [start_pool(context, p, t, paths, args.batch) for p, t in parse_configs(args.configs)]
        try:
            results = run_rounds(pools, len(paths), args.batch, args.rounds)
        finally:
            for pool in pools:
                pool.stop()
        print_medians(results)
        storage_figures(paths[:200], args.width)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
