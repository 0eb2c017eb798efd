"""Capacity on paper: crawl time, storage, embedding CPU and serving machines, from settings and measurements.

Every input below is a default of revimg (its setting or constant named beside it), a figure measured by a
bench (the bench and the README table named beside it), or an assumption (said so). Change one on the
command line and the rest follows:

    python bench/capacity.py                                   # 10,000 classes x 30 pictures; 1M at 100/s
    python bench/capacity.py --classes 1000 --per-class 5 --request-seconds 0.5 --searches 20

It needs nothing but Python: no Django, no database.
"""

import argparse
import math
from dataclasses import dataclass

# --- What the crawler asks, from its code and settings ----------------------------------------------------

HTTP_MIN_INTERVAL_S = 0.2  # REVIMG_HTTP_MIN_INTERVAL: one request per host per 0.2 s, across all workers
THUMB_WIDTH = 960  # REVIMG_THUMB_WIDTH: the Commons thumbnails fetched
THUMBNAIL_SIDE = 320  # catalog.store.THUMBNAIL_SIZE: the catalog's own thumbnail
CLASSES_PER_PAGE = 100  # ingest.wikidata.top_classes(page_size): one SPARQL query per 100 classes
INSTANCES_PER_WANTED = 2  # ingest.crawl.INSTANCES_PER_WANTED: instances asked per gallery picture wanted

SPARQL = "query.wikidata.org"
WIKIDATA = "www.wikidata.org"
WIKIPEDIA = "en.wikipedia.org"
COMMONS = "commons.wikimedia.org"
UPLOAD = "upload.wikimedia.org"  # where Commons' thumbnails are served from


# --- Measured, with their sources --------------------------------------------------------------------------


@dataclass
class Measured:
    # bench/embed_workers.py, 960 px pictures: the workers' CPU per picture (prepare + embed, batches of
    # 16), two workers of one thread each; median of 3 runs on a quiet machine (README "Capacity").
    embed_cpu_ms: float = 30.1
    # bench/embed_workers.py, 960 px pictures: what a fetch does to a picture besides the model: decode,
    # thumbnail, perceptual hash (the row's insert is not included).
    store_cpu_ms: float = 26.0
    # bench/embed_workers.py: the dev photos' JPEG bytes per pixel (--width 0), and the catalog thumbnail
    # of a 960 px picture; a Commons thumbnail is estimated as THUMB_WIDTH x 3/4 THUMB_WIDTH pixels (4:3, assumed)
    # at the dev photos' rate (not measured on Commons: these machines reach no Wikimedia host).
    photo_bytes_per_pixel: float = 0.212
    thumbnail_kb: float = 17.0
    # README "Search at scale", 1M rows: the table with a vector(1280) column (the catalog's column type)
    # and the HNSW index on its halfvec cast, m=24, ef_construction=100.
    table_gb_per_million: float = 5.98
    index_gb_per_million: float = 4.10
    # README "Measured under load": CPU per search in gunicorn and PostgreSQL together, 25-31 ms, on the
    # 2,999-picture dev catalog; gunicorn reached 0.83x the in-process ceiling at 16 in flight.
    search_cpu_ms: float = 28.0
    server_efficiency: float = 0.83
    # The nearest-neighbour SQL, p50: 1.9 ms on the dev catalog (README "Search latency"), 4.99 ms on 1M
    # at ef_search 400 (README "Search at scale"): the difference is added to each search at 1M.
    sql_ms_small: float = 1.9
    sql_ms_million: float = 4.99
    # README "Worst-case memory per worker": a gunicorn worker peaks near 330 MB.
    worker_peak_mb: float = 330.0


# --- The arithmetic ----------------------------------------------------------------------------------------


def crawl_requests(classes, per_class, from_dump=False, article_share=0.0):
    """Requests per host for a crawl of classes x per_class pictures, each class assumed to find its own
    picture and a full gallery. article_share: the share of classes without a P18 image, whose English
    Wikipedia article is read for their own picture. The gallery query names each instance's picture; an
    instance with several best-ranked pictures, read from Wikidata (50 a request), is assumed rare.
    """
    wanted = per_class - 1  # gallery pictures per class, besides its own
    pictures = classes * per_class
    return {
        SPARQL: (0 if from_dump else math.ceil(classes / CLASSES_PER_PAGE)) + (classes if wanted else 0),
        WIKIDATA: classes,  # the class itself: label, description, article, image, revision
        WIKIPEDIA: round(classes * article_share),
        COMMONS: pictures,  # imageinfo: licence, credit and the thumbnail's address
        UPLOAD: pictures,  # the thumbnail itself
    }


def crawl_hours(requests, workers, request_s, local_s_per_picture, pictures, cores):
    """Wall hours of a crawl: no faster than its busiest host's pace, than its workers' serial requests
    (each worker sends one request at a time), or than the cores doing the pictures' local work."""
    host_floor = max(requests.values()) * HTTP_MIN_INTERVAL_S
    serial = (sum(requests.values()) * request_s + pictures * local_s_per_picture) / workers
    cpu = pictures * local_s_per_picture / min(workers, cores)
    return max(host_floor, serial, cpu) / 3600


def commons_thumbnail_kb(m):
    return THUMB_WIDTH * THUMB_WIDTH * 3 / 4 * m.photo_bytes_per_pixel / 1000


def search_cpu_ms_at(m, pictures):
    """CPU per search: the dev catalog's, plus the longer index walk of a catalog of about a million."""
    return m.search_cpu_ms + (m.sql_ms_million - m.sql_ms_small if pictures >= 500_000 else 0.0)


def serving_cores(m, pictures, searches_per_s, utilisation):
    """Cores that serve searches_per_s with the CPU busy at most `utilisation` of the time."""
    busy = searches_per_s * search_cpu_ms_at(m, pictures) / 1000
    return busy / m.server_efficiency / utilisation


def serving_memory_gb(m, pictures, workers):
    """Index and table kept in memory (shared_buffers + page cache), plus the workers at their peak."""
    data = (m.table_gb_per_million + m.index_gb_per_million) * pictures / 1e6
    return data + workers * m.worker_peak_mb / 1000


# --- Printing ----------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=10_000)
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--from-dump", action="store_true", help="classes from a dump: no top-classes query")
    parser.add_argument(
        "--article-share", type=float, default=0.5, help="classes without P18 (assumed: 0.5; not measured)"
    )
    parser.add_argument(
        "--request-seconds",
        type=float,
        default=0.3,
        help="one Wikimedia request (assumed; not measurable here)",
    )
    parser.add_argument("--crawl-cores", type=int, default=2, help="cores of the crawling machine")
    parser.add_argument("--serve-pictures", type=int, default=1_000_000)
    parser.add_argument("--searches", type=float, default=100, help="searches per second to serve")
    parser.add_argument("--utilisation", type=float, default=0.7, help="CPU busy at most (assumed headroom)")
    parser.add_argument("--machine-cores", type=int, default=8)
    parser.add_argument("--embed-cpu-ms", type=float, default=Measured.embed_cpu_ms)
    parser.add_argument("--search-cpu-ms", type=float, default=Measured.search_cpu_ms)
    return parser.parse_args()


def print_crawl(args, m):
    requests = crawl_requests(args.classes, args.per_class, args.from_dump, args.article_share)
    pictures = args.classes * args.per_class
    print(f"Crawl: {args.classes:,} classes x {args.per_class} = {pictures:,} pictures")
    print(
        f"  one request per host per {HTTP_MIN_INTERVAL_S} s (REVIMG_HTTP_MIN_INTERVAL), shared by every worker"
    )
    for host, count in requests.items():
        print(
            f"  {host:<22} {count:>9,} requests  >= {count * HTTP_MIN_INTERVAL_S / 3600:5.1f} h at the pace"
        )
    local_s = (m.embed_cpu_ms + m.store_cpu_ms) / 1000
    print(
        f"  per worker: one request at a time, {args.request_seconds} s each (assumed),"
        f" {local_s * 1000:.0f} ms CPU per picture (embed + store), {args.crawl_cores} cores"
    )
    for workers in (1, 2, 4, 8, 16):
        hours = crawl_hours(requests, workers, args.request_seconds, local_s, pictures, args.crawl_cores)
        print(f"  {workers:>2} worker(s): {hours:5.1f} h")


def print_storage(args, m):
    pictures = args.classes * args.per_class
    picture_kb = commons_thumbnail_kb(m) + m.thumbnail_kb
    print(
        f"Media: {commons_thumbnail_kb(m):.0f} kB per {THUMB_WIDTH} px Commons thumbnail (estimated)"
        f" + {m.thumbnail_kb:.0f} kB catalog thumbnail = {picture_kb:.0f} kB per picture:"
        f" {pictures * picture_kb / 1e6:.0f} GB for {pictures:,}, {1e6 * picture_kb / 1e6:.0f} GB per million"
    )
    for count in (pictures, args.serve_pictures):
        print(
            f"Database at {count:,}: table {m.table_gb_per_million * count / 1e6:.2f} GB"
            f" + HNSW index {m.index_gb_per_million * count / 1e6:.2f} GB"
        )
    cpu_hours = pictures * m.embed_cpu_ms / 3.6e6
    print(
        f"Embedding {pictures:,}: {cpu_hours:.1f} CPU-hours ({m.embed_cpu_ms:g} ms each), so at best"
        f" {cpu_hours / args.crawl_cores:.1f} h on {args.crawl_cores} free cores;"
        f" storing adds {pictures * m.store_cpu_ms / 3.6e6:.1f} CPU-hours"
    )


def print_serving(args, m):
    per_search = search_cpu_ms_at(m, args.serve_pictures)
    cores = serving_cores(m, args.serve_pictures, args.searches, args.utilisation)
    machines = math.ceil(cores / args.machine_cores)
    workers = machines * args.machine_cores
    memory = serving_memory_gb(m, args.serve_pictures, args.machine_cores)
    print(
        f"Serving {args.serve_pictures:,} pictures: {per_search:.1f} ms CPU per search"
        f" = {1000 / per_search:.0f} searches/s per core at full load,"
        f" {1000 / per_search * m.server_efficiency:.0f} through gunicorn"
    )
    print(
        f"  {args.searches:g} searches/s at {args.utilisation:.0%} CPU: {cores:.1f} cores ="
        f" {machines} machine(s) of {args.machine_cores} cores ({workers} workers),"
        f" each with >= {memory:.1f} GB of memory for index, table and workers"
    )


def main():
    args = parse_args()
    m = Measured(embed_cpu_ms=args.embed_cpu_ms, search_cpu_ms=args.search_cpu_ms)
    print_crawl(args, m)
    print_storage(args, m)
    print_serving(args, m)


if __name__ == "__main__":
    main()
