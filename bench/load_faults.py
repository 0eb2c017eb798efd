"""Does the server keep answering under hostile load and a database outage, within bounded memory?

Run it on the dev-set catalog, imported once into your data dir (README, "Search latency"):

    export REVIMG_DATA_DIR=/path/to/var
    python manage.py import_images ../shared/datasets/caltech101-dev
    python bench/load_faults.py                         # 40 s, the database stopped at 15 s
    python bench/load_faults.py --duration 20 --outage-at 8        # a quick look

It starts gunicorn (the repo's gunicorn.conf.py, per-client limit off) on a free loopback port, in a temporary
folder of its own, and for --duration seconds sends at once:
- searches: --clients threads, each uploading photos of a fixed seeded sample, one after another;
- "more like this" for random catalog images, from one thread;
- hostile requests, each from a thread of its own, one after another: a 49-megapixel one-colour PNG (a small
  file that decodes huge), a 48-megapixel progressive JPEG (the costliest photo a query may send), a
  Content-Length of 200 MB with only the first bytes sent, and --slow connections
  that send their request a byte every half second (half in the headers, half in an upload body).
At --outage-at seconds the embedded PostgreSQL is stopped (`pg_ctl stop -m fast`, as `manage.py
embedded_postgres stop` does); the app is not told, and must start it again itself.

It prints the date, the cores and the load average, then: answers by kind of request and status (errors by
code), searches answered per second, the peak resident memory of each worker (sampled every 0.2 s) and of
the master, and the recovery: seconds from the stop to the first search answered 200 after it, with the
answers given in between.
"""

import argparse
import datetime
import http.client
import itertools
import random
import socket
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import psutil
from serve_load import (
    DATASET,
    LOOPBACK,
    MB,
    cores,
    error_kind,
    load_average,
    multipart_body,
    post_search,
    print_logged_exceptions,
    sample_photos,
    setup_django,
    start_gunicorn,
)

HUGE_SIDE = 7000  # 49 megapixels, about 150 KB as a one-colour PNG
LARGE_PHOTO = (8000, 6000)  # 48 megapixels, a phone camera's full size
SAMPLE_EVERY_S = 0.2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET, help="folder of class folders of photos")
    parser.add_argument("--duration", type=float, default=40, help="seconds of load (default 40)")
    parser.add_argument(
        "--outage-at", type=float, default=15, help="second at which the database is stopped (default 15)"
    )
    parser.add_argument("--clients", type=int, default=8, help="threads sending searches (default 8)")
    parser.add_argument("--slow", type=int, default=20, help="slow connections held open (default 20)")
    parser.add_argument("--queries", type=int, default=100, help="photos to cycle through (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="of the sample of photos (default 0)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds before a request is an error")
    args = parser.parse_args()
    if not 0 < args.outage_at < args.duration:
        parser.error("--outage-at must fall within --duration")
    return args


# --- Hostile requests ---------------------------------------------------------------------------------


def one_colour_png(side):
    """A valid side x side PNG of one colour: a few hundred KB of file for side² pixels once decoded."""

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    row = b"\x00" + b"\x80" * (3 * side)
    pixels = zlib.compress(row * side, 9)
    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def pixel_bomb_query(folder, k=10):
    bomb = folder / "bomb.png"
    bomb.write_bytes(one_colour_png(HUGE_SIDE))
    return multipart_body(bomb, k)


def large_photo_query(photo, folder, k=10):
    """A photo blown up to 48 megapixels, saved as a progressive JPEG: the costliest picture to decode that
    a query may send (libjpeg keeps a progressive file's every coefficient, whatever the scale asked)."""
    from PIL import Image

    large = folder / "large.jpg"
    with Image.open(photo) as image:
        image.convert("RGB").resize(LARGE_PHOTO).save(large, quality=85, progressive=True)
    return multipart_body(large, k)


def oversized_upload(port, timeout):
    """Declare 200 MB and send 64 KB: the answer must come without the rest."""
    started = time.perf_counter()
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as conn:
        conn.sendall(
            b"POST /api/search/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 209715200\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n\r\n" + b"\0" * 65536
        )
        status_line = conn.makefile("rb").readline()
    status = int(status_line.split()[1]) if status_line.startswith(b"HTTP/") else 0
    return status, (time.perf_counter() - started) * 1000


def similar(port, image_id, timeout):
    started = time.perf_counter()
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", f"/api/images/{image_id}/similar/?k=10")
        response = connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        connection.close()


def hold_slow_connections(port, count, stop):
    """count connections trickling a byte every half second until stop is set; returns how many the server
    closed on them (a server may cut slow clients off; it must not stop answering others)."""
    starts = [
        b"GET /api/classes/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ",
        b"POST /api/search/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900000\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n",
    ]
    connections, closed = [], 0
    for index in range(count):
        conn = socket.create_connection((LOOPBACK, port), timeout=5)
        conn.sendall(starts[index % 2])
        connections.append(conn)
    while not stop.wait(0.5):
        for conn in list(connections):
            try:
                conn.send(b"x")
            except OSError:
                connections.remove(conn)
                closed += 1
    for conn in connections:
        conn.close()
    return closed


# --- The run ------------------------------------------------------------------------------------------


class Recorder:
    """Every answer: (seconds since the start, kind, status or error)."""

    def __init__(self):
        self.started = time.perf_counter()
        self.lock = threading.Lock()
        self.answers = []

    def now(self):
        return time.perf_counter() - self.started

    def record(self, kind, send):
        sent_at = self.now()
        try:
            status, _ = send()
            outcome = f"HTTP {status}"
        except Exception as exc:  # a refused connection or a timeout is a result, not a crash
            outcome = error_kind(exc)
        with self.lock:
            self.answers.append((sent_at, self.now(), kind, outcome))


def repeat_until(deadline, recorder, kind, make_send):
    counter = itertools.count()
    while recorder.now() < deadline:
        recorder.record(kind, make_send(next(counter)))


def sample_memory(server, stop, peaks):
    """Peak RSS per process of the server (master and workers, replacements included)."""
    while not stop.wait(SAMPLE_EVERY_S):
        for process in [server.psutil, *server.workers()]:
            try:
                peaks[process.pid] = max(peaks[process.pid], process.memory_info().rss)
            except psutil.NoSuchProcess:
                continue


def stop_database_at(recorder, when, outage):
    from django.conf import settings

    from revimg import embedded_pg

    time.sleep(max(0.0, when - recorder.now()))
    pgdata = settings.DATABASES["default"]["PGDATA"]
    outage["pid_before"] = embedded_pg.running_pid(pgdata)
    outage["at"] = recorder.now()
    embedded_pg.stop(pgdata)
    outage["stopped"] = recorder.now()


def run(server, args, queries, image_ids, hostile):
    recorder, stop, peaks, outage = Recorder(), threading.Event(), defaultdict(int), {}
    port, deadline = server.port, args.duration
    threads = [
        threading.Thread(target=sample_memory, args=(server, stop, peaks)),
        threading.Thread(target=stop_database_at, args=(recorder, args.outage_at, outage)),
    ]
    for client in range(args.clients):
        offset = client * len(queries) // max(1, args.clients)

        def search_sender(i, offset=offset):
            return lambda: post_search(port, queries[(offset + i) % len(queries)], args.timeout)

        threads.append(
            threading.Thread(target=repeat_until, args=(deadline, recorder, "search", search_sender))
        )
    rng = random.Random(args.seed)
    senders = {
        "similar": lambda i: lambda: similar(port, rng.choice(image_ids), args.timeout),
        "pixel bomb": lambda i: lambda: post_search(port, hostile["bomb"], args.timeout),
        "48 MP photo": lambda i: lambda: post_search(port, hostile["large"], args.timeout),
        "200 MB declared": lambda i: lambda: oversized_upload(port, args.timeout),
    }
    for kind, make_send in senders.items():
        threads.append(threading.Thread(target=repeat_until, args=(deadline, recorder, kind, make_send)))
    slow_result = {}
    slow = threading.Thread(
        target=lambda: slow_result.update(closed=hold_slow_connections(port, args.slow, stop))
    )
    slow.start()
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        thread.join()
    stop.set()
    threads[0].join()
    slow.join()
    return recorder, peaks, outage, slow_result.get("closed", 0)


# --- Report -------------------------------------------------------------------------------------------


def print_answers(recorder, args):
    by_kind = defaultdict(Counter)
    for _, _, kind, outcome in recorder.answers:
        by_kind[kind][outcome] += 1
    print("\nanswers by kind of request (status: count)")
    for kind, outcomes in by_kind.items():
        listed = ", ".join(f"{outcome}: {count}" for outcome, count in sorted(outcomes.items()))
        print(f"  {kind:<16} {sum(outcomes.values()):>6}   {listed}")
    answered = by_kind["search"]["HTTP 200"]
    print(f"searches answered 200: {answered} in {args.duration:g} s ({answered / args.duration:.1f}/s)")


def print_memory(server, peaks):
    print(f"\npeak resident memory (sampled every {SAMPLE_EVERY_S} s)")
    master = server.psutil.pid
    print(f"  master  pid {master:>7}: {peaks.get(master, 0) / MB:6.0f} MB")
    workers = {pid: rss for pid, rss in peaks.items() if pid != master}
    for pid, rss in sorted(workers.items()):
        print(f"  worker  pid {pid:>7}: {rss / MB:6.0f} MB")
    if workers:
        print(f"  the largest worker: {max(workers.values()) / MB:.0f} MB")


def print_recovery(recorder, outage):
    if "stopped" not in outage:
        print("\nthe database was never stopped")
        return
    searches = sorted(
        (sent, done, outcome) for sent, done, kind, outcome in recorder.answers if kind == "search"
    )
    first_ok = next(
        (done for sent, done, outcome in searches if sent >= outage["stopped"] and outcome == "HTTP 200"),
        None,
    )
    failed = Counter(
        outcome for sent, done, outcome in searches if done >= outage["at"] and outcome != "HTTP 200"
    )
    print(
        f"\ndatabase stopped at {outage['at']:.1f} s (the stop took {outage['stopped'] - outage['at']:.2f} s)"
    )
    print(f"  searches that failed from then on: {dict(failed) or 'none'}")
    if first_ok is None:
        print("  no search sent after the stop was answered 200: NOT RECOVERED")
    else:
        print(
            f"  recovered: the first search sent after the stop answered 200 at +{first_ok - outage['at']:.2f} s"
        )


def main():
    args = parse_args()
    started_at = datetime.datetime.now().astimezone()
    setup_django()
    from django.db import connection

    from catalog.models import CatalogImage

    searchable = CatalogImage.objects.searchable()
    catalog_size = searchable.count()
    image_ids = list(searchable.order_by("?").values_list("id", flat=True)[:1000])
    connection.close()
    if not image_ids:
        sys.exit(
            "the catalog is empty: run `python manage.py import_images ../shared/datasets/caltech101-dev`"
        )
    photos = sample_photos(args.dataset, args.queries, args.seed)
    queries = [multipart_body(photo, 10) for photo in photos]
    print(f"revimg load and faults, {started_at:%Y-%m-%d %H:%M:%S %Z}")
    print(
        f"nproc {cores()}; catalog of {catalog_size} searchable images; {args.clients} search clients, "
        f"{args.slow} slow connections, {args.duration:g} s, database stopped at {args.outage_at:g} s"
    )
    print(f"load average at start: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="load_faults.") as temp:
        hostile = {"bomb": pixel_bomb_query(Path(temp)), "large": large_photo_query(photos[0], Path(temp))}
        server = start_gunicorn(Path(temp) / "gunicorn")
        try:
            server.wait_ready(workers=1)
            recorder, peaks, outage, slow_closed = run(server, args, queries, image_ids, hostile)
        finally:
            server.stop()
        print_logged_exceptions(server, most=5)  # before its folder goes: why it answered what it did
    print_answers(recorder, args)
    print(f"slow connections closed by the server: {slow_closed} of {args.slow}")
    print_memory(server, peaks)
    print_recovery(recorder, outage)
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
