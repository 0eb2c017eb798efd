"""bench/capacity.py's arithmetic: the requests it counts are the crawler's, its constants are the code's."""

import inspect
import re
from collections import Counter

import pytest

from bench import capacity
from catalog import store
from catalog.models import WikidataClass
from ingest import crawl, wikidata
from ingest.pipeline import run_classes, run_images
from tests.crawl_server import ADAMS, picture_bytes

# The stand-in server's routes (tests/crawl_server.py), and the Wikimedia host each stands for.
HOSTS = {
    "sparql": capacity.SPARQL,
    "wikidata": capacity.WIKIDATA,
    "wikipedia": capacity.WIKIPEDIA,
    "commons": capacity.COMMONS,
    "file": capacity.UPLOAD,
}
PER_CLASS = 30


def picture_claim(name):
    return {"P18": [{"mainsnak": {"snaktype": "value", "datavalue": {"value": name}}, "rank": "normal"}]}


def two_full_classes(wiki):
    """Q91 has its own P18; Q92 has none, so its article is read (the captured "Douglas Adams" page). Each
    has exactly as many instances with a picture as the crawler asks for."""
    wiki.entities["Q91"] = {"id": "Q91", "claims": picture_claim("Own 91.jpg"), "sitelinks": {}}
    wiki.entities["Q92"] = {"id": "Q92", "claims": {}, "sitelinks": {"enwiki": {"title": "Douglas Adams"}}}
    wiki.add_article("wptools/parse.json")
    for name in ("Own 91.jpg", ADAMS):
        wiki.file_bytes[name] = picture_bytes(len(wiki.file_bytes) + 1)  # distinct content each
    for qid in ("Q91", "Q92"):
        wiki.add_class(qid, qid, 1000)
        instances = [f"{qid}00{n}" for n in range(capacity.INSTANCES_PER_WANTED * (PER_CLASS - 1))]
        wiki.instances[qid] = instances
        for n, instance in enumerate(instances):
            name = f"{qid} gallery {n}.jpg"
            wiki.entities[instance] = {"id": instance, "claims": picture_claim(name)}
            wiki.file_bytes[name] = picture_bytes(len(wiki.file_bytes) + 1)  # distinct content each


@pytest.mark.django_db
def test_the_requests_counted_on_paper_are_those_the_crawler_sends(wiki):
    two_full_classes(wiki)
    ids, _ = run_classes(2)
    recorder = run_images(ids, per_class=PER_CLASS)
    assert recorder.run.created == 2 * PER_CLASS
    sent = Counter(HOSTS[route] for route, _, _ in wiki.log)
    assert sent == capacity.crawl_requests(2, PER_CLASS, article_share=0.5)
    # The gallery query asks for as many instances as the arithmetic assumes.
    limits = {re.search(r"LIMIT (\d+)\s*$", p["query"]).group(1) for p in wiki.requests_to("sparql")[1:]}
    assert limits == {str(capacity.INSTANCES_PER_WANTED * (PER_CLASS - 1))}
    assert WikidataClass.objects.count() == 2


def test_more_workers_never_crawl_faster_than_the_busiest_host_allows():
    requests = capacity.crawl_requests(10_000, 30)
    one, two, many = (capacity.crawl_hours(requests, w, 0.3, 0.05, 300_000, 2) for w in (1, 2, 64))
    pace_hours = 300_000 * capacity.HTTP_MIN_INTERVAL_S / 3600  # Commons: one imageinfo per picture
    assert many == pytest.approx(pace_hours)
    assert one == pytest.approx((sum(requests.values()) * 0.3 + 300_000 * 0.05) / 3600)
    assert two == pytest.approx(one / 2)


def test_a_million_pictures_cost_each_search_the_longer_index_walk():
    measured = capacity.Measured()
    small = capacity.search_cpu_ms_at(measured, 3_000)
    large = capacity.search_cpu_ms_at(measured, 1_000_000)
    assert large - small == pytest.approx(measured.sql_ms_million - measured.sql_ms_small)
    cores = capacity.serving_cores(measured, 1_000_000, 100, 0.5)
    assert cores == pytest.approx(100 * large / 1000 / measured.server_efficiency / 0.5)


def test_the_constants_are_the_settings_and_code_they_name(settings):
    assert capacity.HTTP_MIN_INTERVAL_S == settings.REVIMG_HTTP_MIN_INTERVAL
    assert capacity.THUMB_WIDTH == settings.REVIMG_THUMB_WIDTH
    assert (capacity.THUMBNAIL_SIDE,) * 2 == store.THUMBNAIL_SIZE
    assert capacity.INSTANCES_PER_WANTED == crawl.INSTANCES_PER_WANTED
    page_size = inspect.signature(wikidata.top_classes).parameters["page_size"].default
    assert page_size == capacity.CLASSES_PER_PAGE
