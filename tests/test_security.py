"""Safe to expose: HTTPS behind a proxy, security headers on every response, no password login on the API."""

import base64
import os
import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.test import Client
from rest_framework.test import APIClient

from revimg.security_headers import SecurityHeadersMiddleware
from search.service import ClassHit, SearchResult
from tests.catalog_factories import make_catalog, make_class

HTTPS_SETTINGS = [
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_REDIRECT_EXEMPT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
]
HTTPS_WARNINGS = ["security.W004", "security.W008", "security.W012", "security.W016"]


def production_env(**extra):
    """The README's production environment, reaching this test's database."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "REVIMG_"))}
    env.update(
        DJANGO_ALLOWED_HOSTS="search.example.org",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(60),
        REVIMG_DATA_DIR=str(django_settings.REVIMG_DATA_DIR),
        REVIMG_DB_NAME=connection.settings_dict["NAME"],
        **extra,
    )
    return env


def deploy_check(env):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_the_deploy_check_passes_in_production_with_https():
    result = deploy_check(production_env(REVIMG_HTTPS="1"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_the_deploy_check_warns_without_https():
    result = deploy_check(production_env())

    assert result.returncode != 0
    for warning in HTTPS_WARNINGS:
        assert warning in result.stdout + result.stderr


def settings_from_env(monkeypatch, **env):
    """revimg/settings.py evaluated afresh under env: what the process would run with."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(Path(django_settings.BASE_DIR) / "revimg" / "settings.py"))


def test_hsts_is_settable(monkeypatch):
    loaded = settings_from_env(
        monkeypatch,
        REVIMG_HTTPS="1",
        REVIMG_HSTS_SECONDS="600",
        REVIMG_HSTS_INCLUDE_SUBDOMAINS="0",
        REVIMG_HSTS_PRELOAD="no",
    )

    assert (loaded["SECURE_HSTS_SECONDS"], loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"]) == (600, False)
    assert loaded["SECURE_HSTS_PRELOAD"] is False


@pytest.fixture
def https_client(monkeypatch, settings):
    """A client of the app configured as with REVIMG_HTTPS=1."""
    loaded = settings_from_env(monkeypatch, REVIMG_HTTPS="1")
    for name in HTTPS_SETTINGS:
        setattr(settings, name, loaded[name])
    return Client()  # a new client loads the middleware with these settings


@pytest.mark.django_db
def test_with_https_plain_http_is_redirected_except_the_health_checks(https_client):
    assert https_client.get("/?similar=1").headers["Location"] == "https://testserver/?similar=1"
    assert https_client.get("/admin/login/").status_code == 301

    assert https_client.get("/healthz").status_code == 200
    # SecurityMiddleware redirects before the view runs: any answer but a redirect means exempt (readyz may
    # say 503 here, the image model not being loaded).
    assert https_client.get("/readyz").status_code != 301


@pytest.mark.django_db
def test_with_https_the_proxy_header_marks_the_request_secure(https_client):
    response = https_client.get("/", headers={"x-forwarded-proto": "https"})

    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response.cookies["csrftoken"]["secure"]


@pytest.mark.django_db
def test_every_response_forbids_framing_sniffing_and_cross_origin_referrers(client):
    response = client.get("/")

    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def csp(response):
    header = response.headers["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in header.split(";"))}


def test_the_policy_has_every_directive(rf):
    policy = csp(SecurityHeadersMiddleware(lambda request: HttpResponse())(rf.get("/")))

    assert policy == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, inline_styles",
    [
        ("/", False),
        ("/api/classes/", False),
        ("/no-such-page", False),
        ("/admin/login/", True),
        ("/api/docs/", True),
    ],
)
def test_every_response_has_a_csp_without_inline_scripts(client, path, inline_styles):
    policy = csp(client.get(path))

    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert ("'unsafe-inline'" in policy["style-src"]) is inline_styles


@pytest.mark.django_db
@pytest.mark.parametrize("path, camera", [("/", "camera=(self)"), ("/api/classes/", "camera=()")])
def test_only_the_search_page_may_use_the_camera(client, path, camera):
    features = client.get(path).headers["Permissions-Policy"].split(", ")

    assert camera in features
    assert {"microphone=()", "geolocation=()", "payment=()", "usb=()"} <= set(features)


def test_a_policy_set_by_the_view_is_kept(rf):
    def view(request):
        return HttpResponse(headers={"Content-Security-Policy": "default-src 'none'"})

    response = SecurityHeadersMiddleware(view)(rf.get("/"))

    assert response.headers["Content-Security-Policy"] == "default-src 'none'"
    assert "Permissions-Policy" in response.headers


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>")


@pytest.mark.django_db
def test_the_api_docs_page_has_no_inline_script(client):
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    assert page.status_code == 200 and not INLINE_SCRIPT.search(page.content.decode())
    assert 'src="/api/docs/?script="' in page.content.decode()
    assert script.headers["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


@pytest.mark.django_db
def test_a_result_page_has_no_inline_style(client, settings):
    settings.REVIMG_ANON_SEARCH_RATE = settings.REVIMG_ANON_SIMILAR_RATE = None
    images = next(iter(make_catalog(classes=2, per_class=4).values()))

    page = client.get(f"/?similar={images[0].pk}").content.decode()

    assert 'id="answer"' in page and 'id="results"' in page
    assert "style=" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["match", "closest"])
def test_the_confidence_bar_has_no_inline_style(state):
    # The bar shows only on a guessed answer (a search with a picture): the verdict is drawn alone here.
    wikidata_class = make_class("ketch")
    result = SearchResult(
        model="m",
        state=state,
        confidence=0.42,
        took_ms=1.0,
        classes=[ClassHit(wikidata_class, 1.0)],
        results=[],
    )

    verdict = render_to_string("search/verdict.html", {"result": result})

    assert '<meter class="meter"' in verdict
    assert "style=" not in verdict


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.mark.django_db
def test_the_api_ignores_basic_auth_so_it_tells_no_password_apart(django_user_model):
    django_user_model.objects.create_superuser("curator", "curator@example.org", "the right password")
    api = APIClient()

    anonymous = api.get("/api/classes/")
    right = api.get("/api/classes/", HTTP_AUTHORIZATION=basic("curator", "the right password"))
    wrong = api.get("/api/classes/", HTTP_AUTHORIZATION=basic("curator", "a wrong password"))

    assert right.status_code == wrong.status_code == anonymous.status_code == 200
    assert right.content == wrong.content == anonymous.content
    assert right.wsgi_request.user.is_anonymous


# In the browser: the pages run under their policies without a single violation.


# Reports every CSP violation, with what was blocked, to the test (window.reportViolation).
VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", event => window.reportViolation(
    `${location.pathname}: ${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`));
"""

# A picture drawn in the page and dropped on the drop zone, as a person would drop a file.
DROP_A_DRAWING = """async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 80; canvas.height = 60;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#3a7"; ctx.fillRect(0, 0, 80, 60);
    const blob = await new Promise(done => canvas.toBlob(done, "image/png"));
    const files = new DataTransfer();
    files.items.add(new File([blob], "drawing.png", {type: "image/png"}));
    document.getElementById("drop-zone").dispatchEvent(new DragEvent("drop", {dataTransfer: files}));
}"""

# Once an image has loaded or failed (refused by the CSP, say): whether it shows.
IMAGE_SHOWN = """async selector => {
    const img = document.querySelector(selector);
    await img.decode().catch(() => null);
    return img.naturalWidth > 0;
}"""


def is_policy_message(text):
    return any(
        word in text for word in ("Content Security Policy", "Content-Security-Policy", "Permissions-Policy")
    )


@pytest.fixture
def watched_page(browser):
    """A page, and the list of every policy violation or policy error it reports."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)  # the first search loads the image model
    problems = []
    page.expose_function("reportViolation", lambda text: problems.append(text))
    page.add_init_script(VIOLATION_LISTENER)
    page.on("console", lambda message: is_policy_message(message.text) and problems.append(message.text))
    yield page, problems
    context.close()


def search_by_dropping_a_drawing(page, url):
    page.goto(url)
    # Hold the form back until the preview (a blob: URL) has shown, then post it as the page would.
    page.evaluate(
        "document.getElementById('search-form').addEventListener('submit', e => e.preventDefault())"
    )
    page.evaluate(DROP_A_DRAWING)
    assert page.evaluate(IMAGE_SHOWN, "#drop-preview")
    page.evaluate("document.getElementById('search-form').submit()")
    page.wait_for_selector("#answer")
    assert page.evaluate(IMAGE_SHOWN, "#answer img.query")  # a data: URL


def log_in_to_the_admin(page, url):
    page.goto(f"{url}/admin/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "a long test password")
    page.click("input[type=submit]")
    page.goto(f"{url}/admin/catalog/catalogimage/")
    page.wait_for_selector("#result_list img")  # thumbnails sized by style attributes


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_pages_run_under_their_policies_without_violations(
    watched_page, live_server, settings, django_user_model
):
    settings.REVIMG_ANON_SEARCH_RATE = settings.REVIMG_ANON_SIMILAR_RATE = None
    page, problems = watched_page
    images = next(iter(make_catalog(classes=2, per_class=3).values()))
    django_user_model.objects.create_superuser("curator", "curator@example.org", "a long test password")

    search_by_dropping_a_drawing(page, live_server.url)
    assert problems == []

    page.goto(f"{live_server.url}/?similar={images[0].pk}")
    assert problems == []
    # The stylesheet, not a style attribute, draws the answer (the CSP refuses inline styles here).
    assert page.locator("#answer").evaluate("a => getComputedStyle(a).borderLeftWidth") == "6px"

    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert "/api/search/" in page.locator(".opblock-summary-path").all_inner_texts()
    assert problems == []

    log_in_to_the_admin(page, live_server.url)
    assert problems == []
