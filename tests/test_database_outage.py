"""The database goes away during searches: clients get 503s in the error shape, then answers again, and
the app is never restarted for it.

Two real outages, each under a real gunicorn: the embedded PostgreSQL stopped under the app (the next
request starts it again), and a database the app does not own (DATABASE_URL) stopped and started again
by someone else.
"""

import os
from urllib.parse import quote

import pytest
import requests

from revimg import embedded_pg
from tests.app_server import gunicorn_server
from tests.catalog_factories import picture_bytes
from tests.data_dirs import fresh_data_dir, manage, postmaster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="DATABASE_URL: no embedded PostgreSQL"),
]

NO_LIMITS = {"REVIMG_ANON_SEARCH_RATE": "", "REVIMG_ANON_SIMILAR_RATE": ""}


def search(server):
    picture = {"image": ("query.jpg", picture_bytes(1), "image/jpeg")}
    return requests.post(server.url + "/api/search/", files=picture, timeout=30)


def test_a_stopped_embedded_database_is_started_again_by_the_next_request(tmp_path):
    with fresh_data_dir() as data_dir:
        manage(data_dir, "migrate", "--no-input")
        env = {"REVIMG_DATA_DIR": str(data_dir), "REVIMG_DB_NAME": "revimg", **NO_LIMITS}
        with gunicorn_server(tmp_path, env) as server:
            first_server = postmaster(data_dir)
            assert search(server).status_code == 200

            embedded_pg.stop(str(data_dir / "postgres"))
            assert postmaster(data_dir) is None
            answers = [search(server).status_code for _ in range(6)]

            assert answers == [200] * 6
            assert postmaster(data_dir) not in (None, first_server)


def test_searches_answer_503_while_an_external_database_is_down_then_200_again(tmp_path):
    # An embedded server started by this test stands in for a managed database: the app reaches it through
    # DATABASE_URL, so it is not the app's to start.
    with fresh_data_dir() as data_dir:
        pgdata = str(data_dir / "postgres")
        address = embedded_pg.address_of(pgdata)
        embedded_pg.ensure_database(address, "postgres", "revimg")
        host = quote(address.socket_dir, safe="")
        env = {"DATABASE_URL": f"postgres://postgres@{host}:{address.port}/revimg", **NO_LIMITS}
        manage(data_dir, "migrate", "--no-input", env=env)
        with gunicorn_server(tmp_path, dict(env, REVIMG_DATA_DIR=str(data_dir))) as server:
            assert search(server).status_code == 200

            embedded_pg.stop(pgdata)
            outage = [search(server) for _ in range(4)]
            page = requests.get(server.url + "/?similar=1", timeout=30)
            health = requests.get(server.url + "/healthz", timeout=30)
            embedded_pg.address_of(pgdata)  # the database is back
            after = [search(server).status_code for _ in range(6)]
            # A restart between two requests: the workers' kept connections are dead, and are replaced
            # before a request uses them.
            embedded_pg.stop(pgdata)
            embedded_pg.address_of(pgdata)
            after_quick_restart = [search(server).status_code for _ in range(6)]

        assert [answer.status_code for answer in outage] == [503] * 4
        for answer in outage:
            assert answer.json()["error"]["code"] == "unavailable"
            assert answer.headers["Retry-After"] == "5"
            assert address.socket_dir not in answer.text
        assert (
            page.status_code == 503
            and "Back in a moment" in page.text
            and address.socket_dir not in page.text
        )
        assert health.status_code == 503 and health.json() == {"status": "unavailable"}
        assert after == [200] * 6
        assert after_quick_restart == [200] * 6


def test_an_embedded_database_that_cannot_start_answers_503_until_it_can(tmp_path):
    with fresh_data_dir() as data_dir:
        manage(data_dir, "migrate", "--no-input")
        env = {"REVIMG_DATA_DIR": str(data_dir), "REVIMG_DB_NAME": "revimg", **NO_LIMITS}
        with gunicorn_server(tmp_path, env) as server:
            assert search(server).status_code == 200
            pgdata = data_dir / "postgres"
            config, aside = pgdata / "postgresql.conf", pgdata / "postgresql.conf.aside"
            embedded_pg.stop(str(pgdata))
            config.rename(aside)  # a real failure to start: PostgreSQL finds no configuration file
            try:
                cannot_start = [search(server) for _ in range(3)]
            finally:
                aside.rename(config)
            after = [search(server).status_code for _ in range(4)]

        assert [answer.status_code for answer in cannot_start] == [503] * 3
        assert all(answer.json()["error"]["code"] == "unavailable" for answer in cannot_start)
        assert after == [200] * 4
