"""Classes: the top classes from the SPARQL service (in pages) or a Wikidata JSON dump (ranks respected)."""

import bz2
import gzip
import json

import pytest

from catalog.models import WikidataClass
from ingest import crawl, dump, wikidata
from ingest.pipeline import run_classes
from tests.crawl_server import load_entity, standard_scenario

pytestmark = pytest.mark.django_db


def test_it_fetches_top_classes_in_pages_with_label_description_article_and_image(wiki):
    standard_scenario(wiki)
    infos = list(wikidata.top_classes(3, page_size=2))
    assert [i.qid for i in infos] == ["Q571", "Q42", "Q10908976"]
    book = infos[0]
    assert (book.label, book.enwiki_title, book.instances) == ("book", "Book", 1000)
    assert book.image == "Austria - Admont Abbey Library - 1407.jpg"
    assert book.description == "medium for recording information"
    queries = [p["query"] for p in wiki.requests_to("sparql")]
    assert len(queries) == 2 and "OFFSET 0" in queries[0] and "OFFSET 2" in queries[1]


def test_it_reads_a_real_sparql_answer(wiki, wikimedia_fixtures):
    # A real Query Service answer with the same variable names (item, itemLabel, itemDescription).
    document = json.loads(
        (wikimedia_fixtures / "wikibase-sdk/results_with_labels_descriptions_and_aliases.json").read_text()
    )
    rows = [{k: v["value"] for k, v in b.items()} for b in document["results"]["bindings"]]
    infos = [wikidata.class_from_row(row) for row in rows]
    assert infos[1].qid == "Q6512" and infos[1].label == "Søren Kierkegaard"
    assert all(i.qid.startswith("Q") for i in infos)


def test_classes_are_saved_once_and_a_rerun_asks_nothing_again(wiki):
    standard_scenario(wiki)
    ids, recorder = run_classes(3)
    assert recorder.run.created == 3 and recorder.run.status == "done"
    assert WikidataClass.objects.get(qid="Q571").enwiki_title == "Book"
    before = len(wiki.log)
    again, recorder = run_classes(3)
    assert again == ids
    assert len(wiki.log) == before  # known classes are not asked for again
    assert WikidataClass.objects.filter(qid__isnull=False).count() == 3


def write_dump(path, entities, opener=open):
    with opener(path, "wt", encoding="utf-8") as out:
        out.write("[\n")
        out.write(",\n".join(json.dumps(e) for e in entities))
        out.write("\n]\n")


def fixture_entities(fixtures):
    paths = sorted((fixtures / "wikibase-sdk").glob("Q*.json")) + [fixtures / "qwikidata/wd_Q42.json"]
    return [load_entity(p) for p in paths]


@pytest.mark.parametrize(
    ("suffix", "opener"), [(".json", open), (".json.gz", gzip.open), (".json.bz2", bz2.open)]
)
def test_a_dump_is_streamed_counting_instance_of_with_ranks(wikimedia_fixtures, tmp_path, suffix, opener):
    path = tmp_path / ("dump" + suffix)
    write_dump(path, fixture_entities(wikimedia_fixtures), opener)
    counter = dump.ClassCounter()
    for entity in dump.entities(path):
        counter.add(entity)
    humans = [e["id"] for e in fixture_entities(wikimedia_fixtures) if "Q5" in wikidata.best_values(e, "P31")]
    assert counter.counts["Q5"] == len(humans) >= 2
    assert counter.counts["Q1549591"] == 1  # Bielefeld: a normal-rank P31
    assert "Q1964689" not in counter.counts  # Bielefeld's deprecated P31 never counts
    assert counter.top(1)[0].qid == "Q5"


def test_preferred_statements_win_over_normal_ones(wikimedia_fixtures):
    bielefeld = load_entity(wikimedia_fixtures / "wikibase-sdk/Q2112.json")
    bielefeld["claims"]["P31"][1]["rank"] = "preferred"
    assert wikidata.best_values(bielefeld, "P31") == ["Q1187811"]


def test_a_dump_keeps_memory_bounded_and_still_finds_the_big_classes(wikimedia_fixtures, tmp_path):
    adams = load_entity(wikimedia_fixtures / "qwikidata/wd_Q42.json")
    others = fixture_entities(wikimedia_fixtures)
    humans = [dict(adams, id=f"Q{900000 + n}") for n in range(40)]
    path = tmp_path / "dump.json.gz"
    write_dump(path, others + humans, gzip.open)
    counter = dump.ClassCounter(capacity=3)
    for entity in dump.entities(path):
        counter.add(entity)
        assert len(counter.counts) <= 3 and len(counter.details) <= 4
    assert counter.top(1)[0].qid == "Q5"


def test_dump_classes_keep_the_class_details_found_in_the_dump(wikimedia_fixtures, tmp_path):
    book = load_entity(wikimedia_fixtures / "wikibase-sdk/Q571.json")
    items = [{"id": f"Q{800000 + n}", "claims": {"P31": [{"mainsnak": {"snaktype": "value", "datavalue": {"value": {"id": "Q571"}}}, "rank": "normal"}]}} for n in range(3)]  # fmt: skip
    path = tmp_path / "dump.json"
    write_dump(path, [book, *items])
    (top,) = dump.top_classes_from_dump(path, 1)
    assert (top.qid, top.label, top.enwiki_title, top.instances) == ("Q571", "book", "Book", 3)
    assert top.image == "Austria - Admont Abbey Library - 1407.jpg"
    ids = crawl.crawl_classes(1, dump_path=path)
    assert WikidataClass.objects.get(id=ids[0]).instance_count == 3
