"""Search reads on a read replica, everything else on the primary, and a replica that fails or lags leaves
the search to the primary. The replica is a read-only connection of its own to the test database
(tests/replicas.py): a write sent to it fails, and it sees only committed rows."""

import pytest
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from catalog import classstats, replicas
from catalog.models import CatalogImage, WikidataClass
from revimg.postgres import base as postgres_base
from search import service
from tests.catalog_factories import centre, make_catalog, make_image
from tests.replicas import READ_ONLY, UNREACHABLE

pytestmark = pytest.mark.django_db(databases=["default", READ_ONLY, UNREACHABLE], transaction=True)

NEAREST = "<=>"  # pgvector's cosine distance: the nearest-neighbour query


@pytest.fixture(autouse=True)
def searching_on(settings):
    """Search on the replicas given, no throttling, and no replica left resting by an earlier test."""
    settings.REVIMG_ANON_SEARCH_RATE = settings.REVIMG_ANON_SIMILAR_RATE = None
    replicas._resting_until.clear()

    def use(*aliases):
        settings.REVIMG_SEARCH_REPLICAS = list(aliases)

    use(READ_ONLY)
    yield use
    replicas._resting_until.clear()


@pytest.fixture
def catalog():
    """A committed catalog, its class statistics current: a search then only reads."""
    made = make_catalog(classes=3, per_class=6)
    for wikidata_class in made:
        classstats.refresh_class(wikidata_class.pk)
    return [image for images in made.values() for image in images]


def queries_on(alias):
    return CaptureQueriesContext(connections[alias])


def sql(captured):
    return [query["sql"] for query in captured.captured_queries]


def test_more_like_this_reads_on_the_replica_only(catalog):
    with queries_on("default") as primary, queries_on(READ_ONLY) as replica:
        result = service.search_similar(catalog[0].pk, k=5)

    assert [hit.image.pk for hit in result.results] and result.query_image.pk == catalog[0].pk
    assert any(NEAREST in statement for statement in sql(replica))
    assert sql(primary) == []


@pytest.mark.parametrize("address", ["/api/images/{pk}/similar/?k=4", "/?similar={pk}"])
def test_the_api_and_the_page_search_on_the_replica(catalog, address):
    with queries_on("default") as primary, queries_on(READ_ONLY) as replica:
        response = APIClient().get(address.format(pk=catalog[0].pk))

    assert response.status_code == 200
    assert any(NEAREST in statement for statement in sql(replica))
    assert not any(NEAREST in statement or "catalog_" in statement for statement in sql(primary))


def test_statistics_of_a_changed_class_are_read_on_the_replica_and_stored_on_the_primary(catalog):
    make_image(catalog[0].wikidata_class, seed=4242)  # the class's stored statistics are now stale

    with queries_on("default") as primary, queries_on(READ_ONLY) as replica:
        service.search_similar(catalog[0].pk, k=5)

    assert any("catalog_classstatistics" in statement for statement in sql(replica))
    assert any(
        statement.startswith("INSERT INTO") and "ON CONFLICT" in statement for statement in sql(primary)
    )


def test_writes_go_to_the_primary_even_for_rows_read_on_the_replica(catalog, admin_client):
    image = CatalogImage.objects.using(READ_ONLY).get(pk=catalog[0].pk)
    wikidata_class = WikidataClass.objects.using(READ_ONLY).get(pk=catalog[0].wikidata_class_id)

    with queries_on("default") as primary, queries_on(READ_ONLY) as replica:
        image.attribution = "changed on a row read from the replica"
        image.save(update_fields=["attribution"])
        make_image(wikidata_class, seed=777)  # what an import stores (catalog.store), for a class read there
        changed = admin_client.post(
            f"/admin/catalog/wikidataclass/{wikidata_class.pk}/change/",
            {"label": "renamed by a curator", "qid": wikidata_class.qid or ""},
        )

    assert changed.status_code in (200, 302)
    statements = sql(primary)
    assert any(s.startswith("UPDATE") and "catalog_catalogimage" in s for s in statements)
    assert any(s.startswith("INSERT INTO") and "catalog_catalogimage" in s for s in statements)
    assert sql(replica) == []
    assert CatalogImage.objects.filter(attribution__startswith="changed on a row").count() == 1


def test_migrations_run_on_the_primary_only():
    assert router.allow_migrate_model("default", CatalogImage)
    assert not router.allow_migrate_model(READ_ONLY, CatalogImage)


def test_an_unreachable_replica_leaves_search_to_the_primary_and_rests(catalog, searching_on):
    searching_on(UNREACHABLE)

    with queries_on("default") as primary:
        first = service.search_similar(catalog[0].pk, k=5)
    assert first.results and any(NEAREST in statement for statement in sql(primary))
    assert UNREACHABLE in replicas._resting_until  # the next searches do not wait for it to fail again
    assert replicas._answering_replica() is None


def test_a_row_not_yet_on_the_replica_is_read_on_the_primary(catalog):
    with transaction.atomic():  # uncommitted: the replica cannot see it yet, as if it lagged
        newest = make_image(catalog[0].wikidata_class, seed=9999, vector=centre(catalog[0].wikidata_class_id))
        with queries_on("default") as primary, queries_on(READ_ONLY) as replica:
            result = service.search_similar(newest.pk, k=3)

    assert result.query_image.pk == newest.pk and result.results
    assert any(str(newest.pk) in statement for statement in sql(replica))  # looked for there first
    assert any(NEAREST in statement for statement in sql(primary))


def test_readyz_says_which_replicas_answer_without_failing_for_them(client, searching_on):
    searching_on(READ_ONLY, UNREACHABLE)
    with_replicas = client.get("/readyz")
    searching_on()
    without = client.get("/readyz")

    assert with_replicas.json()["replicas"] == {READ_ONLY: "ok", UNREACHABLE: "failing"}
    assert with_replicas.status_code == without.status_code
    assert with_replicas.json()["checks"] == without.json()["checks"] and "replicas" not in without.json()


def test_an_idle_replica_connection_is_never_handed_to_the_primary(settings):
    settings.REVIMG_DB_IDLE_CONNECTIONS = 2
    connections["default"].close()
    connections[READ_ONLY].ensure_connection()
    connections[READ_ONLY].close()  # kept idle for the replica's next request
    assert postgres_base.idle_count(READ_ONLY) == 1

    with connections["default"].cursor() as cursor:
        cursor.execute("SHOW default_transaction_read_only")
        assert cursor.fetchone() == ("off",)
    assert postgres_base.idle_count(READ_ONLY) == 1
    settings.REVIMG_DB_IDLE_CONNECTIONS = 0
    postgres_base._idle.pop(READ_ONLY).pop().close()
