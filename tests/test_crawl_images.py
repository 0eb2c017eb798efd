"""Images per class: own P18, else the article's first real picture; a gallery; Commons licences; faults."""

import copy
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import CatalogImage, WikidataClass
from ingest import crawl, wikipedia
from ingest.models import ClassCrawl, ImageSource
from ingest.pipeline import run_classes, run_images
from tests.catalog_factories import make_class, make_image
from tests.crawl_server import (
    ADAMS,
    ADMONT,
    cut_short,
    maxlag_error,
    picture_bytes,
    server_error,
    standard_scenario,
    too_many_requests,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def classes(wiki):
    standard_scenario(wiki)
    ids, _ = run_classes(3)
    return {WikidataClass.objects.get(id=i).qid: i for i in ids}


def sources(qid):
    return list(ImageSource.objects.planned().filter(wikidata_class__qid=qid).order_by("rank"))


def test_the_first_real_picture_of_an_article_is_its_infobox_image(wikimedia_fixtures):
    document = json.loads((wikimedia_fixtures / "wptools/parse.json").read_text())
    assert wikipedia.first_picture(document["parse"]["wikitext"]) == ADAMS


def test_icons_flags_logos_maps_and_svg_are_not_pictures():
    wikitext = (
        "{{Infobox country|image_flag=Flag of X.svg}}\n[[File:Commons-logo.svg|20px]] "
        "[[File:Flag of Gujo Gifu.JPG|thumb]] [[File:Locator map of X.png]] [[Image:Edit-clear icon.png]] "
        "[[File:Cat_on_a_mat.jpg|thumb|A cat]]"
    )
    assert wikipedia.first_picture(wikitext) == "Cat on a mat.jpg"


def test_a_class_gets_its_own_p18_then_a_gallery_of_well_known_instances(classes):
    crawl.plan_images(classes["Q571"], per_class=4)
    planned = sources("Q571")
    assert [(s.commons_file, s.origin, s.origin_detail) for s in planned] == [
        (ADMONT, "p18", "Q571"),
        ("Sparrenburg innovative sights.JPG", "instance", "Q2112"),
        # Q42's only P18 is deprecated and Q646148 has none: the next instances step in.
        ("Gujo Gifu Japan.jpg", "instance", "Q857243"),
        ("Verla.JPG", "instance", "Q217447"),
    ]


def rank_pictures(entity, ranked):
    """Give the item these P18 statements, in this order: (rank, file name) pairs."""
    template = entity["claims"]["P18"][0]
    statements = []
    for n, (rank, name) in enumerate(ranked):
        statement = copy.deepcopy(template)
        statement["mainsnak"]["datavalue"]["value"], statement["rank"] = name, rank
        statement["id"] = f"{entity['id']}${n}"
        statements.append(statement)
    entity["claims"]["P18"] = statements


def test_each_instance_shows_the_first_of_its_best_ranked_pictures(wiki):
    """The gallery query names an instance's picture when it has one best-ranked P18 (the query service's
    truthy value: preferred over normal, never deprecated); one with several is read from Wikidata, whose
    statements keep the item's order."""
    instances = wiki.add_gallery_class("Q3305213", "painting", "Own.jpg", ["0.jpg", "1.jpg", "2.jpg"])
    ranked = [
        [("normal", "Normal 0.jpg"), ("preferred", "Preferred 0.jpg"), ("deprecated", "Deprecated 0.jpg")],
        [("deprecated", "Deprecated 1.jpg"), ("normal", "Normal 1.jpg")],
        [("normal", "Normal 2.jpg"), ("preferred", "Preferred 2a.jpg"), ("preferred", "Preferred 2b.jpg")],
    ]
    for qid, pictures in zip(instances, ranked, strict=True):
        rank_pictures(wiki.entities[qid], pictures)
    ids, _ = run_classes(1)

    crawl.plan_images(ids[0], per_class=4)

    assert [(s.commons_file, s.origin_detail) for s in sources("Q3305213")[1:]] == [
        ("Preferred 0.jpg", instances[0]),
        ("Normal 1.jpg", instances[1]),
        ("Preferred 2a.jpg", instances[2]),
    ]
    read = [r["ids"] for r in wiki.requests_to("wikidata")]
    assert read == ["Q3305213", instances[2]]  # the class, then the one instance with several pictures


def test_without_a_usable_p18_the_image_comes_from_the_english_article(classes):
    crawl.plan_images(classes["Q42"], per_class=1)
    (source,) = sources("Q42")
    assert (source.commons_file, source.origin, source.origin_detail) == (ADAMS, "wikipedia", "Douglas Adams")


def test_a_deleted_entity_is_recorded_and_not_asked_again(classes, wiki):
    assert crawl.plan_images(classes["Q10908976"], per_class=3) == 0
    state = ClassCrawl.objects.get(wikidata_class_id=classes["Q10908976"])
    assert "deleted" in state.reason and state.planned_at
    before = len(wiki.log)
    crawl.plan_images(classes["Q10908976"], per_class=3)
    assert len(wiki.log) == before


def test_an_image_is_stored_with_its_licence_and_provenance(classes):
    crawl.plan_images(classes["Q571"], per_class=1)
    (source,) = sources("Q571")
    assert crawl.fetch_source(source.id)[0] == "created"
    image = CatalogImage.objects.get(commons_file=ADMONT)
    assert image.wikidata_class_id == classes["Q571"]
    assert (image.origin, image.origin_detail) == ("p18", "Q571")
    # This file's own metadata (standard_scenario), the HTML reduced to text.
    assert (image.license, image.license_url, image.attribution_required) == (
        "CC BY-SA 3.0",
        "https://creativecommons.org/licenses/by-sa/3.0",
        True,
    )
    assert image.artist == "Author of Austria - Admont Abbey Library - 1407"
    assert image.attribution == "Own work (Austria - Admont Abbey Library - 1407)"
    assert image.source_url.endswith("/files/Austria_-_Admont_Abbey_Library_-_1407.jpg")
    assert image.embedding is None  # embedding is its own step
    assert WikidataClass.objects.get(id=classes["Q571"]).main_image == image
    source.refresh_from_db()
    assert (source.status, source.image) == ("done", image)


def test_non_free_and_missing_files_are_skipped_with_a_reason(classes, wiki):
    wiki.nonfree.add(ADMONT)
    wiki.missing_files.add("Sparrenburg innovative sights.JPG")
    crawl.plan_images(classes["Q571"], per_class=2)
    outcomes = [crawl.fetch_source(s.id) for s in sources("Q571")]
    assert [o for o, _ in outcomes] == ["skipped", "skipped"]
    assert "NonFree" in outcomes[0][1] and "not on Commons" in outcomes[1][1]
    assert not CatalogImage.objects.exists()
    assert not wiki.requests_to("file")  # nothing downloaded


def test_a_truncated_image_fails_with_a_reason_and_the_crawl_goes_on(classes, wiki):
    wiki.file_bytes[ADMONT] = picture_bytes(7)[:300]
    recorder = run_images([classes["Q571"]], per_class=2)
    # The next instance's picture stands in for the broken one: two pictures, as asked.
    assert (recorder.run.created, recorder.run.failed) == (2, 1)
    failed = ImageSource.objects.get(commons_file=ADMONT)
    assert failed.status == "failed" and "image" in failed.reason


def test_transient_faults_are_waited_out(classes, wiki):
    wiki.fault("wikidata", maxlag_error("0"))
    wiki.fault("commons", too_many_requests("0"))
    wiki.fault("commons", server_error(502))
    wiki.fault("file", cut_short(picture_bytes(sum(ADMONT.encode()))))
    recorder = run_images([classes["Q571"]], per_class=1)
    assert recorder.run.created == 1
    assert CatalogImage.objects.filter(commons_file=ADMONT).exists()


def test_an_image_that_keeps_failing_transiently_stays_pending_for_the_next_run(classes, wiki, settings):
    settings.REVIMG_HTTP_RETRIES = 1
    wiki.fault("commons", server_error(503), times=2)
    recorder = run_images([classes["Q571"]], per_class=1)
    assert recorder.run.failed == 1 and "next run" in recorder.run.failures[0][1]
    assert ImageSource.objects.get(commons_file=ADMONT).status == "pending"
    run_images([classes["Q571"]], per_class=1)
    assert ImageSource.objects.get(commons_file=ADMONT).status == "done"


def test_every_request_is_polite(classes, wiki):
    run_images(list(classes.values()), per_class=2)
    for route, params, headers in wiki.log:
        assert headers["User-Agent"].startswith("revimg/")
        if route in ("wikidata", "wikipedia", "commons"):
            assert params["maxlag"] == "5"
    widths = {p["iiurlwidth"] for p in wiki.requests_to("commons")}
    assert widths == {"960"}  # a standard thumbnail width, never the original's size


def test_a_file_already_stored_is_found_through_its_index_with_no_join_or_sort():
    lighthouse = make_class("lighthouse", "Q39715")
    make_image(lighthouse, 1, commons_file=ADMONT)
    source = ImageSource.objects.create(wikidata_class=lighthouse, commons_file=ADMONT, origin="p18")

    with CaptureQueriesContext(connection) as queries:
        assert crawl.fetch_source(source.id) == ("skipped", "already in the catalog")

    [lookup] = [q["sql"] for q in queries if '"catalog_catalogimage"."commons_file" =' in q["sql"]]
    # A catalog of some size, with its statistics: on a handful of rows every plan costs the same, and the
    # planner's pick between them is a coin toss.
    CatalogImage.objects.bulk_create(
        CatalogImage(
            wikidata_class=lighthouse,
            file=f"images/{n}.jpg",
            sha256=f"{n:064x}",
            width=1,
            height=1,
            origin=CatalogImage.Origin.WIKIDATA_P18,
            commons_file=f"Other {n}.jpg",
        )
        for n in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_catalogimage")
        cursor.execute("EXPLAIN " + lookup)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using image_commons_file" in plan
    assert not any(word in plan for word in ("Join", "Nested Loop", "Sort"))
