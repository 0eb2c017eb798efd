"""The ensemble's arithmetic on small vectors, and how it names itself."""

import numpy as np
import pytest

from catalog.embedding import Embedder
from catalog.embedding.ensemble import EnsembleEmbedder, concatenate_normalised
from catalog.embedding.variants import LITE0, LITE2


def unit_rows(rows):
    rows = np.asarray(rows, np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_cosine_of_two_ensemble_vectors_is_the_mean_of_the_members_cosines():
    first = unit_rows([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0]])
    second = unit_rows([[0.0, 1.0], [1.0, 1.0]])
    combined = concatenate_normalised([first, second])
    members = [first[0] @ first[1], second[0] @ second[1]]  # 0.6 and 0.7071
    assert combined[0] @ combined[1] == pytest.approx(np.mean(members), abs=1e-6)


def test_every_member_weighs_the_same_whatever_its_scale():
    small = np.array([[0.1, 0.0], [0.0, 0.1]])
    large = np.array([[30.0, 40.0], [30.0, 40.0]])
    combined = concatenate_normalised([small, large])
    assert np.allclose(combined, np.array([[1, 0, 0.6, 0.8], [0, 1, 0.6, 0.8]]) / np.sqrt(2), atol=1e-6)
    assert np.allclose(np.linalg.norm(combined, axis=1), 1.0, atol=1e-6)
    assert combined.dtype == np.float32


def test_one_member_gives_its_own_unit_vectors():
    vectors = np.array([[3.0, 4.0]])
    assert np.allclose(concatenate_normalised([vectors]), [[0.6, 0.8]])


def test_no_members_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        concatenate_normalised([])
    with pytest.raises(ValueError, match="at least one"):
        EnsembleEmbedder([])


def test_an_ensemble_is_named_after_its_members_and_their_weights(tmp_path):
    ensemble = EnsembleEmbedder([Embedder(cache_dir=tmp_path), Embedder(cache_dir=tmp_path, variant=LITE2)])
    assert ensemble.name == "efficientnet-lite0+efficientnet-lite2"
    assert ensemble.version == f"{LITE0.version}+{LITE2.version}"
    assert ensemble.dim == 2560
    assert not ensemble.is_loaded
