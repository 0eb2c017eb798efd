"""Search by URL fetches only public addresses, however the address is written, and only so much.

Refusals are proved where the address is classified: name resolution is replaced, and a guard fails the
test if anything tries to connect beyond loopback. The fetches that succeed go to a local test server.
"""

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from catalog.http import netguard
from catalog.http.untrusted import UntrustedFetchError, fetch_untrusted_image

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
MB = 2**20


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any connection attempt to an address outside 127.0.0.0/8 and ::1."""
    attempts = []
    real_connect = socket.socket.connect

    def guarded_connect(sock, address):
        if not ipaddress.ip_address(address[0]).is_loopback:
            attempts.append(address)
            raise AssertionError(f"the test tried to connect to {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield
    assert attempts == []


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers for names, as getaddrinfo would give them; counts the questions."""
    answers, asked = {}, []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if netguard.literal_address(host) is not None:  # numeric: the C library answers without a lookup
            return real_getaddrinfo(host, port, *args, **kwargs)
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    fake = type("FakeDNS", (), {"answers": answers, "asked": asked})
    return fake


def host_port(httpserver):
    return f"{httpserver.host}:{httpserver.port}"


def refusal(url, **kwargs):
    with pytest.raises(UntrustedFetchError) as caught:
        fetch_untrusted_image(url, MB, allowed_private=kwargs.pop("allowed_private", ()), **kwargs)
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://2130706433/x.png",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/x.png",
        "http://0x7f.1/x.png",
        "http://0177.0.0.1/x.png",  # octal
        "http://127.1/x.png",
        "http://127.000.000.001/x.png",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",  # IPv4-mapped IPv6
        "http://[::ffff:a9fe:a9fe]/x.png",  # 169.254.169.254, mapped and in hex
        "http://[::127.0.0.1]/x.png",  # IPv4-compatible IPv6
        "http://[2002:a00:1::]/x.png",  # 6to4 around 10.0.0.1
        "http://[64:ff9b::c0a8:1]/x.png",  # NAT64 around 192.168.0.1
        "http://[fe80::1%25eth0]/x.png",
        "http://[fc00::1]/x.png",
        "http://[::]/x.png",
        "http://0.0.0.0/x.png",
        "http://0/x.png",
        "http://10.0.0.1/x.png",
        "http://172.16.5.4/x.png",
        "http://192.168.1.1/x.png",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://100.64.0.1/x.png",  # carrier-grade NAT
        "http://224.0.0.1/x.png",
        "http://255.255.255.255/x.png",
        "http://240.0.0.1/x.png",
        "http://192.0.2.10/x.png",  # documentation range
        "https://127.0.0.1./x.png",  # trailing dot
        "HTTP://127.0.0.1/x.png",
    ],
)
def test_local_and_private_addresses_are_refused_however_written(url, fake_dns):
    error = refusal(url)

    assert error.code == "url_forbidden" and error.status == 400
    assert fake_dns.asked == []  # an IP literal is never sent to the resolver


@pytest.mark.parametrize(
    "answers",
    [["127.0.0.1"], ["10.1.2.3"], ["169.254.169.254"], ["::1"], ["fd12::1"], ["93.184.215.14", "10.0.0.7"]],
)
def test_names_that_resolve_to_a_private_address_are_refused(answers, fake_dns):
    fake_dns.answers["images.example.com"] = answers

    assert refusal("http://images.example.com/cat.jpg").code == "url_forbidden"
    assert refusal("http://images.example.com./cat.jpg").code == "url_forbidden"


def test_localhost_by_name_is_refused(fake_dns):
    fake_dns.answers["localhost"] = ["127.0.0.1", "::1"]

    assert refusal("http://LOCALHOST/x.png").code == "url_forbidden"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("file:///etc/passwd", "url_scheme"),
        ("ftp://example.com/x.png", "url_scheme"),
        ("gopher://example.com/", "url_scheme"),
        ("javascript:alert(1)", "url_scheme"),
        ("example.com/x.png", "url_scheme"),
        ("http://user@93.184.215.14/x.png", "url_invalid"),
        ("http://93.184.215.14@127.0.0.1/x.png", "url_invalid"),
        ("http://evil.example\\@127.0.0.1/x.png", "url_invalid"),
        ("http://93.184.215.14 /x.png", "url_invalid"),
        ("http://93.184.215.14:22/x.png", "url_port"),
        ("http:///x.png", "url_invalid"),
        ("", "url_invalid"),
    ],
)
def test_urls_that_are_not_plain_web_addresses_are_refused(url, code, fake_dns):
    assert refusal(url).code == code


def test_unknown_names_are_reported_as_not_found(fake_dns):
    assert refusal("http://no-such-host.example/x.png").code == "url_unresolvable"


def test_public_addresses_pass_the_check_without_any_connection(fake_dns):
    fake_dns.answers["upload.wikimedia.org"] = ["198.35.26.112", "2620:0:863:ed1a::2:b"]

    target = netguard.check_url("https://upload.wikimedia.org/wikipedia/commons/a/a9/Example.jpg")

    assert [str(a) for a in target.addresses] == ["198.35.26.112", "2620:0:863:ed1a::2:b"]
    assert target.host_header == "upload.wikimedia.org"
    assert netguard.check_url("http://93.184.215.14/x.png?size=2").path == "/x.png?size=2"


def test_an_allowed_local_server_is_fetched(httpserver):
    httpserver.expect_request("/cat.png").respond_with_data(PNG_BYTES, content_type="image/png")

    download = fetch_untrusted_image(
        httpserver.url_for("/cat.png"), MB, allowed_private=[host_port(httpserver)]
    )

    assert download.content == PNG_BYTES and download.content_type == "image/png"


def test_the_same_server_is_refused_when_not_allowed(httpserver):
    httpserver.expect_request("/cat.png").respond_with_data(PNG_BYTES)

    assert refusal(httpserver.url_for("/cat.png")).code in ("url_port", "url_forbidden")
    assert len(httpserver.log) == 0


def test_a_name_is_resolved_once_and_the_checked_address_is_used_with_the_name_as_host(httpserver, fake_dns):
    fake_dns.answers["pictures.test"] = ["127.0.0.1"]
    seen_hosts = []

    def handler(request):
        seen_hosts.append(request.headers["Host"])
        return Response(PNG_BYTES, content_type="image/png")

    httpserver.expect_request("/a.png").respond_with_handler(handler)

    download = fetch_untrusted_image(
        f"http://pictures.test:{httpserver.port}/a.png",
        MB,
        allowed_private=[f"pictures.test:{httpserver.port}"],
    )

    assert download.content == PNG_BYTES
    assert seen_hosts == [f"pictures.test:{httpserver.port}"]
    assert fake_dns.asked == ["pictures.test"]


def test_redirects_are_followed_and_each_hop_is_checked(httpserver):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new.png"})
    httpserver.expect_request("/new.png").respond_with_data(PNG_BYTES)

    download = fetch_untrusted_image(httpserver.url_for("/old"), MB, allowed_private=[host_port(httpserver)])

    assert download.content == PNG_BYTES and download.url.endswith("/new.png")


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::ffff:10.0.0.1]/x.png",
        "http://2130706433:80/x.png",
        "file:///etc/passwd",
    ],
)
def test_a_redirect_to_a_forbidden_address_is_refused(httpserver, location):
    httpserver.expect_request("/go").respond_with_data("", status=302, headers={"Location": location})

    error = refusal(httpserver.url_for("/go"), allowed_private=[host_port(httpserver)])

    assert error.code in ("url_forbidden", "url_scheme")


def test_endless_redirects_stop(httpserver):
    httpserver.expect_request("/loop").respond_with_data("", status=307, headers={"Location": "/loop"})

    error = refusal(httpserver.url_for("/loop"), allowed_private=[host_port(httpserver)])

    assert error.code == "url_redirects"
    assert len(httpserver.log) == 6  # the first request and five redirects


def test_a_body_larger_than_the_cap_is_refused_with_413(httpserver):
    httpserver.expect_request("/big").respond_with_data(b"x" * (MB + 1))

    error = refusal(httpserver.url_for("/big"), allowed_private=[host_port(httpserver)])

    assert (error.code, error.status) == ("too_large", 413)


def test_a_stream_without_length_is_cut_at_the_cap(httpserver):
    def endless():
        while True:
            yield b"x" * 65536

    httpserver.expect_request("/stream").respond_with_handler(lambda request: Response(endless()))

    error = refusal(httpserver.url_for("/stream"), allowed_private=[host_port(httpserver)])

    assert (error.code, error.status) == ("too_large", 413)


def test_an_error_status_is_reported(httpserver):
    httpserver.expect_request("/gone").respond_with_data("no", status=404)

    error = refusal(httpserver.url_for("/gone"), allowed_private=[host_port(httpserver)])

    assert error.code == "url_status" and "404" in error.message


def test_a_server_too_slow_to_answer_times_out(httpserver):
    answer_now = threading.Event()

    def slow(request):
        answer_now.wait(10)
        return Response(PNG_BYTES)

    httpserver.expect_request("/slow").respond_with_handler(slow)

    try:
        error = refusal(httpserver.url_for("/slow"), allowed_private=[host_port(httpserver)], timeout=1)
    finally:
        answer_now.set()  # free the (single-threaded) test server for the next test

    assert error.code == "url_timeout"


def test_a_closed_port_is_reported_as_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused

        error = refusal(f"http://127.0.0.1:{port}/x.png", allowed_private=[f"127.0.0.1:{port}"])

    assert error.code == "url_unreachable"


@pytest.fixture
def https_server(tmp_path):
    """A local HTTPS server whose certificate names pictures.test, and the CA file that trusts it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pictures.test",
         "-addext", "subjectAltName=DNS:pictures.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    yield server, cert
    server.clear()
    server.stop()


def test_https_checks_the_certificate_against_the_name_while_connecting_to_the_checked_address(
    https_server, fake_dns, monkeypatch
):
    server, cert = https_server
    server.expect_request("/p.png").respond_with_data(PNG_BYTES)
    monkeypatch.setattr("requests.certs.where", lambda: str(cert))
    fake_dns.answers["pictures.test"] = ["127.0.0.1"]
    fake_dns.answers["other.test"] = ["127.0.0.1"]
    allowed = [f"pictures.test:{server.port}", f"other.test:{server.port}"]

    download = fetch_untrusted_image(
        f"https://pictures.test:{server.port}/p.png", MB, allowed_private=allowed
    )
    error = refusal(f"https://other.test:{server.port}/p.png", allowed_private=allowed)

    assert download.content == PNG_BYTES
    assert error.code == "url_tls"  # the certificate names pictures.test, not other.test
