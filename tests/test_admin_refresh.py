"""Re-embed and re-fetch from the image admin, with the real image model (slow: loads TensorFlow)."""

import numpy as np
import pytest
from catalog_factories import make_image, picture_bytes
from django.contrib.messages import get_messages
from django.urls import reverse

from catalog.embedding import MODEL_VERSION, get_embedder
from catalog.imagefile import open_image
from catalog.models import CatalogImage, WikidataClass
from catalog.phash import phash_hex

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

IMAGES = reverse("admin:catalog_catalogimage_changelist")


def act(client, action, images):
    response = client.post(
        IMAGES, {"action": action, "_selected_action": [i.pk for i in images]}, follow=True
    )
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.fixture
def lighthouse():
    return WikidataClass.objects.create(label="lighthouse", qid="Q39715")


def test_reembedding_replaces_a_stale_vector_with_the_current_models(admin_client, lighthouse):
    image = make_image(lighthouse, 1, vector=np.eye(1, 1280, 0, dtype=np.float32)[0])
    CatalogImage.objects.filter(pk=image.pk).update(embedding_version="an older model")

    message = act(admin_client, "reembed_images", [image])

    assert "1 done, 0 unchanged, 0 failed" in message
    image.refresh_from_db()
    assert not image.is_stale and image.embedding_version == MODEL_VERSION
    with image.file.open("rb") as f:
        expected = get_embedder().embed([open_image(f.read())])[0]
    assert np.allclose(np.asarray(image.embedding), expected, atol=1e-4)


def test_refetching_a_changed_source_replaces_the_picture_its_hashes_and_its_vector(
    admin_client, lighthouse, httpserver, settings
):
    old_data, new_data = picture_bytes(1), picture_bytes(2, size=(80, 60))
    image = make_image(lighthouse, 1, data=old_data, source_url=httpserver.url_for("/lighthouse.jpg"))
    old_file, old_vector = image.file.name, np.asarray(image.embedding)
    httpserver.expect_request("/lighthouse.jpg").respond_with_data(new_data, content_type="image/jpeg")
    settings.URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    message = act(admin_client, "refetch_images", [image])

    assert "1 done, 0 unchanged, 0 failed" in message
    image.refresh_from_db()
    with image.file.open("rb") as f:
        assert f.read() == new_data
    assert (image.width, image.height) == (80, 60)
    assert image.phash == phash_hex(open_image(new_data))
    assert not np.allclose(np.asarray(image.embedding), old_vector)
    assert not image.file.storage.exists(old_file)
