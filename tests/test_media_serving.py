"""/media/: catalog files sent as immutable content, with validators, byte ranges and sendfile."""

import hashlib
import io
import os
import socket

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import FileResponse
from django.utils.http import http_date
from gunicorn.config import Config
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.http.parser import RequestParser
from PIL import Image

from revimg.media import RangeReader

IMMUTABLE = "public, max-age=31536000, immutable"


def jpeg_bytes(size=(64, 48)):
    image = Image.new("RGB", size)
    image.putdata([(x * 4 % 256, y * 5 % 256, (x * y) % 256) for y in range(size[1]) for x in range(size[0])])
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


def write_media(root, name, data):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def media_root(settings):
    settings.MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
    return settings.MEDIA_ROOT


@pytest.fixture
def stored(media_root):
    """A catalog image named as catalog.models.image_upload_path names it: by the SHA-256 of its bytes."""
    data = jpeg_bytes()
    sha = hashlib.sha256(data).hexdigest()
    name = f"images/{sha[:2]}/{sha}.jpg"
    path = write_media(media_root, name, data)
    return {"url": f"/media/{name}", "name": name, "data": data, "sha": sha, "path": path}


def full_body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_catalog_image_is_sent_whole_with_immutable_cache_headers(client, stored):
    response = client.get(stored["url"])

    assert response.status_code == 200
    assert full_body(response) == stored["data"]
    assert response["Cache-Control"] == IMMUTABLE
    assert response["ETag"] == f'"sha256-{stored["sha"]}"'
    assert response["Last-Modified"] == http_date(stored["path"].stat().st_mtime)
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Length"] == str(len(stored["data"]))
    assert response["Accept-Ranges"] == "bytes"


def test_thumbnail_etag_changes_when_its_bytes_change_even_at_the_same_size(client, media_root, stored):
    # Thumbnails carry their original's hash, not their own, so the ETag must come from the file itself.
    name = f"thumbs/{stored['sha'][:2]}/{stored['sha']}.jpg"
    data = jpeg_bytes((32, 24))
    path = write_media(media_root, name, data)
    first = client.get(f"/media/{name}")["ETag"]

    middle = len(data) // 2
    path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    # File times are coarse (a clock tick); a real rewrite comes much later than this one.
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10_000_000))
    second = client.get(f"/media/{name}")["ETag"]

    assert first.startswith('"') and not first.startswith("W/")
    assert first != second


@pytest.mark.parametrize("if_none_match", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_matching_if_none_match_answers_304_without_body(client, stored, if_none_match):
    etag = f'"sha256-{stored["sha"]}"'

    response = client.get(stored["url"], headers={"If-None-Match": if_none_match.format(etag=etag)})

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag
    assert response["Cache-Control"] == IMMUTABLE


def test_other_if_none_match_sends_the_file_even_if_not_modified_since(client, stored):
    response = client.get(
        stored["url"], headers={"If-None-Match": '"other"', "If-Modified-Since": http_date(2**31)}
    )

    assert response.status_code == 200
    assert full_body(response) == stored["data"]


def test_if_modified_since_answers_304_when_file_is_not_newer(client, stored):
    mtime = stored["path"].stat().st_mtime

    unchanged = client.get(stored["url"], headers={"If-Modified-Since": http_date(mtime)})
    older = client.get(stored["url"], headers={"If-Modified-Since": http_date(mtime - 60)})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert older.status_code == 200


def test_head_sends_the_headers_of_get_without_a_body(client, stored):
    response = client.head(stored["url"])

    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Length"] == str(len(stored["data"]))
    assert response["Content-Type"] == "image/jpeg"
    assert response["ETag"] == f'"sha256-{stored["sha"]}"'
    assert response["Cache-Control"] == IMMUTABLE
    assert response["Accept-Ranges"] == "bytes"


def test_other_methods_are_refused_with_405(client, stored):
    response = client.post(stored["url"])

    assert response.status_code == 405
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-9", slice(0, 10)),
        ("bytes=100-199", slice(100, 200)),
        ("bytes=100-", slice(100, None)),
        ("bytes=-25", slice(-25, None)),
        ("bytes=5-99999999", slice(5, None)),  # an end past the file stops at its last byte
        ("bytes=-99999999", slice(0, None)),  # a suffix longer than the file is the whole file
        ("BYTES = 3 - 4", slice(3, 5)),  # the unit is case-insensitive, spaces are tolerated
    ],
)
def test_single_range_answers_206_with_exactly_those_bytes(client, stored, header, span):
    data = stored["data"]
    expected = data[span]
    first = data.index(expected)

    response = client.get(stored["url"], headers={"Range": header})

    assert response.status_code == 206
    assert full_body(response) == expected
    assert response["Content-Length"] == str(len(expected))
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response["ETag"] == f'"sha256-{stored["sha"]}"'
    assert response["Cache-Control"] == IMMUTABLE


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{size}", "bytes=-0"])
def test_unsatisfiable_range_answers_416_with_the_size(client, stored, header):
    size = len(stored["data"])

    response = client.get(stored["url"], headers={"Range": header.format(size=size)})

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"
    assert "Cache-Control" not in response


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,5-6",  # several ranges: allowed to be answered with the whole file
        "bytes=0-1, -5",
        "bytes=9-2",  # last before first
        "bytes=-",
        "bytes=a-b",
        "items=0-1",
        "bytes=" + "9" * 30 + "-",  # beyond any file, and beyond int()'s comfort
        "bytes=\u0661-",  # an Arabic-Indic digit is no ASCII digit
    ],
)
def test_multiple_or_malformed_range_is_ignored_and_the_whole_file_sent(client, stored, header):
    response = client.get(stored["url"], headers={"Range": header})

    assert response.status_code == 200
    assert full_body(response) == stored["data"]
    assert response["Content-Length"] == str(len(stored["data"]))
    assert "Content-Range" not in response


def test_range_with_matching_if_range_is_honoured(client, stored):
    etag = f'"sha256-{stored["sha"]}"'

    response = client.get(stored["url"], headers={"Range": "bytes=0-9", "If-Range": etag})

    assert response.status_code == 206
    assert full_body(response) == stored["data"][:10]


@pytest.mark.parametrize("if_range", ['"sha256-0000"', "W/{etag}", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_range_with_other_if_range_sends_the_whole_file(client, stored, if_range):
    etag = f'"sha256-{stored["sha"]}"'

    response = client.get(
        stored["url"], headers={"Range": "bytes=0-9", "If-Range": if_range.format(etag=etag)}
    )

    assert response.status_code == 200
    assert full_body(response) == stored["data"]


def test_head_ignores_range(client, stored):
    response = client.head(stored["url"], headers={"Range": "bytes=0-9"})

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(stored["data"]))


@pytest.mark.parametrize(
    "url",
    [
        "/media/%2e%2e/secret.txt",
        "/media/images/%2e%2e/%2e%2e/secret.txt",
        "/media/images/..%2f..%2fsecret.txt",
        "/media//etc/hostname",
        "/media/images%5c..%5c..%5csecret.txt",
    ],
)
def test_paths_climbing_out_of_media_root_are_404(client, media_root, url):
    (media_root.parent / "secret.txt").write_text("not for the web")

    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", ["/media/images/./x.jpg", "/media/images//x.jpg", "/media/images/%00.jpg"])
def test_dot_segments_empty_segments_and_nul_are_404(client, media_root, url):
    # One file, one URL: names are never normalised into another file's name.
    write_media(media_root, "images/x.jpg", b"x")

    assert client.get(url).status_code == 404


def test_symlink_pointing_outside_media_root_is_404(client, media_root):
    secret = media_root.parent / "secret.jpg"
    secret.write_bytes(b"not for the web")
    (media_root / "images").mkdir()
    (media_root / "images" / "escape.jpg").symlink_to(secret)

    assert client.get("/media/images/escape.jpg").status_code == 404


def test_symlink_inside_media_root_is_served(client, media_root, stored):
    (media_root / "images" / "alias.jpg").symlink_to(stored["path"])

    response = client.get("/media/images/alias.jpg")

    assert response.status_code == 200
    assert full_body(response) == stored["data"]


def test_missing_file_and_directory_are_404(client, stored):
    assert client.get(f"/media/images/{stored['sha'][:2]}/missing.jpg").status_code == 404
    assert client.get(f"/media/images/{stored['sha'][:2]}").status_code == 404
    assert client.get(f"/media/images/{stored['sha'][:2]}/").status_code == 404


def test_front_server_mode_answers_x_accel_redirect_with_no_body(client, settings, media_root, stored):
    settings.REVIMG_MEDIA_ACCEL_REDIRECT = "/protected-media/"
    spaced = write_media(media_root, "images/a b#1.png", b"\x89PNG")

    response = client.get(stored["url"], headers={"Range": "bytes=0-9"})
    quoted = client.get("/media/images/a%20b%231.png")

    assert response.status_code == 200  # the front server does the range
    assert response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{stored['name']}"
    assert response["Cache-Control"] == IMMUTABLE
    assert response["ETag"] == f'"sha256-{stored["sha"]}"'
    assert response["Content-Type"] == "image/jpeg"
    assert quoted["X-Accel-Redirect"] == "/protected-media/images/a%20b%231.png"
    assert quoted["Content-Type"] == "image/png"
    assert spaced.exists()
    assert client.get("/media/images/missing.jpg").status_code == 404


def test_range_reader_shows_file_response_only_its_range(stored):
    data = stored["data"]
    with open(stored["path"], "rb", buffering=0) as file:
        reader = RangeReader(file, 10, 30)
        # gunicorn's sendfile starts at the descriptor's own offset.
        assert os.lseek(file.fileno(), 0, os.SEEK_CUR) == 10

        response = FileResponse(reader)

        assert response["Content-Length"] == "20"
        assert b"".join(response.streaming_content) == data[10:30]
        assert reader.read() == b""
        reader.seek(0)
        assert reader.tell() == 10


@pytest.fixture
def keep_test_connections():
    """Django's WSGI handler recycles database connections around each request; the test client turns that
    off (the connections belong to the test run), and so does this."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def serve_through_gunicorn(raw_request):
    """Run one request the way gunicorn's workers do (parser, wsgi.create, write_file), over a real
    socket pair; returns the bytes the client receives."""
    cfg = Config()
    request = next(RequestParser(cfg, iter([raw_request]), ("127.0.0.1", 50000)))
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        response, environ = gunicorn_wsgi.create(
            request, server_side, ("127.0.0.1", 50000), ("127.0.0.1", 8000), cfg
        )
        response.force_close()
        body = WSGIHandler()(environ, response.start_response)
        assert isinstance(body, environ["wsgi.file_wrapper"]), "Django did not hand the file to gunicorn"
        try:
            response.write_file(body)
            response.close()
        finally:
            body.close()
        server_side.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: client_side.recv(65536), b""))


def test_range_goes_through_gunicorns_sendfile_with_exactly_the_range(
    stored, monkeypatch, keep_test_connections
):
    sendfile_calls = []
    real_sendfile = os.sendfile

    def recording_sendfile(out_fd, in_fd, offset, count):
        sendfile_calls.append((offset, count))
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", recording_sendfile)
    data = stored["data"]

    received = serve_through_gunicorn(
        f"GET {stored['url']} HTTP/1.1\r\nHost: localhost\r\nRange: bytes=100-299\r\n\r\n".encode()
    )

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206")
    assert b"\r\nContent-Length: 200\r\n" in head
    assert f"\r\nContent-Range: bytes 100-299/{len(data)}\r\n".encode() in head
    assert body == data[100:300]
    # Sent by the kernel from the range's offset, not read through Python.
    assert sendfile_calls and sendfile_calls[0] == (100, 200)
