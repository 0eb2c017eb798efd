"""One base class for every refusal of a person's input (catalog.errors.Refusal): the API, the page and the
search log answer any subclass with its own code, message and status, whichever layer raised it."""

import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from catalog.errors import Refusal
from catalog.http.netguard import AddressRefused
from catalog.http.untrusted import UntrustedFetchError
from catalog.imagefile import ImageError
from search import api, views
from search.inputs import QueryError

pytestmark = pytest.mark.django_db


class NewKindOfRefusal(Refusal):
    """A refusal no caller has heard of: caught only if callers catch the base class."""


def test_every_refusal_of_input_is_one_kind():
    for refusal in (QueryError, ImageError, UntrustedFetchError, AddressRefused):
        assert issubclass(refusal, Refusal)


@pytest.fixture
def refused(monkeypatch, settings, caplog):
    settings.REVIMG_ANON_SEARCH_RATE = None
    caplog.set_level(logging.INFO, logger="revimg.search")

    def query_image(**kwargs):
        raise NewKindOfRefusal("new_refusal", "Not this one, for a new reason.", status=422)

    monkeypatch.setattr(api, "query_image", query_image)
    monkeypatch.setattr(views, "query_image", query_image)
    return lambda: [r.getMessage() for r in caplog.records if r.name == "revimg.search"]


def test_the_api_answers_any_refusal_with_its_code_and_status(refused):
    response = APIClient().post("/api/search/", {"url": "https://pictures.example/cat.jpg"}, format="json")

    assert response.status_code == 422
    assert response.json() == {"error": {"code": "new_refusal", "message": "Not this one, for a new reason."}}
    assert "status=422" in refused()[-1] and "error=new_refusal" in refused()[-1]


def test_the_page_answers_any_refusal_with_its_message_and_status(refused):
    response = Client().get("/", {"url": "https://pictures.example/cat.jpg"})

    assert response.status_code == 422
    assert "Not this one, for a new reason." in response.content.decode()
    assert "status=422" in refused()[-1] and "error=new_refusal" in refused()[-1]
