"""Failures outside a view's own refusals: JSON error shape under /api/, a plain page elsewhere."""

import pytest
from django.db import OperationalError
from django.test import Client

from search import service

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    # A crash must reach the handlers as it would in production, not be re-raised into the test.
    return Client(raise_request_exception=False)


def test_an_unknown_api_address_answers_the_json_error_shape(client):
    response = client.get("/api/images/0.5/similar/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_an_unknown_page_answers_a_plain_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Nothing here" in response.content


def test_a_crash_in_the_api_answers_500_in_the_json_error_shape(client, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "search_similar", crash)
    response = client.get("/api/images/1/similar/")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "a bug" not in response.content.decode()


def test_a_lost_database_in_a_view_answers_503_with_retry_after(client, monkeypatch, caplog):
    def unreachable(*args, **kwargs):
        raise OperationalError('connection to server on socket "/secret/.s.PGSQL.5432" failed')

    monkeypatch.setattr(service, "search_similar", unreachable)
    api = client.get("/api/images/1/similar/")
    assert api.status_code == 503
    assert api["Retry-After"] == "5"
    assert api.json()["error"]["code"] == "unavailable"
    assert "secret" not in api.content.decode()
    assert "status=503" in caplog.text and "error=unavailable" in caplog.text  # the search log agrees
    page = client.get("/?similar=1")
    assert page.status_code == 503
    assert b"Back in a moment" in page.content
    assert b"secret" not in page.content
