"""/metrics: who may read it, what requests and searches it counts, the catalog's size, and gunicorn's
multiprocess mode (worker processes whose counts add up in one scrape).

Searches run on a synthetic catalog with the image model replaced by a fixed vector: what is measured
here is the counting, not the model (tests/test_search_api_images.py runs the real one).
"""

import ipaddress
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from catalog.models import CatalogImage
from revimg import metrics
from revimg.env import env_networks
from search import service
from tests.catalog_factories import centre, make_catalog, picture_bytes

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-9f2c"
STRANGER = "203.0.113.9"


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


@pytest.fixture(autouse=True)
def metrics_made_in_this_process():
    # Made now, before any test sets PROMETHEUS_MULTIPROC_DIR: this process keeps its own in memory.
    metrics.instruments()


@pytest.fixture
def catalog():
    return make_catalog(classes=2, per_class=4)


@pytest.fixture
def fixed_embedder(monkeypatch, catalog):
    """The model replaced by one that sees every picture as the first class's centre."""
    vector = centre(next(iter(catalog)).pk)

    class FixedEmbedder:
        def embed(self, images):
            return [vector for _ in images]

    monkeypatch.setattr(service, "get_embedder", FixedEmbedder)


def scrape(client=None):
    """Every sample of one scrape, by (name, labels)."""
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200, response.content
    families = text_string_to_metric_families(response.content.decode())
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def post_upload(api):
    upload = SimpleUploadedFile("photo.jpg", picture_bytes(7))
    return api.post("/api/search/", {"image": upload, "k": "3"}, format="multipart")


# --- Who may read it --------------------------------------------------------------------------------


def test_metrics_look_absent_to_other_addresses():
    stranger = Client(REMOTE_ADDR=STRANGER)

    assert stranger.get("/metrics").status_code == 404
    assert stranger.post("/metrics").status_code == 404


def test_a_forged_forwarded_address_opens_nothing():
    forged = Client(REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_FOR="127.0.0.1")

    assert forged.get("/metrics").status_code == 404


def test_a_wrong_token_is_refused(settings):
    settings.REVIMG_METRICS_TOKEN = TOKEN

    for header in ("Bearer wrong-token", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, "Bearer "):
        assert Client(REMOTE_ADDR=STRANGER, HTTP_AUTHORIZATION=header).get("/metrics").status_code == 404


def test_no_token_is_accepted_when_none_is_set(settings):
    settings.REVIMG_METRICS_TOKEN = ""

    assert Client(REMOTE_ADDR=STRANGER, HTTP_AUTHORIZATION="Bearer ").get("/metrics").status_code == 404


def test_the_right_token_opens_metrics_from_anywhere(settings):
    settings.REVIMG_METRICS_TOKEN = TOKEN

    response = Client(REMOTE_ADDR=STRANGER, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"revimg_catalog_images" in response.content


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_local_addresses_may_read_metrics(address):
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 200


def test_the_allowed_networks_are_read_from_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("REVIMG_METRICS_ALLOWED", "10.0.0.0/8, 2001:db8::/32,192.0.2.7")

    assert env_networks("REVIMG_METRICS_ALLOWED") == [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.7/32"),
    ]


def test_the_allowed_networks_replace_the_local_addresses(settings):
    settings.REVIMG_METRICS_ALLOWED = [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    ]

    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="2001:db8::7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404


@pytest.mark.parametrize("bad", ["localhost", "10.0.0.1/8", "10.0.0.0/33", "127.0.0.1;::1"])
def test_a_bad_allowed_network_stops_start_up(monkeypatch, bad):
    monkeypatch.setenv("REVIMG_METRICS_ALLOWED", bad)

    with pytest.raises(ImproperlyConfigured, match="REVIMG_METRICS_ALLOWED"):
        env_networks("REVIMG_METRICS_ALLOWED")


# --- What it counts ---------------------------------------------------------------------------------


def test_a_search_is_counted_by_view_and_its_phases_observed(fixed_embedder):
    before = scrape()

    response = post_upload(APIClient())

    after = scrape()
    assert response.status_code == 200, response.content
    outcome = response.json()["state"]
    assert (
        delta(before, after, "revimg_http_requests_total", view="api-search", method="POST", status="200")
        == 1
    )
    assert delta(before, after, "revimg_http_request_duration_seconds_count", view="api-search") == 1
    assert delta(before, after, "revimg_searches_total", kind="upload", outcome=outcome) == 1
    for phase in ("embedding", "neighbours", "verdict"):
        assert delta(before, after, "revimg_search_phase_seconds_count", phase=phase) == 1
        assert delta(before, after, "revimg_search_phase_seconds_sum", phase=phase) > 0


def test_more_like_this_is_counted_as_a_catalog_answer_without_an_embedding_phase(catalog):
    image = next(iter(catalog.values()))[0]
    before = scrape()

    response = APIClient().get(f"/api/images/{image.pk}/similar/?k=3")

    after = scrape()
    assert response.status_code == 200
    assert (
        delta(before, after, "revimg_http_requests_total", view="image-similar", method="GET", status="200")
        == 1
    )
    assert delta(before, after, "revimg_search_phase_seconds_count", phase="embedding") == 0
    assert delta(before, after, "revimg_search_phase_seconds_count", phase="neighbours") == 1
    assert delta(before, after, "revimg_searches_total", kind="similar", outcome="catalog") == 1


def test_a_refused_search_is_counted_by_its_code(catalog):
    before = scrape()

    response = APIClient().post("/api/search/", {}, format="multipart")

    after = scrape()
    assert response.status_code == 400
    assert delta(before, after, "revimg_searches_total", kind="upload", outcome="no_image") == 1
    assert (
        delta(before, after, "revimg_http_requests_total", view="api-search", method="POST", status="400")
        == 1
    )
    assert delta(before, after, "revimg_search_phase_seconds_count", phase="verdict") == 0


def test_a_404_without_a_matching_url_is_labelled_unmatched():
    before = scrape()

    assert Client().get("/no/such/page-4711").status_code == 404

    after = scrape()
    assert (
        delta(before, after, "revimg_http_requests_total", view="unmatched", method="GET", status="404") == 1
    )
    assert not any("4711" in v for _, labels in after for _, v in labels)


def test_a_crashing_view_is_counted_as_a_500(monkeypatch, catalog):
    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "search_similar", crash)
    before = scrape()

    response = Client(raise_request_exception=False).get("/api/images/1/similar/")

    after = scrape()
    assert response.status_code == 500
    assert (
        delta(before, after, "revimg_http_requests_total", view="image-similar", method="GET", status="500")
        == 1
    )
    assert delta(before, after, "revimg_searches_total", kind="similar", outcome="server_error") == 1


def test_made_up_methods_share_one_label():
    before = scrape()

    Client().generic("BREW", "/")

    after = scrape()
    assert delta(before, after, "revimg_http_requests_total", view="index", method="other", status="405") == 1


def test_the_catalog_size_is_the_searchable_count_read_in_one_query(catalog, django_assert_num_queries):
    images = [image for class_images in catalog.values() for image in class_images]
    CatalogImage.objects.filter(pk=images[0].pk).update(status=CatalogImage.Status.EXCLUDED)
    CatalogImage.objects.filter(pk=images[1].pk).update(embedding=None)

    with django_assert_num_queries(1):
        samples = scrape()

    assert value(samples, "revimg_catalog_images") == CatalogImage.objects.searchable().count() == 6
    assert value(samples, "revimg_catalog_classes") == 2


# --- Several worker processes (gunicorn) ------------------------------------------------------------


def run_python(code, *args, env=None):
    """Run code in a fresh interpreter from the checkout (env: variables to set, or to unset with None);
    its standard output, stripped."""
    environ = {**os.environ, **(env or {})}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=django_settings.BASE_DIR,
        env={name: value for name, value in environ.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


WORKER = """
    import os
    from revimg.metrics import instruments

    instruments().searches.labels("upload", "match").inc()
    instruments().in_progress.inc()  # left up: a worker killed mid-request
    print(os.getpid())
"""


def test_the_counts_of_worker_processes_add_up(tmp_path, monkeypatch):
    env = {metrics.MULTIPROC_ENV: str(tmp_path)}
    first, second = (int(run_python(WORKER, env=env)) for _ in range(2))
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))

    samples = scrape()

    assert value(samples, "revimg_searches_total", kind="upload", outcome="match") == 2
    assert value(samples, "revimg_http_requests_in_progress") == 2

    metrics.worker_exited(first)

    samples = scrape()
    assert value(samples, "revimg_http_requests_in_progress") == 1  # only live workers' requests
    assert value(samples, "revimg_searches_total", kind="upload", outcome="match") == 2  # totals stay


# What gunicorn does: the master imports the module (gunicorn.conf.py's hooks), prepares the folder, forks.
MASTER = """
    import os, sys
    from revimg import metrics

    metrics.prepare_multiprocess_dir(sys.argv[1])
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            metrics.instruments().searches.labels("url", "no_match").inc()
            os._exit(0)
        os.waitpid(pid, 0)
    print(os.environ["PROMETHEUS_MULTIPROC_DIR"])
"""


def test_workers_forked_by_a_master_that_imported_the_module_share_their_counts(tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    folder.mkdir()
    run_python(WORKER, env={metrics.MULTIPROC_ENV: str(folder)})  # a previous run's counts
    (folder / "notes.txt").write_text("not ours")

    assert run_python(MASTER, str(folder), env={metrics.MULTIPROC_ENV: None}) == str(folder)

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(folder))
    samples = scrape()
    assert value(samples, "revimg_searches_total", kind="url", outcome="no_match") == 2
    assert value(samples, "revimg_searches_total", kind="upload", outcome="match") == 0  # stale, removed
    assert (folder / "notes.txt").exists()


def test_importing_the_module_leaves_prometheus_client_and_models_unloaded():
    loaded = run_python(
        """
        import sys
        from revimg import metrics
        print(sorted(m for m in ("prometheus_client", "catalog.models", "search.searchlog") if m in sys.modules))
        """,
        env={"DJANGO_SETTINGS_MODULE": None, metrics.MULTIPROC_ENV: None},
    )

    assert loaded == "[]"


def test_preparing_after_prometheus_client_was_imported_is_refused(tmp_path):
    # This process imported prometheus_client without the variable: forked workers would not share.
    with pytest.raises(RuntimeError, match="imported before"):
        metrics.prepare_multiprocess_dir(tmp_path / "metrics")

    assert metrics.MULTIPROC_ENV not in os.environ
