"""Crawl pace: pictures per minute of a whole crawl against the local Wikimedia stand-in, paced as in production,
beside the limit that pace sets.

The stand-in is tests/crawl_server.py's (captured Wikidata/Commons payloads), served from a process of its own,
each Wikimedia service on a loopback address of its own (127.0.0.1-5: query service, Wikidata, Wikipedia,
Commons API, file server), so each gets its own pace as each real host does. Pictures are caltech101-dev photos resized to --width (default 960: the Commons
thumbnails a crawl fetches), distinct per file. Each run crawls --classes classes of --per-class pictures into an
empty catalog, in a database of the bench's own (--db-name, wiped before every run) in REVIMG_DATA_DIR:

    REVIMG_DATA_DIR=/path/to/var python bench/crawl_pace.py [--classes 4] [--per-class 30] [--runs 3]

The pace is REVIMG_HTTP_MIN_INTERVAL (default 0.2 s, production's); --interval overrides it. The limit: every
host takes one request per interval, so a crawl cannot take less than the busiest host's requests x interval
(Commons' API and its file server: one request per picture each). Printed per run: the steps' seconds, pictures
per minute of the whole crawl and of its images step (planning, then fetching), and the ratio to the limit,
with the load average; medians per mode last. The model is loaded before timing (a crawl pays that once).

Modes, alternated round by round: `serial` fetches one image after the other and embeds them all afterwards
(the crawl before ingest.overlap); `overlapped` downloads ahead in a thread of its own and embeds each image
as it is stored (what `manage.py crawl` does).
"""

import argparse
import io
import logging
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "caltech101-dev"
FIXTURES = ROOT.parent / "shared" / "fixtures" / "wikimedia"
# Each Wikimedia service on a loopback address of its own, as each is a host of its own.
HOSTS = {"sparql": "127.0.0.1", "wikidata": "127.0.0.2", "wikipedia": "127.0.0.3", "commons": "127.0.0.4"}
FILE_HOST = "127.0.0.5"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3, help="rounds; each runs every mode once")
    parser.add_argument(
        "--modes", default="serial,overlapped", help=f"comma-separated, of: {', '.join(MODES)}"
    )
    parser.add_argument("--interval", type=float, help="seconds between two requests to a host")
    parser.add_argument("--width", type=int, default=960, help="width of the pictures served")
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--db-name", default="crawl_pace_bench", help="the bench's own database (wiped)")
    return parser.parse_args()


def setup_django(args):
    if os.environ.get("DATABASE_URL"):
        sys.exit("crawl_pace wipes its database before each run: it runs on the embedded server only")
    os.environ["REVIMG_DB_NAME"] = args.db_name
    data_dir = Path(os.environ.get("REVIMG_DATA_DIR", ROOT / "var")).resolve()
    os.environ["REVIMG_MEDIA_ROOT"] = str(data_dir / f"{args.db_name}-media")
    if args.interval is not None:
        os.environ["REVIMG_HTTP_MIN_INTERVAL"] = str(args.interval)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def pictures(dataset, count, width):
    """count distinct JPEGs, the dataset's photos spread over its classes, resized to width."""
    from PIL import Image

    files = sorted(dataset.glob("*/*.jpg"))
    step = max(1, len(files) // count)
    out = []
    for path in files[::step][:count]:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.BICUBIC)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            out.append(buffer.getvalue())
    return out


def timed(stand_in_class):
    """The stand-in, also noting when each request arrived: {route: [perf_counter() seconds]}."""

    class TimedWikimedia(stand_in_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.arrivals = defaultdict(list)

        def handle(self, request):
            self.arrivals[self.route(request.path)].append(time.perf_counter())
            return super().handle(request)

    return TimedWikimedia


def serve_stand_in(args, conn):
    """In a process of its own (the crawler's process then runs only the crawler, as against Wikimedia): the
    stand-in on its loopback hosts, with classes x per_class pictures to crawl. Sends the base URLs, then
    answers "clear" (forget the requests) and "report" (the requests' routes and arrival times) until "stop"."""
    from pytest_httpserver import HTTPServer

    from tests.crawl_server import FakeWikimedia

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with ExitStack() as stack:
        servers = {}
        for route, host in [*HOSTS.items(), ("file", FILE_HOST)]:
            server = HTTPServer(host=host, port=0, threaded=True)
            server.start()
            stack.callback(server.stop)
            servers[route] = server
        wiki = timed(FakeWikimedia)(servers["sparql"], FIXTURES, hosts=servers)
        photos = iter(pictures(args.dataset, args.classes * args.per_class, args.width))
        for k in range(args.classes):
            # Twice as many instances as gallery pictures wanted, as the crawler asks for.
            names = [f"Class {k} instance {n}.jpg" for n in range(2 * (args.per_class - 1))]
            wiki.add_gallery_class(f"Q{7000 + k}", f"class {k}", f"Class {k}.jpg", names, 800_000 + 1000 * k)
            for name in [f"Class {k}.jpg", *names[: args.per_class - 1]]:
                wiki.file_bytes[name] = next(photos)
        conn.send({name: wiki.url(path) for name, path in BASE_URLS.items()})
        for message in iter(conn.recv, "stop"):
            if message == "clear":
                wiki.log.clear()
                wiki.arrivals.clear()
            else:
                conn.send((Counter(route for route, _, _ in wiki.log), dict(wiki.arrivals)))


# The base URL settings, and the stand-in's path for each.
BASE_URLS = {
    "REVIMG_WIKIDATA_SPARQL_URL": "/sparql",
    "REVIMG_WIKIDATA_API_URL": "/wikidata/api.php",
    "REVIMG_WIKIPEDIA_API_URL": "/wikipedia/api.php",
    "REVIMG_COMMONS_API_URL": "/commons/api.php",
}


class StandIn:
    """The crawler's side of the stand-in's process."""

    def __init__(self, stack, args):
        from django.db import connections

        connections.close_all()  # the child is forked: it must not share this process's connection
        self.conn, child_end = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=serve_stand_in, args=(args, child_end)
        )
        self.process.start()
        stack.callback(self.stop)
        self.urls = self.conn.recv()

    def configure(self):
        from django.conf import settings

        from catalog.http import crawler

        for name, url in self.urls.items():
            setattr(settings, name, url)
        settings.REVIMG_REDIS_URL = ""  # each process paces itself (one crawling process here)
        crawler.reset_session()
        return settings.REVIMG_HTTP_MIN_INTERVAL

    def clear(self):
        self.conn.send("clear")

    def report(self):
        self.conn.send("report")
        return self.conn.recv()

    def stop(self):
        self.conn.send("stop")
        self.process.join(30)


def wipe(media_root):
    from catalog.models import CatalogImage, WikidataClass
    from ingest.models import ClassCrawl, ImageSource, IngestRun

    for model in (ImageSource, ClassCrawl, IngestRun, CatalogImage, WikidataClass):
        model.objects.all().delete()
    shutil.rmtree(media_root, ignore_errors=True)


def warm_model(photo):
    from catalog import store

    store.embed([store.prepare(photo)])


# How the images step runs: (download ahead, embed as stored).
MODES = {
    # One image after the other, downloaded, decoded and stored; every embedding afterwards (before overlap).
    "serial": (0, False),
    # A download thread ahead of the storing, each image embedded as it is stored (what `crawl` does).
    "overlapped": (2, True),
}


def one_run(wiki, args, interval, mode):
    from django.conf import settings

    from catalog.models import CatalogImage
    from ingest import pipeline

    ahead, embed = MODES[mode]
    wipe(settings.MEDIA_ROOT)
    wiki.clear()
    load = os.getloadavg()[0]
    steps = {}
    started = time.perf_counter()
    ids, _ = pipeline.run_classes(args.classes)
    steps["classes"] = time.perf_counter() - started
    images = pipeline.run_images(ids, args.per_class, embed=embed, ahead=ahead)
    steps["images"] = time.perf_counter() - started - steps["classes"]
    pipeline.run_embeddings()
    total = time.perf_counter() - started
    steps["embeddings"] = total - steps["classes"] - steps["images"]
    sent, arrivals = wiki.report()  # perf_counter() is the machine's monotonic clock in either process
    # The fetching: from the first picture's request to Commons to the end of the images step.
    fetching = started + steps["classes"] + steps["images"] - min(arrivals["commons"])
    # Where the fetching lost time: the gaps between two requests to Commons beyond the pace's interval.
    commons = sorted(arrivals["commons"])
    gaps = [later - earlier for earlier, later in zip(commons, commons[1:], strict=False)]
    stored = CatalogImage.objects.filter(embedding__isnull=False).count()
    # No pace (--interval 0): no limit but the machine's; the ratios then read against nothing.
    limit_s = max(sent.values()) * interval or float("nan")
    fetch_limit_s = sent["commons"] * interval or float("nan")
    return {
        "mode": mode,
        "load": load,
        "pictures": stored,
        "created": images.run.created,
        "steps": steps,
        "total": total,
        "per_min": stored * 60 / total,
        "fetch_per_min": stored * 60 / steps["images"],
        "fetching_per_min": stored * 60 / fetching,
        "limit_per_min": stored * 60 / limit_s,
        "fetch_limit_per_min": stored * 60 / fetch_limit_s,
        "sent": dict(sent),
        "median_gap": statistics.median(gaps),
        "lost": sum(max(0.0, gap - interval) for gap in gaps),
        "lost_in_long_gaps": sum(gap - interval for gap in gaps if gap > interval + 0.3),
        "long_gaps": [(n + 1, round(gap, 1)) for n, gap in enumerate(gaps) if gap > interval + 0.3],
    }


def report(n, run):
    steps = " + ".join(f"{name} {seconds:.1f}" for name, seconds in run["steps"].items())
    print(
        f"round {n}, {run['mode']}: load {run['load']:.2f}; {run['pictures']} pictures embedded in {run['total']:.1f} s ({steps}); "
        f"{run['per_min']:.0f}/min = {run['per_min'] / run['limit_per_min']:.2f}x the pace's limit "
        f"({run['limit_per_min']:.0f}/min); images step {run['fetch_per_min']:.0f}/min "
        f"= {run['fetch_per_min'] / run['fetch_limit_per_min']:.2f}x, from its first picture on "
        f"{run['fetching_per_min']:.0f}/min = {run['fetching_per_min'] / run['fetch_limit_per_min']:.2f}x; "
        f"Commons asked every {run['median_gap']:.3f} s (median), {run['lost']:.1f} s lost beyond the pace, "
        f"{run['lost_in_long_gaps']:.1f} s of it in gaps 0.3 s longer (before picture, seconds: "
        f"{run['long_gaps'][:8]}); requests {run['sent']}",
        flush=True,
    )


def main():
    args = parse_args()
    setup_django(args)
    with ExitStack() as stack:
        wiki = StandIn(stack, args)
        interval = wiki.configure()
        print(
            f"{args.classes} classes x {args.per_class} pictures ({args.width} px), "
            f"REVIMG_HTTP_MIN_INTERVAL {interval} s per host",
            flush=True,
        )
        warm_model(pictures(args.dataset, 1, args.width)[0])
        runs = []
        modes = args.modes.split(",")
        for n in range(1, args.runs + 1):
            for mode in modes if n % 2 else modes[::-1]:  # alternate which mode goes first
                runs.append(one_run(wiki, args, interval, mode))
                report(n, runs[-1])
    for mode in modes:
        summarize(mode, [run for run in runs if run["mode"] == mode])


def summarize(mode, runs):
    keys = ("load", "per_min", "fetch_per_min", "fetching_per_min")
    median = {key: statistics.median(r[key] for r in runs) for key in keys}
    limit, fetch_limit = runs[0]["limit_per_min"], runs[0]["fetch_limit_per_min"]
    print(
        f"{mode}, median of {len(runs)}: {median['per_min']:.0f} pictures/min = {median['per_min'] / limit:.2f}x "
        f"the limit of {limit:.0f}/min; images step {median['fetch_per_min']:.0f}/min "
        f"= {median['fetch_per_min'] / fetch_limit:.2f}x, from its first picture on "
        f"{median['fetching_per_min']:.0f}/min = {median['fetching_per_min'] / fetch_limit:.2f}x; "
        f"load {median['load']:.2f}"
    )


if __name__ == "__main__":
    main()
