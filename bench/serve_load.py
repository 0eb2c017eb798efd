"""How many searches per second does a real server give? gunicorn under load, against what these cores can do.

Run it on the dev-set catalog, imported once into your data dir (README, "Search latency"):

    export REVIMG_DATA_DIR=/path/to/var
    python manage.py import_images ../shared/datasets/caltech101-dev
    python bench/serve_load.py                                    # 30 s per level, all three parts
    python bench/serve_load.py --duration 5 --concurrency 1,4 --skip-runserver     # a quick look

It starts and stops its own servers on free loopback ports, with the per-client search limit off; their pid
file, metrics folder and logs live in a temporary folder, so a server you have running is never touched.
gunicorn runs with the repo's gunicorn.conf.py as it is (REVIMG_WEB_WORKERS, default one per core).

Queries are a fixed seeded sample of the dataset's photos, cycled through, each sent as a multipart upload to
POST /api/search/ (field `image`, k=10) whose body is built once. Each level keeps --concurrency requests in
flight (one per client thread, a new connection each) for --duration seconds, after --warmup seconds of the
same load that are not counted. Errors are answers other than 200 and connection errors, counted by kind; a
request still unanswered after --timeout seconds is one.

It prints the date, the cores, the load average before and after each part, and:
1. gunicorn at each level: searches/s, p50/p95/p99 latency, errors; then where the time went, from the
   server's own point of view: the mean of each search phase (its /metrics, scraped before and after the
   level) beside the client's mean, and the CPU milliseconds per search of gunicorn's processes, of
   PostgreSQL's and of this client, how many cores that kept busy, and the rate these cores would give if
   CPU were the only limit. After the last level, the memory of the master and each worker (RSS, USS, PSS).
2. The in-process ceiling: the same searches through Django's test client, no server, one process per core
   for as long: the most a server could reach on these cores. Here each phase's CPU time is measured too.
3. runserver (Django's development server) at the same levels; --skip-runserver leaves it out.
4. A summary per level: gunicorn's throughput against the ceiling's, its CPU per search against the
   ceiling's (the server's own cost, which does not depend on how busy the machine is), and gunicorn's p50
   against runserver's; then the same as Markdown rows for the README.
"""

import argparse
import datetime
import http.client
import itertools
import math
import mimetypes
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "caltech101-dev"
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
SEARCH_PATH = "/api/search/"
BOUNDARY = "revimg-serve-load-7d1f0c9a"
PHASES = ("embedding", "neighbours", "verdict")  # search.service.PHASES, as /metrics labels them
SEARCH_VIEW = "api-search"  # the URL name /metrics labels POST /api/search/ with
# Bounds on what should take seconds: a server not ready by then is broken, not slow.
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 40  # gunicorn's graceful_timeout is 30 s
MB = 1024 * 1024
NAN = float("nan")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DATASET, help="folder of class folders of photos")
    parser.add_argument("--duration", type=float, default=30, help="seconds each level sends (default 30)")
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of load before each level (default 3)"
    )
    parser.add_argument(
        "--concurrency",
        type=concurrency_levels,
        default=[1, 4, 16],
        help="comma-separated numbers of requests in flight (default 1,4,16)",
    )
    parser.add_argument("--queries", type=int, default=200, help="photos to cycle through (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="of the sample of photos (default 0)")
    parser.add_argument("--k", type=int, default=10, help="results asked for (default 10)")
    parser.add_argument(
        "--timeout", type=float, default=30, help="seconds before a request is an error (default 30)"
    )
    parser.add_argument("--skip-runserver", action="store_true", help="leave out Django's development server")
    return parser.parse_args()


def concurrency_levels(text):
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if min(levels) < 1 or max(levels) > 256:
        raise argparse.ArgumentTypeError("each level must be between 1 and 256")
    return levels


def cores():
    """The cores this process may run on (what nproc prints)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revimg.settings")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import django

    django.setup()


# --- Queries ------------------------------------------------------------------------------------------


def sample_photos(dataset, count, seed):
    photos = sorted(p for p in dataset.glob("*/*") if p.is_file() and not p.name.startswith("."))
    if not photos:
        sys.exit(f"no photos under {dataset}")
    return random.Random(seed).sample(photos, min(count, len(photos)))


def multipart_body(photo, k):
    """(Content-Type, body) of one search upload, built once so that sending costs the client nothing."""
    content_type = mimetypes.guess_type(photo.name)[0] or "application/octet-stream"
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="k"\r\n\r\n{k}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{photo.name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return f"multipart/form-data; boundary={BOUNDARY}", head + photo.read_bytes() + tail


# --- Results ------------------------------------------------------------------------------------------


def percentile(ordered, share):
    """Nearest-rank percentile of sorted samples."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else NAN


@dataclass
class LevelResult:
    """One level: what the client saw, and what it cost the server's side."""

    concurrency: int
    latencies_ms: list = field(default_factory=list)  # of the 200 answers
    errors: Counter = field(default_factory=Counter)  # kind -> count
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    app_cpu_s: float = NAN  # the server's processes (the test-client processes for the ceiling)
    postgres_cpu_s: float = NAN  # NaN: an outside database, whose processes we cannot see

    @property
    def searches(self):
        return len(self.latencies_ms)

    @property
    def throughput(self):
        return self.searches / self.elapsed_s if self.elapsed_s else 0.0

    def latency(self, share):
        return percentile(sorted(self.latencies_ms), share)

    @property
    def mean_ms(self):
        return sum(self.latencies_ms) / len(self.latencies_ms) if self.latencies_ms else NAN

    def per_search_ms(self, seconds):
        return seconds / self.searches * 1000 if self.searches else NAN

    @property
    def server_side_cpu_ms(self):
        """CPU ms per search of the app and its database: what serving one search costs these cores."""
        postgres = 0.0 if math.isnan(self.postgres_cpu_s) else self.postgres_cpu_s
        return self.per_search_ms(self.app_cpu_s + postgres)

    @property
    def error_count(self):
        return sum(self.errors.values())

    def errors_text(self):
        if not self.errors:
            return "0"
        kinds = ", ".join(f"{kind}: {count}" for kind, count in self.errors.most_common())
        return f"{self.error_count} ({kinds})"


def print_level_header():
    print(f"  {'conc':>4} {'searches':>8} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  errors")


def print_level(result):
    print(
        f"  {result.concurrency:>4} {result.searches:>8} {result.throughput:>7.1f} {result.latency(0.50):>8.1f}"
        f" {result.latency(0.95):>8.1f} {result.latency(0.99):>8.1f}  {result.errors_text()}"
    )


def print_cpu(result, label, with_client=True):
    """CPU ms per search of each side, how many cores that kept busy, and the rate these cores would give
    if CPU were the only limit (every core ours, the same CPU per search)."""
    parts = [f"{label} {result.per_search_ms(result.app_cpu_s):.1f}"]
    if not math.isnan(result.postgres_cpu_s):
        parts.append(f"PostgreSQL {result.per_search_ms(result.postgres_cpu_s):.1f}")
    used_ms = result.server_side_cpu_ms
    if with_client:
        parts.append(f"this client {result.per_search_ms(result.client_cpu_s):.1f}")
        used_ms += result.per_search_ms(result.client_cpu_s)
    busy = used_ms * result.searches / 1000 / result.elapsed_s if result.elapsed_s else NAN
    print(
        f"       CPU ms per search: {', '.join(parts)}; {busy:.2f} of {cores()} cores busy;"
        f" CPU-bound limit {ratio(cores() * 1000, used_ms):.1f}/s; load average now {load_average()}"
    )


# --- The HTTP client ----------------------------------------------------------------------------------


def post_search(port, query, timeout):
    """Send one upload; (status, ms). A new connection each time, as most clients of a search make: a kept
    connection that a server dropped while idle would count as an error."""
    content_type, body = query
    started = time.perf_counter()
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("POST", SEARCH_PATH, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        connection.close()


def error_kind(exc):
    # socket.timeout is TimeoutError since Python 3.10
    return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


def send_load(port, queries, concurrency, seconds, timeout):
    """Keep `concurrency` requests in flight for `seconds`. Each thread sends nothing after the deadline, so
    a level ends at most `timeout` seconds after it (a request in flight then still counts)."""
    result = LevelResult(concurrency)
    next_query = itertools.count()  # shared by the threads: next() on it is atomic under the GIL
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()

    def client_thread():
        latencies, errors = [], Counter()
        while time.perf_counter() < deadline:
            query = queries[next(next_query) % len(queries)]
            try:
                status, elapsed_ms = post_search(port, query, timeout)
            except Exception as exc:  # a refused connection or a timeout is a result, not a crash
                errors[error_kind(exc)] += 1
                continue
            if status == 200:
                latencies.append(elapsed_ms)
            else:
                errors[f"HTTP {status}"] += 1
        with lock:
            result.latencies_ms.extend(latencies)
            result.errors.update(errors)

    started, cpu_started = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 10)
    result.elapsed_s = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - cpu_started
    return result


# --- Servers ------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class Server:
    """A server process this benchmark started, in a session of its own, with its port and its log file."""

    def __init__(self, name, command, workdir, ready_path):
        self.name, self.ready_path = name, ready_path
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "metrics").mkdir()
        env = {
            **os.environ,
            "HOST": f"{LOOPBACK}:{self.port}",
            "REVIMG_ANON_SEARCH_RATE": "",  # no per-client limit: a benchmark is no abuse
            "REVIMG_ANON_SIMILAR_RATE": "",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),  # this server's own, emptied at start
        }
        self.log_path = workdir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [part.replace("{port}", str(self.port)) for part in command],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.psutil = psutil.Process(self.process.pid)

    def get(self, path, timeout=10):
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def workers(self):
        return self.psutil.children()

    def wait_ready(self, workers=0):
        """Until ready_path answers 200 and `workers` children are forked; exits if it dies or never is."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"exited with status {self.process.returncode} before it was ready")
            try:
                ready = self.get(self.ready_path, timeout=5)[0] == 200
            except OSError:
                ready = False
            if ready and len(self.workers()) >= workers:
                return
            time.sleep(0.5)
        self.stop()
        self.fail(f"was not ready after {READY_TIMEOUT_S} s")

    def fail(self, why):
        tail = self.log_path.read_text(errors="replace")[-3000:]
        sys.exit(f"{self.name} {why}; the end of its log:\n{tail}")

    def stop(self, stop_signal=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: only what we started
                self.process.wait(10)


def start_gunicorn(workdir):
    # --pid: a file of our own, never the data dir's gunicorn.pid that a real server of it may own.
    command = [str(VENV_BIN / "gunicorn"), "revimg.wsgi", "--pid", str(workdir / "gunicorn.pid")]
    return Server("gunicorn", command, workdir, "/readyz")


def start_runserver(workdir):
    command = [sys.executable, "manage.py", "runserver", "--noreload", LOOPBACK + ":{port}"]
    # /healthz, not /readyz: runserver loads the model at its first search (the warm-up), not at start.
    return Server("runserver", command, workdir, "/healthz")


def tree_cpu_seconds(process):
    """CPU seconds of a process, of its live children, and of its children that have exited (the kernel
    adds those to children_user/system when they are reaped: a recycled gunicorn worker, or a PostgreSQL
    backend whose connection closed, still counts)."""
    if process is None:
        return NAN
    try:
        times = process.cpu_times()
        children = process.children()
    except psutil.NoSuchProcess:
        return NAN
    total = times.user + times.system + times.children_user + times.children_system
    for child in children:
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:  # gone between listing and reading
            continue
        total += child_times.user + child_times.system
    return total


def postgres_process():
    """The embedded PostgreSQL's postmaster (its backends are its children), or None with DATABASE_URL."""
    from django.conf import settings

    from revimg import embedded_pg

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "revimg.embedded_pg":
        return None
    pid = embedded_pg.running_pid(database["PGDATA"])
    return psutil.Process(pid) if pid else None


def search_time_totals(server):
    """{phase or "view": (seconds, count)} so far, from the server's /metrics: each search phase, and the
    whole search view (what the middleware timed)."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = server.get("/metrics")
    if status != 200:
        return {}
    sums, counts = Counter(), Counter()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if family.name == "revimg_search_phase_seconds":
                key = sample.labels.get("phase")
            elif family.name == "revimg_http_request_duration_seconds":
                key = "view" if sample.labels.get("view") == SEARCH_VIEW else None
            else:
                continue
            if key and sample.name.endswith("_sum"):
                sums[key] += sample.value
            elif key and sample.name.endswith("_count"):
                counts[key] += sample.value
    return {key: (sums[key], counts[key]) for key in counts}


@dataclass
class ServerSample:
    """The server's counters at one moment, to subtract: CPU seconds, and /metrics' sums and counts."""

    app_cpu_s: float
    postgres_cpu_s: float
    search_times: dict

    @classmethod
    def take(cls, server, postgres, at_start):
        """A scrape is a request too: taken before the CPU times at a level's start and after them at its
        end, its own cost stays out of the level's."""
        if at_start:
            search_times = search_time_totals(server)
        app_cpu_s, postgres_cpu_s = tree_cpu_seconds(server.psutil), tree_cpu_seconds(postgres)
        if not at_start:
            search_times = search_time_totals(server)
        return cls(app_cpu_s, postgres_cpu_s, search_times)


def mean_search_times_ms(before, after):
    """{phase or "view": mean ms per search} between two samples."""
    means = {}
    for key, (seconds, count) in after.search_times.items():
        seconds_before, count_before = before.search_times.get(key, (0.0, 0))
        if count > count_before:
            means[key] = (seconds - seconds_before) / (count - count_before) * 1000
    return means


def print_server_view(result, means, label):
    if not means:
        print(f"       {label}'s /metrics has no search phases; client end to end {result.mean_ms:.1f} ms")
        return
    phases = ", ".join(f"{phase} {means[phase]:.1f}" for phase in PHASES if phase in means)
    view = f", whole view {means['view']:.1f}" if "view" in means else ""
    print(f"       {label}'s phases, mean ms: {phases}{view}; client end to end {result.mean_ms:.1f}")


def memory_lines(server):
    """RSS, USS and PSS of the server's main process and of each child (gunicorn's workers)."""
    lines = []
    roles = [("master" if server.name == "gunicorn" else "process", server.psutil)]
    roles += [("worker", child) for child in server.workers()]
    for role, process in roles:
        try:
            info = process.memory_full_info()
        except psutil.Error:
            continue
        lines.append(
            f"       {role:<7} pid {process.pid:>7}: RSS {info.rss / MB:5.0f} MB, USS {info.uss / MB:5.0f} MB,"
            f" PSS {info.pss / MB:5.0f} MB"
        )
    return lines


def bench_server(server, queries, args, postgres, workers=0):
    """Every concurrency level against a started server; its results; its memory after the last level."""
    server.wait_ready(workers)
    if workers:
        print(f"  {len(server.workers())} workers ready on {LOOPBACK}:{server.port}")
    print_level_header()
    results = []
    for concurrency in args.concurrency:
        send_load(server.port, queries, concurrency, args.warmup, args.timeout)
        workers_before = {child.pid for child in server.workers()}
        before = ServerSample.take(server, postgres, at_start=True)
        result = send_load(server.port, queries, concurrency, args.duration, args.timeout)
        after = ServerSample.take(server, postgres, at_start=False)
        result.app_cpu_s = after.app_cpu_s - before.app_cpu_s
        result.postgres_cpu_s = after.postgres_cpu_s - before.postgres_cpu_s
        print_level(result)
        print_server_view(result, mean_search_times_ms(before, after), server.name)
        print_cpu(result, server.name)
        if workers and {child.pid for child in server.workers()} != workers_before:
            print("       (a worker was replaced during this level: max_requests recycling, or a crash)")
        results.append(result)
    print("  memory after the run:")
    for line in memory_lines(server):
        print(line)
    if any(kind.startswith("HTTP 5") for result in results for kind in result.errors):
        print_logged_exceptions(server)
    return results


def print_logged_exceptions(server, most=3):
    """The exceptions a server logged most often: why it answered 5xx (its log is deleted at the end)."""
    exception_line = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): .*")
    lines = server.log_path.read_text(errors="replace").splitlines()
    found = Counter(line[:200] for line in lines if exception_line.match(line))
    print(f"  exceptions in {server.name}'s log, most frequent first:")
    for line, count in found.most_common(most):
        print(f"       {count} x {line}")


def bench_gunicorn(queries, args, workdir, postgres):
    from revimg import serving

    workers = serving.web_workers()
    # gunicorn.conf.py lets REVIMG_EMBED_THREADS from the environment win over its share of the cores.
    threads = os.environ.get("REVIMG_EMBED_THREADS") or serving.embed_threads_per_worker(workers)
    print(
        f"\n1. gunicorn revimg.wsgi (gunicorn.conf.py: {workers} gevent workers, {threads} model thread(s) each)"
    )
    print(f"  load average before: {load_average()}")
    load_before = os.getloadavg()[0]
    server = start_gunicorn(workdir)
    try:
        results = bench_server(server, queries, args, postgres, workers)
    finally:
        server.stop(signal.SIGTERM)  # gunicorn's graceful stop
    print(f"  load average after: {load_average()}")
    return workers, results, (load_before, os.getloadavg()[0])


def bench_runserver(queries, args, workdir, postgres):
    print("\n3. manage.py runserver --noreload (Django's development server, a thread per request)")
    print(f"  load average before: {load_average()}")
    server = start_runserver(workdir)
    try:
        results = bench_server(server, queries, args, postgres)
    finally:
        server.stop(signal.SIGINT)  # runserver's clean exit (Ctrl-C); SIGTERM would skip its atexit
    print(f"  load average after: {load_average()}")
    return results


# --- The in-process ceiling ---------------------------------------------------------------------------


def count_phase_cpu(phase_cpu_s):
    """Add each search phase's CPU seconds (this process) to phase_cpu_s, beside the wall time the service
    records: on a busy machine wall time includes waiting for a core, CPU time is the work itself."""
    from search import service

    timed = getattr(service, "_timed", None)
    if timed is None:  # the service changed: no CPU breakdown, the rest still runs
        return

    @contextmanager
    def timed_with_cpu(timings, phase):
        cpu_started = time.process_time()
        with timed(timings, phase):
            yield
        phase_cpu_s[phase] += time.process_time() - cpu_started

    service._timed = timed_with_cpu


def ceiling_process(offset, queries, args, embed_threads, log_path, start_line, results):
    """One process of the ceiling: Django's test client in a loop, as fast as it goes, for args.duration."""
    # Its output (the search log, a line per search) goes to a file, as a server's does.
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    os.environ["REVIMG_EMBED_THREADS"] = str(embed_threads)  # the cores shared out, as gunicorn does
    os.environ["REVIMG_ANON_SEARCH_RATE"] = ""
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # metrics in this process's memory, not in files
    setup_django()
    from django.test import Client

    from search.searchlog import search_finished

    phase_wall_s, phase_cpu_s = Counter(), Counter()
    search_finished.connect(lambda report, **kwargs: phase_wall_s.update(report.timings), weak=False)
    count_phase_cpu(phase_cpu_s)
    client = Client(HTTP_HOST="localhost")

    def one_search(n):
        content_type, body = queries[(offset + n) % len(queries)]
        # A content type that is not the test client's own MULTIPART_CONTENT: the body is sent as it is.
        return client.post(SEARCH_PATH, data=body, content_type=content_type).status_code

    n, warm_until = 0, time.perf_counter() + args.warmup
    while n < 2 or time.perf_counter() < warm_until:  # the first search loads the model
        one_search(n)
        n += 1
    phase_wall_s.clear()
    phase_cpu_s.clear()
    start_line.wait(READY_TIMEOUT_S)  # every process starts timing together
    result = LevelResult(concurrency=1)
    started, cpu_started = time.perf_counter(), time.process_time()
    while time.perf_counter() < started + args.duration:
        n += 1
        sent = time.perf_counter()
        try:
            status = one_search(n)
        except Exception as exc:  # the test client raises a view's exception again
            result.errors[type(exc).__name__] += 1
            continue
        if status == 200:
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
        else:
            result.errors[f"HTTP {status}"] += 1
    result.elapsed_s = time.perf_counter() - started
    result.app_cpu_s = time.process_time() - cpu_started
    results.put((result, dict(phase_wall_s), dict(phase_cpu_s)))


def run_ceiling_processes(queries, args, processes, postgres, workdir):
    """Start the processes and time them from the moment all are warm: (their results added up, phase wall
    seconds, phase CPU seconds)."""
    import multiprocessing
    import queue

    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "test-client.log"
    # spawn: fresh interpreters, no database connection or model inherited from this one
    context = multiprocessing.get_context("spawn")
    start_line, results = context.Barrier(processes + 1), context.Queue()
    embed_threads = max(1, cores() // processes)
    children = [
        context.Process(
            target=ceiling_process,
            # each process starts at another photo
            args=(
                index * len(queries) // processes,
                queries,
                args,
                embed_threads,
                log_path,
                start_line,
                results,
            ),
            daemon=True,
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    try:
        start_line.wait(READY_TIMEOUT_S)
        postgres_before = tree_cpu_seconds(postgres)
        started = time.perf_counter()
        answers = [results.get(timeout=args.duration + args.timeout + 60) for _ in children]
        elapsed = time.perf_counter() - started
        postgres_cpu_s = tree_cpu_seconds(postgres) - postgres_before
    except (threading.BrokenBarrierError, queue.Empty):
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        sys.exit(f"the test-client processes did not finish in time; the end of their log:\n{tail}")
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.terminate()
    total = LevelResult(processes, elapsed_s=elapsed, app_cpu_s=0.0, postgres_cpu_s=postgres_cpu_s)
    phase_wall_s, phase_cpu_s = Counter(), Counter()
    for result, wall, cpu in answers:
        total.latencies_ms.extend(result.latencies_ms)
        total.errors.update(result.errors)
        total.app_cpu_s += result.app_cpu_s
        phase_wall_s.update(wall)
        phase_cpu_s.update(cpu)
    return total, phase_wall_s, phase_cpu_s


def bench_ceiling(queries, args, postgres, workdir):
    processes = cores()
    print(
        f"\n2. in-process ceiling: Django's test client, no server, {processes} processes (one per core),"
        f" {max(1, cores() // processes)} model thread(s) each"
    )
    print(f"  load average before: {load_average()}")
    total, phase_wall_s, phase_cpu_s = run_ceiling_processes(queries, args, processes, postgres, workdir)
    print_level_header()
    print_level(total)
    wall = ", ".join(f"{phase} {total.per_search_ms(phase_wall_s[phase]):.1f}" for phase in PHASES)
    print(f"       phases, mean ms: {wall}; end to end {total.mean_ms:.1f}")
    if phase_cpu_s:
        cpu = ", ".join(f"{phase} {total.per_search_ms(phase_cpu_s[phase]):.1f}" for phase in PHASES)
        outside = total.per_search_ms(total.app_cpu_s - sum(phase_cpu_s.values()))
        print(
            f"       phases, CPU ms per search: {cpu}; outside them (upload, decoding, the answer,"
            f" the test client) {outside:.1f}"
        )
    print_cpu(total, "Django processes", with_client=False)
    print(f"  load average after: {load_average()}")
    return total


# --- Summary ------------------------------------------------------------------------------------------


def ratio(numerator, denominator):
    return numerator / denominator if denominator else NAN


def print_summary(started_at, workers, gunicorn, gunicorn_load, ceiling, runserver):
    print("\nsummary")
    print(
        f"  in-process ceiling: {ceiling.throughput:.1f} searches/s on {ceiling.concurrency} processes,"
        f" {ceiling.server_side_cpu_ms:.1f} CPU ms per search (Django + PostgreSQL)"
    )
    runserver_by_level = {result.concurrency: result for result in runserver}
    for result in gunicorn:
        line = (
            f"  concurrency {result.concurrency:>3}: gunicorn {result.throughput:5.1f}/s ="
            f" {ratio(result.throughput, ceiling.throughput):.2f}x the ceiling's; CPU per search"
            f" {result.server_side_cpu_ms:.1f} ms = {ratio(result.server_side_cpu_ms, ceiling.server_side_cpu_ms):.2f}x"
        )
        other = runserver_by_level.get(result.concurrency)
        if other:
            line += (
                f"; p50 {result.latency(0.5):.1f} ms against runserver's {other.latency(0.5):.1f} ms"
                f" ({ratio(result.latency(0.5), other.latency(0.5)):.2f}x; runserver {other.throughput:.1f}/s)"
            )
        print(line)
    print("\n  as README rows:")
    print(
        "  | date (1-min load average before-after gunicorn) | workers | concurrency | searches/s | p50 / p95 / p99 ms | errors"
        " | ceiling /s (ratio) | runserver /s, p50 ms |"
    )
    load = "-".join(f"{value:.1f}" for value in gunicorn_load)
    for result in gunicorn:
        other = runserver_by_level.get(result.concurrency)
        runserver_cell = f"{other.throughput:.1f}, {other.latency(0.5):.1f}" if other else "-"
        print(
            f"  | {started_at:%d %b %Y %H:%M} ({load}) | {workers} | {result.concurrency}"
            f" | {result.throughput:.1f} | {result.latency(0.5):.1f} / {result.latency(0.95):.1f} /"
            f" {result.latency(0.99):.1f} | {result.error_count} | {ceiling.throughput:.1f}"
            f" ({ratio(result.throughput, ceiling.throughput):.2f}x) | {runserver_cell} |"
        )


def main():
    args = parse_args()
    started_at = datetime.datetime.now().astimezone()
    setup_django()
    from django.db import connection

    from catalog.models import CatalogImage

    # This process joins the embedded database first and holds it until it exits, so the servers started
    # and stopped below never start or stop it: the same PostgreSQL serves every part.
    catalog_size = CatalogImage.objects.searchable().count()
    connection.close()
    if catalog_size == 0:
        sys.exit(
            "the catalog is empty: run `python manage.py import_images ../shared/datasets/caltech101-dev`"
        )
    postgres = postgres_process()
    queries = [
        multipart_body(photo, args.k) for photo in sample_photos(args.dataset, args.queries, args.seed)
    ]
    print(f"revimg serving load, {started_at:%Y-%m-%d %H:%M:%S %Z}")
    print(
        f"nproc {cores()} (CPUs in the machine: {os.cpu_count()}); catalog {catalog_size} searchable images;"
        f" {len(queries)} query photos (seed {args.seed}), k={args.k}; {args.duration:g} s per level after"
        f" {args.warmup:g} s of warm-up; concurrency {','.join(map(str, args.concurrency))}"
    )
    print(f"load average at start: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="serve_load.") as temp:
        workdir = Path(temp)
        workers, gunicorn, gunicorn_load = bench_gunicorn(queries, args, workdir / "gunicorn", postgres)
        ceiling = bench_ceiling(queries, args, postgres, workdir / "ceiling")
        runserver = (
            [] if args.skip_runserver else bench_runserver(queries, args, workdir / "runserver", postgres)
        )
    print_summary(started_at, workers, gunicorn, gunicorn_load, ceiling, runserver)


if __name__ == "__main__":
    main()
