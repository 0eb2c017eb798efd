"""The API keeps the promises of its OpenAPI schema, checked by schemathesis with requests it generates.

The schema is read from the app itself (/api/schema/), served over real HTTP on loopback by Django's
development server in a thread of this process: the requests are on the wire exactly as schemathesis means
them (its in-process WSGI client garbles an empty multipart field), and what this test does to the network
holds for the server too. A small real catalog with stored vectors answers "more like this".

The search endpoint fetches the `url` it is given, so nothing generated may reach the network: no name
resolves but localhost, and every connection beyond loopback is refused before a packet is sent.
"""

import contextlib
import ipaddress
import socket
import threading

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers import basehttp
from django.db import connection, connections
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events as engine_events

from tests.catalog_factories import make_catalog

SEARCH = "/api/search/"
SEED = 15
CONFIG = {
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": 25, "deterministic": True},
    # Each check named, so that a new default in a later schemathesis is a decision, not a surprise.
    "checks": {
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
        "negative_data_rejection": {"enabled": True},
        "positive_data_acceptance": {"enabled": True},
        "unsupported_method": {"enabled": True},
    },
    # Nothing here creates or deletes, so chains of calls (the stateful phase) only repeat reads that the
    # fuzzing phase makes anyway, with real ids among them.
    "phases": {"stateful": {"enabled": False}},
    "operations": [
        {
            "include-path": SEARCH,
            "generation": {"max-examples": 8},
            # A schema can say "a file" or "an address", not "a picture we can decode at an address that
            # answers": valid-looking junk is rightly refused with 400 here.
            "checks": {"positive_data_acceptance": {"enabled": False}},
        },
    ],
}


def is_loopback(host):
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch):
    """Only localhost and IP literals resolve (without asking DNS), and only loopback accepts connections."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def refused_beyond_loopback(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            raise ConnectionRefusedError(f"the contract test sends nothing to {address[0]}")
        return real_connect(sock, address)

    def local_only(host, port, family=0, type=0, proto=0, flags=0):
        if host == "localhost":
            host = "127.0.0.1"
        try:
            return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None

    monkeypatch.setattr(socket.socket, "connect", refused_beyond_loopback)
    monkeypatch.setattr(socket, "getaddrinfo", local_only)


def failures_of(events):
    """Every check that failed and every error of the run, written for a person to read."""
    found = []
    for event in events:
        if isinstance(event, engine_events.ScenarioFinished):
            for nodes in event.recorder.checks.values():
                found += [_described(node.failure_info) for node in nodes if node.failure_info is not None]
        elif isinstance(event, engine_events.NonFatalError):
            found.append(f"error in {event.label}: {event.value!r}")
        elif isinstance(event, engine_events.FatalError):
            found.append(f"the run stopped: {event.exception!r}")
    return found


def _described(info):
    failure = info.failure
    return f"{failure.operation}: {failure.title}\n{failure.message}\n{info.code_sample}"


@contextlib.contextmanager
def app_served_on_loopback():
    """Django's app behind its development server, one request at a time in one thread; yields its URL."""
    server = basehttp.WSGIServer(("127.0.0.1", 0), basehttp.WSGIRequestHandler)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=_serve, args=(server,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _serve(server):
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        connections.close_all()  # the server thread's own connection


@pytest.fixture
def api_schema(settings, monkeypatch, no_network):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = []
    # The server thread keeps one database connection for all its requests, rather than one per request.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    make_catalog(classes=2, per_class=4)
    config = SchemathesisConfig.from_dict(CONFIG)
    with app_served_on_loopback() as url:
        yield schemathesis.openapi.from_url(f"{url}/api/schema/", config=config)


# The server answers from a thread of its own, with its own connection: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_the_catalog_and_more_like_this_keep_the_schema_promise(api_schema):
    assert_no_failures(api_schema.exclude(path=SEARCH))


# schemathesis sends a real (1x1) PNG among its examples: the model loads and searches with it.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_search_by_picture_keeps_the_schema_promise(api_schema):
    assert_no_failures(api_schema.include(path=SEARCH))


def assert_no_failures(schema):
    failures = failures_of(schemathesis.engine.from_schema(schema).execute())

    assert not failures, "\n\n".join(dict.fromkeys(failures))
