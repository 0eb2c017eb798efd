"""Prometheus metrics at /metrics: requests by view, search phases and outcomes, and the catalog's size.

Under gunicorn every worker is a process of its own. With PROMETHEUS_MULTIPROC_DIR set, each one writes its
metrics to files in that folder and a scrape adds them up (prometheus_client's multiprocess mode). That mode
is fixed when prometheus_client is first imported, so this module imports it only when it first needs it:
the gunicorn master imports this module to call prepare_multiprocess_dir(), before the variable is set,
and must not settle the mode for the workers it is about to fork. For the same reason (the master has no
app registry) catalog models are imported at scrape time.
"""

import hmac
import ipaddress
import os
import sys
import time
from functools import cache
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.csrf import csrf_exempt

from revimg.clientip import client_ip

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A search phase takes 1-10 ms on a quiet machine (README, "Speed"); up to 1 s covers a loaded one.
PHASE_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
# A label value per method a client can invent would make a time series each: the rest are "other".
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


@cache
def instruments():
    """This process's metrics, made on first use rather than at import (see the module's docstring)."""
    from prometheus_client import Counter, Gauge, Histogram

    return SimpleNamespace(
        requests=Counter(
            "revimg_http_requests",
            "Requests answered, by view, method and status",
            ["view", "method", "status"],
        ),
        latency=Histogram(
            "revimg_http_request_duration_seconds", "Time to answer a request, by view", ["view"]
        ),
        in_progress=Gauge(
            "revimg_http_requests_in_progress",
            "Requests being answered, over the live workers",
            multiprocess_mode="livesum",
        ),
        search_phases=Histogram(
            "revimg_search_phase_seconds",
            "Time in each phase of a search: embedding, neighbours (the nearest-neighbour query), verdict",
            ["phase"],
            buckets=PHASE_BUCKETS,
        ),
        searches=Counter(
            "revimg_searches",
            "Searches by kind (upload, url, similar, shared) and outcome (the answer's state: match, closest, "
            "no_match, catalog; or the refusal's code)",
            ["kind", "outcome"],
        ),
    )


# --- Counting -----------------------------------------------------------------------------------------


class MetricsMiddleware:
    """Counts and times every request by the view that answered it. First in MIDDLEWARE: Django turns
    any exception below it into a response, so errors are counted with the status the client got."""

    def __init__(self, get_response):
        self.get_response = get_response
        # Here rather than at import: search's modules need the app registry, which is ready by now.
        from search.searchlog import search_finished

        search_finished.connect(count_search, dispatch_uid="revimg.metrics.count_search")

    def __call__(self, request):
        metrics = instruments()
        started = time.perf_counter()
        with metrics.in_progress.track_inprogress():
            response = self.get_response(request)
        view = view_label(request)
        method = request.method if request.method in METHODS else "other"
        metrics.requests.labels(view, method, str(response.status_code)).inc()
        metrics.latency.labels(view).observe(time.perf_counter() - started)
        return response


def view_label(request):
    """The name of the URL pattern that matched (api-search, index...): never the path, which anyone can
    make up, so the number of time series stays bounded."""
    if request.resolver_match is not None:
        return request.resolver_match.view_name
    if request.path.startswith(settings.STATIC_URL):
        return "static"  # WhiteNoise answers these before any URL is resolved
    return "unmatched"


def count_search(sender, report, **kwargs):
    """search.searchlog.search_finished's listener: the search's outcome and its phases' times."""
    metrics = instruments()
    metrics.searches.labels(report.kind, report.outcome).inc()
    for phase, seconds in report.timings.items():
        metrics.search_phases.labels(phase).observe(seconds)


# --- Reading ------------------------------------------------------------------------------------------


@csrf_exempt  # a POST must get the same 404 as anything else from a stranger, not a CSRF 403
def metrics_view(request):
    """The metrics in Prometheus' text format; a 404 for anyone not allowed, as if nothing were here."""
    if not may_read_metrics(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


def may_read_metrics(request):
    return _bears_token(request) or _from_allowed_network(request)


def _bears_token(request):
    token = settings.REVIMG_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest takes as long wherever the first wrong character is: no guessing it by timing.
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


def _from_allowed_network(request):
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:  # no address, or a forwarded value that is not one
        return False
    # A dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d; the allowed list says a.b.c.d.
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in settings.REVIMG_METRICS_ALLOWED)


def scrape_registry():
    """What one scrape reads: every worker's files in multiprocess mode, else this process's metrics; and
    the catalog's size, counted now."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)  # a registry is a collector too
    registry.register(CatalogCollector())
    return registry


class CatalogCollector:
    """The catalog's size, in one query per scrape: the same figure whichever worker is asked, and never
    stale, unlike a gauge some process would have to keep up to date."""

    def collect(self):
        from django.db.models import Count
        from prometheus_client.core import GaugeMetricFamily

        from catalog.models import CatalogImage

        size = CatalogImage.objects.searchable().aggregate(
            images=Count("id"), classes=Count("wikidata_class", distinct=True)
        )
        yield GaugeMetricFamily(
            "revimg_catalog_images",
            "Searchable catalog images (embedded, not excluded)",
            value=size["images"],
        )
        yield GaugeMetricFamily(
            "revimg_catalog_classes", "Classes with at least one searchable image", value=size["classes"]
        )


# --- gunicorn (called from gunicorn.conf.py's hooks, in the master) -----------------------------------


def prepare_multiprocess_dir(path):
    """Once, before any worker is forked: the folder every worker writes its metrics to.

    Files from a previous run are removed: their processes are gone, and counters start again from zero
    after a restart, which Prometheus expects. The workers inherit the variable.
    """
    values = sys.modules.get("prometheus_client.values")
    if values is not None and values.ValueClass is values.MutexValue:
        raise RuntimeError(
            "prometheus_client was imported before prepare_multiprocess_dir() set "
            f"{MULTIPROC_ENV}: the workers forked from here would each keep their metrics to themselves"
        )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)


def worker_exited(pid):
    """A worker is gone: its live gauges (requests in progress) stop counting. Its counters and histograms
    stay in the sums, as totals must."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
