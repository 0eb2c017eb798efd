"""Pictures in a bucket are shown from the bucket: signed or public URLs in the page, the API and the admin;
the page's Content-Security-Policy allows them; /media/ serves nothing."""

import html
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from rest_framework.test import APIClient

from revimg.mediastorage import s3_storage
from tests.catalog_factories import make_catalog, make_class, make_image

pytestmark = [pytest.mark.django_db, pytest.mark.s3]


@pytest.fixture(autouse=True)
def no_throttle(settings):
    settings.REVIMG_ANON_SEARCH_RATE = None
    settings.REVIMG_ANON_SIMILAR_RATE = None


def use_storage(settings, bucket, **options):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(bucket.name, prefix=bucket.prefix, endpoint_url=bucket.endpoint, **options),
    }


def api_image(image):
    return APIClient().get(f"/api/images/{image.pk}/").json()


def img_sources(response):
    csp = response.headers["Content-Security-Policy"]
    return next(part.split()[1:] for part in csp.split("; ") if part.startswith("img-src "))


def test_the_api_gives_signed_urls_that_fetch_the_picture(s3_media):
    image = make_image(make_class("s3"), seed=1)

    answer = api_image(image)

    url = urlsplit(answer["image_url"])
    assert f"{url.scheme}://{url.netloc}" == s3_media.endpoint
    assert url.path == f"/{s3_media.name}/{s3_media.key(image.file.name)}"
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["3600"] and query["X-Amz-Signature"]
    assert urlsplit(answer["thumbnail_url"]).path.endswith(image.thumbnail.name)
    fetched = requests.get(answer["image_url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == s3_media.read(image.file.name)


def test_signed_urls_expire_when_told(s3_media, settings):
    use_storage(settings, s3_media, expiry=600)
    image = make_image(make_class("s3"), seed=2)

    assert parse_qs(urlsplit(api_image(image)["image_url"]).query)["X-Amz-Expires"] == ["600"]


def test_public_urls_carry_no_signature(s3_media, settings):
    use_storage(settings, s3_media, signed=False)
    image = make_image(make_class("s3"), seed=3)

    url = api_image(image)["image_url"]

    assert url == f"{s3_media.endpoint}/{s3_media.name}/{s3_media.key(image.file.name)}"


def test_public_urls_can_point_at_a_cdn_which_the_policy_then_allows(s3_media, settings, client):
    use_storage(settings, s3_media, signed=False, public_url="https://cdn.example.org/revimg/")
    image = make_image(make_class("s3"), seed=4)

    url = api_image(image)["image_url"]

    assert url == f"https://cdn.example.org/revimg/{s3_media.key(image.file.name)}"
    assert "https://cdn.example.org" in img_sources(client.get("/"))


def test_the_page_shows_pictures_from_the_bucket_and_its_policy_allows_them(s3_media, client):
    catalog = make_catalog(classes=2, per_class=3)
    image = next(iter(catalog.values()))[0]

    response = client.get(f"/?similar={image.pk}")

    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert f"{s3_media.endpoint}/{s3_media.name}/{s3_media.key(image.thumbnail.name)}?" in page
    assert "/media/" not in page
    assert img_sources(response) == ["'self'", "data:", "blob:", s3_media.endpoint]


def test_the_local_folder_keeps_the_policy_to_the_site_itself(client):
    assert img_sources(client.get("/")) == ["'self'", "data:", "blob:"]


def test_the_admin_shows_thumbnails_from_the_bucket(s3_media, admin_client):
    image = make_image(make_class("s3"), seed=5)

    page = html.unescape(admin_client.get("/admin/catalog/catalogimage/").content.decode())

    assert f"{s3_media.endpoint}/{s3_media.name}/{s3_media.key(image.thumbnail.name)}?" in page


def test_media_answers_404_with_a_bucket_even_for_a_file_in_the_local_folder(s3_media, settings, client):
    local = settings.MEDIA_ROOT / "images" / "aa" / "left.jpg"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"an old local file")

    assert client.get("/media/images/aa/left.jpg").status_code == 404
