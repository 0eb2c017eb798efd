"""The embedded PostgreSQL serves other machines over TCP when asked (REVIMG_EMBEDDED_PG_*), to clients
that give its password, from the allowed networks only; `embedded_postgres start` leaves it running and
prints the DATABASE_URL they use. Each test starts its own server, on loopback and a free port."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from revimg import embedded_pg
from revimg.embedded_pg.network import network_from, own_network
from revimg.settings import BASE_DIR
from tests.app_server import free_loopback_port
from tests.data_dirs import DEADLINE, fresh_data_dir, manage, postmaster

pytestmark = pytest.mark.slow

PASSWORD = "a-long-test-password-4711"


def listening_on(port, password=PASSWORD, **extra):
    return {
        "REVIMG_EMBEDDED_PG_LISTEN": "127.0.0.1",
        "REVIMG_EMBEDDED_PG_PORT": str(port),
        "REVIMG_EMBEDDED_PG_PASSWORD": password,
        **extra,
    }


def connect(port, password):
    return psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", password=password, dbname="revimg", connect_timeout=10
    )


def manage_elsewhere(tmp_path, database_url, *args):
    """A manage.py command of another machine: nothing but DATABASE_URL (and a data dir of its own)."""
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": database_url, "REVIMG_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=DEADLINE, check=True,
    )  # fmt: skip


@pytest.fixture
def data_dir():
    with fresh_data_dir(share_model=False) as data:
        yield data


def test_started_for_other_machines_it_takes_tcp_clients_with_its_password_only(data_dir, tmp_path):
    port = free_loopback_port()

    started = manage(data_dir, "embedded_postgres", "start", env=listening_on(port))

    assert f"DATABASE_URL=postgresql://postgres:****@127.0.0.1:{port}/revimg" in started.stdout
    assert PASSWORD not in started.stdout
    assert postmaster(data_dir) is not None  # still running after the command ended
    assert f"listening on 127.0.0.1:{port}" in manage(data_dir, "embedded_postgres", "status").stdout
    with connect(port, PASSWORD) as connection:
        assert connection.execute("SELECT current_user").fetchone() == ("postgres",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(port, "a-wrong-password-of-some-length")

    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/revimg"
    manage_elsewhere(tmp_path, url, "migrate", "--verbosity", "0")
    checked = manage_elsewhere(tmp_path, url, "check", "--database", "default")
    assert "no issues" in checked.stdout
    with connect(port, PASSWORD) as connection:
        assert connection.execute("SELECT count(*) FROM catalog_catalogimage").fetchone() == (0,)


def test_start_prints_the_password_when_asked(data_dir):
    port = free_loopback_port()

    started = manage(data_dir, "embedded_postgres", "start", "--show-password", env=listening_on(port))

    assert f"DATABASE_URL=postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/revimg" in started.stdout


@pytest.mark.parametrize(("password", "said"), [("", "(it is unset)"), ("short-one", "(it is too short)")])
def test_listening_without_a_good_password_refuses_to_start(data_dir, password, said):
    with pytest.raises(subprocess.CalledProcessError) as refused:
        manage(
            data_dir, "embedded_postgres", "start", env=listening_on(free_loopback_port(), password=password)
        )

    assert (
        "REVIMG_EMBEDDED_PG_PASSWORD must be set to a password of at least 16 characters"
        in refused.value.stderr
    )
    assert said in refused.value.stderr
    assert postmaster(data_dir) is None


def test_a_restart_applies_changed_settings(data_dir):
    first, second = free_loopback_port(), free_loopback_port()
    manage(data_dir, "embedded_postgres", "start", env=listening_on(first))
    manage(data_dir, "embedded_postgres", "stop")

    # Now only clients from another network may try, and on another port.
    manage(
        data_dir,
        "embedded_postgres",
        "start",
        env=listening_on(second, REVIMG_EMBEDDED_PG_ALLOWED="10.0.0.0/8"),
    )

    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry for host"):
        connect(second, PASSWORD)
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        connect(first, PASSWORD)


def test_by_default_it_listens_on_its_unix_socket_only(data_dir):
    started = manage(data_dir, "embedded_postgres", "start")

    assert "unix socket only" in started.stdout
    assert embedded_pg.listening(str(data_dir / "postgres"))[0] == ""
    assert "host " not in (data_dir / "postgres" / "pg_hba.conf").read_text()


def test_clients_default_to_the_listen_addresses_own_networks():
    network = network_from(["127.0.0.1"], 5433, PASSWORD, [])

    assert [str(allowed) for allowed in network.allowed] == [str(own_network("127.0.0.1"))] == ["127.0.0.0/8"]


def test_listening_on_every_address_needs_the_allowed_networks_named():
    with pytest.raises(ImproperlyConfigured, match="REVIMG_EMBEDDED_PG_ALLOWED"):
        network_from(["*"], 5433, PASSWORD, [])
