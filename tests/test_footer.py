"""The footer of every page describes the catalog as it is: how many pictures of how many classes, from
which sources under which licences; read once a minute, and a generic line while the database is away."""

import os
import re
from urllib.parse import quote

import pytest
import requests
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog import credits
from catalog.models import CatalogImage
from revimg import embedded_pg
from tests.app_server import gunicorn_server
from tests.catalog_factories import make_class, make_image
from tests.data_dirs import fresh_data_dir, manage

CC_BY = {"license": "CC BY 4.0", "license_url": "https://creativecommons.org/licenses/by/4.0/"}
BIRDS = {"attribution": "Ada Lovelace, Birds of the Marsh (2024)", **CC_BY}
GENERIC = "Each picture in the catalog keeps its own licence, shown beside it."


@pytest.fixture
def fresh_cache(db):
    """The database, and no credits cached by an earlier test (a shared cache outlives its transaction)."""
    cache.delete(credits.CACHE_KEY)
    yield
    cache.delete(credits.CACHE_KEY)


def footer_html(client, path="/"):
    page = client.get(path).content.decode()
    found = re.search(r'<footer class="bottom">(.*?)</footer>', page, re.S)
    return " ".join(found.group(1).split())


def footer(client, path="/"):
    """The footer's words, without its markup."""
    return re.sub(r"<[^>]+>", "", footer_html(client, path))


def crawled(wikidata_class, seed, **metadata):
    return make_image(
        wikidata_class,
        seed,
        origin=CatalogImage.Origin.WIKIDATA_P18,
        license="CC BY-SA 3.0",
        license_url="https://creativecommons.org/licenses/by-sa/3.0/",
        attribution="Some Commons author",
        **metadata,
    )


@pytest.mark.usefixtures("fresh_cache")
def test_a_crawled_catalog_is_credited_to_wikimedia_commons(client):
    lighthouse, violin = make_class("lighthouse", "Q39715"), make_class("violin", "Q8355")
    for seed, wikidata_class in enumerate([lighthouse, lighthouse, violin]):
        crawled(wikidata_class, seed)

    text = footer(client)

    assert "3 pictures of 2 classes, from Wikimedia Commons. Each picture keeps its own licence" in text
    assert "CC BY-SA" not in text and "Some Commons author" not in text  # each card says its own


@pytest.mark.usefixtures("fresh_cache")
def test_an_imported_catalog_is_credited_to_its_attribution_under_its_licence(client):
    heron = make_class("heron")
    for seed in range(2):
        make_image(heron, seed, **BIRDS)

    html = footer_html(client)

    assert '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>' in html
    text = footer(client)
    assert "2 pictures of 1 class, from Ada Lovelace, Birds of the Marsh (2024) (CC BY 4.0)." in text
    assert "Wikimedia Commons" not in text


@pytest.mark.usefixtures("fresh_cache")
def test_a_mixed_catalog_names_each_source_once_and_counts_only_searchable_pictures(client):
    heron, violin, mug = make_class("heron"), make_class("violin", "Q8355"), make_class("mug")
    make_image(heron, 1, **BIRDS)
    make_image(heron, 2, **BIRDS)
    crawled(violin, 3)
    make_image(mug, 4)  # imported without any metadata
    excluded = make_image(mug, 5, attribution="Someone removed", license="CC0")
    CatalogImage.objects.filter(pk=excluded.pk).update(status=CatalogImage.Status.EXCLUDED)

    text = footer(client)

    assert text.count("Ada Lovelace") == 1 and text.count("Wikimedia Commons") == 1
    assert "4 pictures of 3 classes, from" in text
    assert re.search(r"Ada Lovelace.*; .*Wikimedia Commons.*; .*imported folders that name no source", text)
    assert "Someone removed" not in text


@pytest.mark.usefixtures("fresh_cache")
def test_sources_past_three_are_counted_not_named(client):
    pond = make_class("pond")
    for seed in range(5):
        make_image(pond, seed, attribution=f"Folder {seed}")

    text = footer(client)

    assert "Folder 2" in text and "Folder 3" not in text
    assert "; and 2 other sources." in text


@pytest.mark.usefixtures("fresh_cache")
def test_an_empty_catalog_says_so(client):
    assert "The catalog holds no pictures yet." in footer(client)


@pytest.mark.usefixtures("fresh_cache")
def test_the_credits_are_read_once_a_minute(client):
    crawled(make_class("violin", "Q8355"), 1)
    footer(client)
    crawled(make_class("lighthouse", "Q39715"), 2)

    with CaptureQueriesContext(connection) as queries:
        text = footer(client)

    assert "1 picture of 1 class" in text  # as read a moment ago
    # The credits' one query builds its sources as JSON objects; the home's own summary reads the catalog too.
    assert not any("JSONB_BUILD_OBJECT" in query["sql"].upper() for query in queries.captured_queries)
    cache.delete(credits.CACHE_KEY)  # what a minute does
    assert "2 pictures of 2 classes" in footer(client)


def test_an_error_page_rendered_without_the_database_has_the_generic_footer(client):
    # No database access allowed here: a 404 page must not need one.
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert GENERIC in " ".join(page.content.decode().split())


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="DATABASE_URL: no embedded PostgreSQL")
def test_pages_shown_while_the_database_is_down_render_with_the_generic_footer(tmp_path):
    # As in test_database_outage: an embedded server the app reaches through DATABASE_URL, stopped under it.
    with fresh_data_dir() as data_dir:
        pgdata = str(data_dir / "postgres")
        address = embedded_pg.address_of(pgdata)
        embedded_pg.ensure_database(address, "postgres", "revimg")
        host = quote(address.socket_dir, safe="")
        env = {"DATABASE_URL": f"postgres://postgres@{host}:{address.port}/revimg"}
        manage(data_dir, "migrate", "--no-input", env=env)
        with gunicorn_server(tmp_path, dict(env, REVIMG_DATA_DIR=str(data_dir))) as server:
            before = requests.get(server.url + "/", timeout=30)
            embedded_pg.stop(pgdata)
            home = requests.get(server.url + "/", timeout=30)
            error_page = requests.get(server.url + "/?similar=1", timeout=30)

    assert "The catalog holds no pictures yet." in before.text
    assert home.status_code == 200 and GENERIC in " ".join(home.text.split())
    assert error_page.status_code == 503 and GENERIC in " ".join(error_page.text.split())
