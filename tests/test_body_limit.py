"""Bodies over the upload limit are refused before they are read: from Content-Length when there is one,
after the limit and not a byte later when the body is chunked. In-process for the rules, then through a real
gunicorn on loopback with a raw socket, which is where the unsent rest of a body can be seen."""

import io
import json
import select
import socket

import pytest
from django.conf import settings as django_settings
from django.db import connection

from revimg.bodylimit import OVER_LIMIT, is_chunked, max_body_bytes, spool_chunked_body
from tests.app_server import gunicorn_server

pytestmark = pytest.mark.django_db

TWO_HUNDRED_MB = 200 * 2**20
WAIT = 60  # seconds: a bound for a broken server, never reached when it works


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None


def declared_huge(client, path):
    # The test client's body is 4 KB; reading the 200 MB declared would fail the request (it cannot be read).
    return client.post(
        path,
        b"-" * 4096,
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(TWO_HUNDRED_MB),
    )


def test_an_api_body_declared_over_the_limit_is_refused_413_unread(client):
    response = declared_huge(client, "/api/search/")

    assert response.status_code == 413
    assert response.json() == {"error": {"code": "too_large", "message": "The picture is larger than 20 MB."}}


def test_the_page_shows_its_form_again_with_the_size_notice(client):
    response = declared_huge(client, "/")

    page = response.content.decode()
    assert response.status_code == 413
    assert 'id="search-form"' in page and "The picture is larger than 20 MB." in page


def json_body_of(length):
    """A JSON search of exactly length bytes that the API refuses for its k (so no model is needed)."""
    head = '{"k": 0, "pad": "'
    return (head + "x" * (length - len(head) - 2) + '"}').encode()


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not(client, settings):
    settings.REVIMG_MAX_UPLOAD_MB = 1

    at_limit = client.post("/api/search/", json_body_of(max_body_bytes()), content_type="application/json")
    over = client.post("/api/search/", json_body_of(max_body_bytes() + 1), content_type="application/json")

    assert (at_limit.status_code, at_limit.json()["error"]["code"]) == (400, "invalid_k")
    assert (over.status_code, over.json()["error"]["code"]) == (413, "too_large")


class EndlessBody(io.RawIOBase):
    """A chunked body that never ends, counting what was taken from it."""

    taken = 0

    def read(self, size=-1):
        self.taken += size
        return b"x" * size


def chunked_environ(body):
    return {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": body, "wsgi.input_terminated": True}


def test_a_chunked_body_is_read_to_one_byte_past_the_limit_and_no_further():
    body = EndlessBody()
    environ = chunked_environ(body)

    spool_chunked_body(environ, limit=3 * 2**20)

    assert body.taken == 3 * 2**20 + 1
    assert environ[OVER_LIMIT] is True and environ["CONTENT_LENGTH"] == "0"


def test_a_chunked_body_within_the_limit_is_handed_on_with_its_length():
    environ = chunked_environ(io.BytesIO(b'{"k": 0}'))

    spool_chunked_body(environ, limit=100)

    assert environ["CONTENT_LENGTH"] == "8" and environ["wsgi.input"].read() == b'{"k": 0}'
    assert OVER_LIMIT not in environ


def test_only_a_server_that_ends_its_input_with_the_body_has_it_read_to_the_end():
    body = io.BytesIO(b"")

    assert is_chunked(chunked_environ(body))
    assert not is_chunked({**chunked_environ(body), "wsgi.input_terminated": False})
    assert not is_chunked({**chunked_environ(body), "CONTENT_LENGTH": "12"})


# Through gunicorn, with a 1 MB upload limit: bodies over 2 MB (with the allowance) are refused.


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    env = {
        "REVIMG_DATA_DIR": str(django_settings.REVIMG_DATA_DIR),
        "REVIMG_DB_NAME": connection.settings_dict["NAME"],
        "REVIMG_ANON_SEARCH_RATE": "",
        "REVIMG_MAX_UPLOAD_MB": "1",
    }
    with gunicorn_server(tmp_path_factory.mktemp("gunicorn"), env, workers=1) as running:
        yield running


def connect(server):
    host, port = server.url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=WAIT)
    return conn


def request_head(headers):
    lines = ["POST /api/search/ HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(conn):
    """(status, JSON body, whether the server then closed the connection)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += conn.recv(65536) or b"<closed>"
        assert not received.endswith(b"<closed>"), received
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += conn.recv(65536)
    closed = conn.recv(65536) == b""
    return int(head.split()[1]), json.loads(body[:length]), closed


@pytest.mark.slow
def test_gunicorn_answers_413_to_a_declared_200_mb_body_of_which_4_kb_were_sent(server):
    with connect(server) as conn:
        conn.sendall(
            request_head(
                ["Content-Type: multipart/form-data; boundary=xyz", f"Content-Length: {TWO_HUNDRED_MB}"]
            )
        )
        conn.sendall(b"-" * 4096)

        status, body, closed = read_answer(conn)

    assert (status, body["error"]["code"]) == (413, "too_large") and closed


def send_chunks_until_answered(conn, chunk, most):
    """Send chunks (never the last one) until an answer can be read; the bytes sent."""
    sent = 0
    while sent < most and not select.select([conn], [], [], 0)[0]:
        try:
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return sent


@pytest.mark.slow
def test_gunicorn_cuts_off_a_chunked_body_that_goes_on_past_the_limit(server):
    with connect(server) as conn:
        conn.sendall(request_head(["Content-Type: application/json", "Transfer-Encoding: chunked"]))
        # A body that ends only when answered: a server reading it to its end would never answer.
        send_chunks_until_answered(conn, b"x" * 65536, most=50 * 2**20)

        status, body, closed = read_answer(conn)

    assert (status, body["error"]["code"]) == (413, "too_large") and closed


@pytest.mark.slow
def test_gunicorn_hands_a_chunked_body_within_the_limit_to_the_api(server):
    with connect(server) as conn:
        conn.sendall(request_head(["Content-Type: application/json", "Transfer-Encoding: chunked"]))
        conn.sendall(b'8\r\n{"k": 0}\r\n0\r\n\r\n')

        status, body, _ = read_answer(conn)

    # Without the chunked body, the API would answer that no picture was sent (no_image).
    assert (status, body["error"]["code"]) == (400, "invalid_k")
