"""The fast path (ONNX Runtime on the model exported from Keras) gives the FP32 Keras vectors."""

import numpy as np
import pytest

from catalog.embedding import Embedder
from catalog.imagefile import open_image, preprocess

pytestmark = pytest.mark.slow

# Cosine distance allowed between the fast path and the FP32 TensorFlow model, as the README and
# catalog/embedding/onnx_runtime.py state it (measured: at most 1.2e-7, float32 rounding, on 100 photos).
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    embedder = Embedder(cache_dir=tmp_path_factory.mktemp("model-cache"))
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def keras_features(embedder):
    """The FP32 Keras model run by TensorFlow itself, from the same cache the export was made from."""
    from catalog.embedding import _import_keras_builder

    lite = _import_keras_builder()
    run = lite.inference_function(lite.load_or_build(embedder.cache_path))
    return lambda batch: run(batch)[0]


@pytest.fixture
def photos(caltech):
    return [open_image(path.read_bytes()) for path in sorted(caltech.glob("*/*.jpg"))[::300]]


def cosine_distances(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1 - (a * b).sum(axis=1)


def test_vectors_agree_with_the_fp32_keras_model_on_real_photos(embedder, keras_features, photos):
    batch = np.stack([preprocess(image) for image in photos])

    assert len(photos) == 10
    assert cosine_distances(embedder.embed_batch(batch), keras_features(batch)).max() < TOLERANCE


def test_one_image_at_a_time_gives_the_batch_vectors(embedder, photos):
    together = embedder.embed(photos)
    one_by_one = np.concatenate([embedder.embed([image]) for image in photos])

    assert np.allclose(one_by_one, together, atol=1e-6)


def test_batches_of_every_size_give_the_same_vectors(embedder, photos):
    batch = np.stack([preprocess(image) for image in photos])
    reference = embedder.embed_batch(batch)

    for size in (1, 3, 7):
        chunks = [embedder.embed_batch(batch[start : start + size]) for start in range(0, len(batch), size)]
        assert np.allclose(np.concatenate(chunks), reference, atol=1e-6)
