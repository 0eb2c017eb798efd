"""Answers with an address: search by URL as a GET, an upload's answer behind a link kept for a while and
never listed, the address typed kept after an error. The model is not needed here: a kept query answers
from its stored vector (tests/test_search_share_model.py runs the upload flow through the model)."""

import io
import logging
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from search import shared
from search.models import SharedQuery
from search.tasks import delete_expired_shared
from tests.catalog_factories import centre, make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


@pytest.fixture(scope="session")
def httpserver_listen_address():
    return ("127.0.0.1", 0)


@pytest.fixture
def picture_server(httpserver, settings):
    """The test's own web server on loopback, which the URL guard lets through for this test only."""
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]
    return httpserver


def noise(size=(200, 150), seed=1):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def kept_query(vector, expires_in=timedelta(hours=1)):
    """A query kept as an upload's is, with a vector of our choosing; its token."""
    token = shared.keep(noise(), vector)
    SharedQuery.objects.filter(token=token).update(expires_at=timezone.now() + expires_in)
    return token


def test_an_address_posted_alone_is_answered_at_its_get_address(client):
    response = client.post("/", {"url": " https://pictures.example/a cat.jpg?size=large "})

    assert response.status_code == 303
    assert response["Location"] == "/?url=https%3A%2F%2Fpictures.example%2Fa+cat.jpg%3Fsize%3Dlarge"


def test_a_private_address_is_explained_and_stays_in_the_box(client):
    response = client.get("/", {"url": "http://192.168.1.1/cam.jpg"})

    page = response.content.decode()
    assert response.status_code == 400 and "private network" in page
    assert 'value="http://192.168.1.1/cam.jpg"' in page


def test_an_address_that_is_not_a_picture_is_explained_and_stays_in_the_box(client, picture_server):
    picture_server.expect_request("/notes.jpg").respond_with_data(
        b"shopping: eggs", content_type="image/jpeg"
    )
    url = picture_server.url_for("/notes.jpg") + "?a=1&b=<2>"

    response = client.get("/", {"url": url})

    page = response.content.decode()
    assert response.status_code == 400 and "not a picture we can read" in page
    assert f'value="{url.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}"' in page


def test_a_kept_upload_is_answered_from_its_link_with_its_stored_vector(client):
    catalog = make_catalog(classes=3, per_class=4)
    second_class = list(catalog)[1]
    token = kept_query(centre(second_class.pk))  # a vector no picture of noise would be given

    response = client.get("/", {"upload": token})

    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["result"].classes[0].wikidata_class == second_class
    assert 'class="query"' in page and "data:image/jpeg;base64," in page
    assert len(token) >= 32 and token != kept_query(centre(second_class.pk))  # 192 random bits each


def test_an_expired_link_says_so_and_offers_a_new_search(client):
    make_catalog(classes=2, per_class=2)
    token = kept_query(centre(1), expires_in=-timedelta(seconds=1))

    response = client.get("/", {"upload": token})

    page = response.content.decode()
    assert response.status_code == 410
    assert "This link to a search has expired" in page and "Search again with your picture." in page
    assert 'id="search-form"' in page and "result" not in response.context


@pytest.mark.parametrize("token", ["never-made-0123456789abcdefghijkl", "a" * 65, "bad\x00token", "../x"])
def test_an_unknown_link_is_a_404_with_the_same_words(client, token):
    response = client.get("/", {"upload": token})

    assert response.status_code == 404
    assert "This link to a search has expired, or never existed" in response.content.decode()


def test_a_link_lasts_as_many_hours_as_the_setting_says(client, settings):
    settings.REVIMG_SHARED_QUERY_HOURS = 2
    before = timezone.now()

    kept = SharedQuery.objects.get(token=shared.keep(noise(), centre(1)))

    assert before + timedelta(hours=2) <= kept.expires_at <= timezone.now() + timedelta(hours=2)
    assert shared.find(kept.token, now=kept.expires_at - timedelta(seconds=1)) == kept
    with pytest.raises(shared.QueryError) as gone:
        shared.find(kept.token, now=kept.expires_at)
    assert (gone.value.code, gone.value.status) == ("link_expired", 410)


def test_expired_queries_are_deleted_pictures_and_all():
    live = kept_query(centre(1))
    old = [kept_query(centre(1), expires_in=-timedelta(minutes=m)) for m in (1, 60 * 25)]

    call_command("delete_expired_shared")
    kept_after_command = set(SharedQuery.objects.values_list("token", flat=True))
    another = kept_query(centre(1), expires_in=-timedelta(seconds=5))
    deleted_by_task = delete_expired_shared.delay().get()

    assert kept_after_command == {live} and not set(old) & kept_after_command
    assert deleted_by_task == 1 and not SharedQuery.objects.filter(token=another).exists()


def test_a_shared_answer_asks_not_to_be_indexed(client):
    make_catalog(classes=2, per_class=2)
    live, expired = kept_query(centre(1)), kept_query(centre(1), expires_in=-timedelta(hours=1))

    for token in (live, expired):
        response = client.get("/", {"upload": token})
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        assert '<meta name="robots" content="noindex, nofollow">' in response.content.decode()
    home = client.get("/")
    assert "X-Robots-Tag" not in home and 'name="robots"' not in home.content.decode()


def test_a_shared_search_is_logged_without_its_token(client, caplog):
    make_catalog(classes=2, per_class=2)
    token = kept_query(centre(1))
    caplog.set_level(logging.DEBUG)

    client.get("/", {"upload": token})
    client.get("/", {"upload": token + "x"})

    lines = [r.getMessage() for r in caplog.records if r.name == "revimg.search"]
    assert [line.split()[1:3] for line in lines] == [
        ["kind=shared", "status=200"],
        ["kind=shared", "status=404"],
    ]
    assert not [r for r in caplog.records if token[:16] in r.getMessage() + repr(r.args)]


def test_the_kept_picture_is_a_jpeg_within_the_size_limit():
    panorama = noise((5000, 900))

    data = shared.picture_bytes(panorama, max_bytes=100_000)

    kept = Image.open(io.BytesIO(data))
    assert len(data) <= 100_000 and kept.format == "JPEG"
    assert max(kept.size) <= shared.MAX_PICTURE_SIDE
    assert abs(kept.width / kept.height - 5000 / 900) < 0.05  # smaller, not distorted
