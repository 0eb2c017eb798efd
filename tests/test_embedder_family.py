"""The larger EfficientNet-Lite members: built to their width and depth, their real weights, their answers;
and Lite0 left exactly as it was."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from catalog.embedding import Embedder
from catalog.embedding.pth import read_state_dict
from catalog.embedding.variants import LITE0, LITE1, LITE2

pytestmark = pytest.mark.slow

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def photos():
    return [Image.fromarray(skimage.data.chelsea()), Image.fromarray(skimage.data.coffee())]


@pytest.fixture(scope="module", params=[LITE1, LITE2], ids=lambda variant: variant.name)
def larger(request, cache_dir):
    return Embedder(cache_dir=cache_dir, variant=request.param)


def test_lite0_keeps_its_name_and_its_cache_files_follow_the_version(tmp_path):
    embedder = Embedder(cache_dir=tmp_path)
    # The name stays; the version (v2: GeM pooling) names the cache files, so an older cache is not reused.
    assert (embedder.name, embedder.version, embedder.input_size) == (
        "efficientnet-lite0",
        "imagenet-57934424/v2",
        224,
    )
    assert embedder.onnx_cache_path.name == "efficientnet-lite0-imagenet-57934424-v2.onnx"
    assert embedder.cache_path.name == "efficientnet-lite0-imagenet-57934424-v2.keras"


@pytest.mark.parametrize("variant", [LITE0, LITE1, LITE2], ids=lambda variant: variant.name)
def test_each_version_names_its_weights_by_their_hash(variant):
    weights = Path(variant.weights_path()).read_bytes()
    assert variant.version.startswith(f"imagenet-{hashlib.sha256(weights).hexdigest()[:8]}/v")


@pytest.mark.parametrize(
    ("variant", "blocks", "widths"),
    [
        (LITE0, 16, (16, 24, 40, 80, 112, 192, 320)),
        (LITE1, 21, (16, 24, 40, 80, 112, 192, 320)),
        (LITE2, 21, (16, 24, 48, 88, 120, 208, 352)),
    ],
    ids=["lite0", "lite1", "lite2"],
)
def test_the_scaled_network_has_the_blocks_and_widths_of_its_weights(variant, blocks, widths):
    from catalog.embedding import _import_keras_builder

    lite = _import_keras_builder()
    assert tuple(stage[5] for stage in lite.scaled_stages(variant)) == widths
    assert len(list(lite._block_specs(variant))) == blocks
    model = lite.build_model(variant)
    # The mapping refuses weights left over or missing, so a wrong shape or count fails here.
    lite.load_state_dict(model, read_state_dict(variant.weights_path()))
    assert tuple(model.inputs[0].shape) == (None, variant.input_size, variant.input_size, 3)


def test_a_larger_member_classifies_chelsea_as_a_cat_and_coffee_as_espresso(larger, photos):
    cat, coffee = larger.classify(photos)
    assert set(np.argsort(-cat)[:3]) <= set(CAT_CLASSES)
    assert cat[list(CAT_CLASSES)].sum() > 0.8
    assert np.argmax(coffee) == ESPRESSO and coffee[ESPRESSO] > 0.5


def test_a_larger_member_gives_unit_length_1280_vectors_at_its_own_input_size(larger, photos):
    from catalog.imagefile import preprocess

    vectors = larger.embed(photos)
    assert vectors.shape == (2, 1280) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    size = larger.input_size
    batch = np.stack([preprocess(photo, size) for photo in photos])
    assert batch.shape == (2, size, size, 3)
    assert np.array_equal(larger.embed_batch(batch), vectors)
    with pytest.raises(ValueError, match=f"{size}, {size}, 3"):
        larger.embed_batch(np.zeros((1, 224, 224, 3), np.float32))


def test_each_member_keeps_its_own_cache_files(larger, photos, cache_dir):
    larger.load()
    assert larger.onnx_cache_path.name == f"{larger.variant.file_stem}.onnx"
    assert larger.onnx_cache_path.is_file() and larger.cache_path.is_file()
    reloaded = Embedder(cache_dir=cache_dir, variant=larger.variant)
    assert np.allclose(reloaded.embed(photos), larger.embed(photos), atol=1e-6)
