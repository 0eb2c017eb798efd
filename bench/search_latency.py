"""How fast is a search? Prints p50/p95 of POST /api/search/ end to end and of the nearest-neighbour SQL.

Run it on the dev-set catalog, imported once into your data dir:

    export REVIMG_DATA_DIR=/path/to/var
    python manage.py import_images ../shared/datasets/caltech101-dev
    python bench/search_latency.py                       # through Django's test client, in this process
    REVIMG_ANON_SEARCH_RATE= python manage.py runserver --noreload &   # no throttle for the benchmark
    python bench/search_latency.py --url http://127.0.0.1:8000   # that server, over loopback

Queries are photos of the dataset, sent as multipart uploads. The first few searches (model loading,
TensorFlow tracing) are run before timing starts and not counted.
"""

import argparse
import ipaddress
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "caltech101-dev"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET, help="folder of class folders of photos")
    parser.add_argument("--queries", type=int, default=100, help="searches to time (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="searches run first and not timed")
    parser.add_argument("--k", type=int, default=10, help="results asked for (default 10)")
    parser.add_argument("--url", help="base URL of a running server on loopback, instead of the test client")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--passes",
        type=int,
        default=1,
        help="send the timed queries this many times, reported pass by pass: in a fresh process the first"
        " pass pays each class's first use (cold), later ones do not (warm)",
    )
    return parser.parse_args()


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import django

    django.setup()
    from django.conf import settings

    settings.REVIMG_ANON_SEARCH_RATE = None  # a benchmark is no abuse


def percentiles(samples_ms):
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def report(name, samples_ms):
    p50, p95 = percentiles(samples_ms)
    print(f"{name:<44} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   (n={len(samples_ms)})")


def sample_photos(dataset, count, seed):
    photos = sorted(p for p in dataset.glob("*/*") if p.is_file() and not p.name.startswith("."))
    if not photos:
        sys.exit(f"no photos under {dataset}")
    return random.Random(seed).sample(photos, min(count, len(photos)))


def timed(call):
    """(wall-clock ms, CPU ms of this process's threads, result) of call()."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = call()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000, result


def poster(base_url):
    """A function that POSTs one photo to /api/search/ and checks the answer."""
    if base_url:
        host = urlsplit(base_url).hostname or ""
        if not (host == "localhost" or ipaddress.ip_address(host).is_loopback):
            sys.exit("--url must be a server on this machine (loopback)")
        import requests

        session = requests.Session()

        def post(path, k):
            with path.open("rb") as file:
                response = session.post(f"{base_url}/api/search/", files={"image": file}, data={"k": k})
            return response.status_code
    else:
        from django.test import Client

        client = Client(HTTP_HOST="localhost")

        def post(path, k):
            with path.open("rb") as file:
                return client.post("/api/search/", {"image": file, "k": k}).status_code

    return post


def bench_end_to_end(photos, warmup, k, base_url):
    post = poster(base_url)
    for path in photos[:warmup]:
        assert post(path, k) == 200
    wall, cpu = [], []
    for path in photos[warmup:]:
        elapsed, used, status = timed(lambda path=path: post(path, k))
        if status == 429:
            sys.exit("the server throttles searches: start it with REVIMG_ANON_SEARCH_RATE= (empty)")
        assert status == 200, f"{path}: HTTP {status}"
        wall.append(elapsed)
        cpu.append(used)
    return wall, cpu


def bench_embedding(photos):
    from catalog.embedding import get_embedder
    from catalog.imagefile import open_image

    embedder = get_embedder()
    images = [open_image(path.read_bytes()) for path in photos]
    embedder.embed(images[:1])
    runs = [timed(lambda image=image: embedder.embed([image])) for image in images]
    return [wall for wall, _, _ in runs], [cpu for _, cpu, _ in runs]


def bench_sql(vectors, n):
    """nearest() as the service calls it, and the bare SQL statement inside the same scan settings."""
    from django.db import connection

    from catalog.models import CatalogImage, hnsw_scan
    from search.service import RESULT_FIELDS

    queryset = CatalogImage.objects.select_related("wikidata_class").only(*RESULT_FIELDS)
    orm, bare = [], []
    for vector in vectors:
        orm.append(timed(lambda vector=vector: queryset.nearest(vector, n))[0])
        sql, params = queryset.nearest_query(vector, n).query.sql_with_params()
        with hnsw_scan(n), connection.cursor() as cursor:
            bare.append(
                timed(lambda sql=sql, params=params: cursor.execute(sql, params) or cursor.fetchall())[0]
            )
    return orm, bare


def recall(vectors, n):
    """Share of the exact n nearest (by brute force in numpy) that the HNSW search returns."""
    import numpy as np

    from catalog.models import CatalogImage

    rows = list(CatalogImage.objects.searchable().values_list("pk", "embedding"))
    ids = np.array([pk for pk, _ in rows])
    matrix = np.array([vector for _, vector in rows], dtype=np.float32)
    found = 0
    for vector in vectors:
        exact = set(ids[np.argsort(-(matrix @ np.asarray(vector, dtype=np.float32)))[:n]].tolist())
        found += len(exact & {image.pk for image in CatalogImage.objects.nearest(vector, n)})
    return found / (n * len(vectors)), len(rows)


def main():
    args = parse_args()
    setup_django()
    from catalog.models import CatalogImage
    from search.verdict import NEIGHBOURS

    catalog_size = CatalogImage.objects.searchable().count()
    if catalog_size == 0:
        sys.exit(
            "the catalog is empty: run `python manage.py import_images ../shared/datasets/caltech101-dev`"
        )
    photos = sample_photos(args.dataset, args.queries + args.warmup, args.seed)
    where = f"server {args.url}" if args.url else "Django test client, in process"
    print(f"catalog: {catalog_size} searchable images; {len(photos) - args.warmup} queries; {where}")

    for run in range(args.passes):
        warmup = args.warmup if run == 0 else 0
        wall, cpu = bench_end_to_end(photos[args.warmup - warmup :], warmup, args.k, args.url)
        which = f", pass {run + 1}" if args.passes > 1 else ""
        report(f"POST /api/search/ end to end (k={args.k}{which})", wall)
        if not args.url:
            # On a busy machine wall time includes waiting for a core; CPU time is the work itself (all of
            # this process's threads, the model's included; Postgres's own CPU is not counted).
            report("  CPU time of this process per search", cpu)
    wall, cpu = bench_embedding(photos[args.warmup :])
    report("embedding one picture", wall)
    report("  CPU time (TensorFlow's threads added up)", cpu)
    vectors = list(
        CatalogImage.objects.searchable().order_by("?").values_list("embedding", flat=True)[: args.queries]
    )
    orm, bare = bench_sql(vectors, NEIGHBOURS)
    report(f"nearest() via the ORM ({NEIGHBOURS} neighbours)", orm)
    report(f"nearest-neighbour SQL alone ({NEIGHBOURS})", bare)
    share, size = recall(vectors[:50], NEIGHBOURS)
    print(f"HNSW recall@{NEIGHBOURS} against exact search over {size} vectors: {share:.3f}")


if __name__ == "__main__":
    main()
