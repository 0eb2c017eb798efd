"""The recrawl upkeep job: the crawl keeps each class's Wikidata revision, and upkeep asks Wikidata for the
current ones in batches of 50 and crawls again only the classes whose item changed (the stand-in
Wikimedia counts every request)."""

import pytest
from django.utils import timezone

from catalog.models import CatalogImage, WikidataClass
from ingest import upkeep, wikidata
from ingest.models import ClassCrawl, IngestRun
from ingest.pipeline import run_crawl
from tests.crawl_server import ADMONT, GALLERY, standard_scenario

pytestmark = pytest.mark.django_db


def asked_for(wiki, props):
    """The ids of each wbgetentities request with these props, in order."""
    return [r["ids"].split("|") for r in wiki.requests_to("wikidata") if r["props"] == props]


def full_props(wiki):
    return [
        ids for r in wiki.requests_to("wikidata") if "claims" in r["props"] for ids in [r["ids"].split("|")]
    ]


@pytest.fixture
def crawled(wiki):
    """The standard scenario crawled with one image per class, embedded; the request log emptied."""
    standard_scenario(wiki)
    run_crawl(3, per_class=1)
    wiki.log.clear()
    return wiki


def test_the_crawl_keeps_the_revision_of_each_item_it_read(crawled):
    revisions = dict(WikidataClass.objects.values_list("qid", "wikidata_revision"))

    assert revisions == {
        "Q571": crawled.entities["Q571"]["lastrevid"],
        "Q42": crawled.entities["Q42"]["lastrevid"],
        "Q10908976": None,  # deleted on Wikidata: nothing read
    }


def test_nothing_changed_costs_one_request_for_the_revisions_only(crawled):
    outcome = upkeep.run("recrawl")

    assert outcome.summary == "none of 3 crawled classes changed on Wikidata"
    assert [sorted(ids) for ids in asked_for(crawled, "info")] == [["Q10908976", "Q42", "Q571"]]
    assert len(crawled.log) == 1
    run = IngestRun.objects.get(kind="upkeep:recrawl")
    assert (run.total, run.skipped, run.created, run.failed) == (3, 2, 0, 1)
    assert run.failures == [["Q10908976", "deleted or missing on Wikidata"]]


def test_only_the_changed_class_is_crawled_again_with_its_new_label_and_picture(crawled):
    book = WikidataClass.objects.get(qid="Q571")
    old_picture = book.main_image
    new_picture = GALLERY[2]
    entity = crawled.entities["Q571"]
    entity["labels"]["en"]["value"] = "printed book"
    entity["claims"]["P18"][0]["mainsnak"]["datavalue"]["value"] = new_picture
    crawled.edit("Q571")
    # Edited without a new revision: the stand-in says so, but upkeep must not ask, so must not see it.
    crawled.entities["Q42"]["labels"]["en"]["value"] = "Someone else"

    outcome = upkeep.run("recrawl")

    assert full_props(crawled) == [["Q571"]]  # only the changed item is read again
    assert [r["titles"] for r in crawled.requests_to("commons")] == [f"File:{new_picture}"]
    book.refresh_from_db()
    assert (book.label, book.wikidata_revision) == ("printed book", entity["lastrevid"])
    assert book.main_image.commons_file == new_picture and book.main_image != old_picture
    assert book.main_image.embedding_model  # embedded, searchable
    assert WikidataClass.objects.get(qid="Q42").label == "Douglas Adams"
    assert outcome.summary.startswith("1 of 3 crawled classes changed on Wikidata and were crawled again")
    # The next run finds nothing changed any more.
    crawled.log.clear()
    assert upkeep.run("recrawl").summary == "none of 3 crawled classes changed on Wikidata"
    assert CatalogImage.objects.filter(commons_file=ADMONT).exists()  # the old picture stays


def test_classes_crawled_before_revisions_were_kept_are_crawled_again_once(crawled):
    WikidataClass.objects.filter(qid="Q42").update(wikidata_revision=None)

    upkeep.run("recrawl")

    assert full_props(crawled) == [["Q42"]]
    assert WikidataClass.objects.get(qid="Q42").wikidata_revision == crawled.entities["Q42"]["lastrevid"]


def test_revisions_are_asked_fifty_items_a_request(wiki):
    classes = []
    for n in range(120):
        qid = f"Q{1000 + n}"
        wiki.entities[qid] = {"type": "item", "id": qid, "lastrevid": 5000 + n, "claims": {}}
        classes.append(WikidataClass(qid=qid, label=qid, wikidata_revision=5000 + n))
    WikidataClass.objects.bulk_create(classes)
    ClassCrawl.objects.bulk_create(
        ClassCrawl(wikidata_class=c, planned_at=timezone.now(), per_class=1)
        for c in WikidataClass.objects.all()
    )

    outcome = upkeep.run("recrawl")

    batches = asked_for(wiki, "info")
    assert [len(ids) for ids in batches] == [50, 50, 20]
    assert sorted(qid for ids in batches for qid in ids) == sorted(c.qid for c in classes)
    assert outcome.summary == "none of 120 crawled classes changed on Wikidata"
    assert not full_props(wiki)


def test_revisions_are_read_fifty_a_request_whoever_asks(wiki):
    qids = [f"Q{1000 + n}" for n in range(51)]
    for n, qid in enumerate(qids):
        wiki.entities[qid] = {"type": "item", "id": qid, "lastrevid": 5000 + n, "claims": {}}

    revisions = wikidata.revisions([*qids, "Q1"])  # Q1 missing: left out

    assert revisions == {qid: 5000 + n for n, qid in enumerate(qids)}
    assert [len(ids) for ids in asked_for(wiki, "info")] == [50, 2]
