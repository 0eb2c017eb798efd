"""Image embeddings: EfficientNet-Lite0's 1280-d GeM-pooled features, L2-normalised, for cosine search.

Other members of the family (catalog.embedding.variants) embed the same way at their own input size and
with their own pooling.
Inference runs in ONNX Runtime, on a graph exported from the Keras model (catalog.embedding.lite) the
first time it is needed and cached. Importing this package is cheap: the runtime is loaded when an Embedder
first needs its model, and TensorFlow (seconds to import, about half a gigabyte) only when the ONNX cache
must be made, so web processes that never embed stay light and the others start fast.
"""

import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from catalog.embedding.variants import LITE0, LiteVariant
from catalog.imagefile import preprocess

EMBEDDING_DIM = 1280
MODEL_NAME = LITE0.name
MODEL_VERSION = LITE0.version
INPUT_SIZE = LITE0.input_size
NUM_CLASSES = 1000
DEFAULT_BATCH_SIZE = 32


def usable_cores() -> int:
    """The cores this process may run on (what nproc prints): the model's threads, shared out by gunicorn."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_cache_dir() -> Path:
    """settings.REVIMG_MODEL_CACHE_DIR under Django, else the user's cache directory."""
    from django.conf import settings

    if settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"):
        return Path(settings.REVIMG_MODEL_CACHE_DIR)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "revimg" / "models"


def cache_file_name(variant: LiteVariant = LITE0) -> str:
    return f"{variant.file_stem}.keras"


def onnx_cache_file_name(variant: LiteVariant = LITE0) -> str:
    return f"{variant.file_stem}.onnx"


def _import_keras_builder():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from catalog.embedding import lite

    return lite


def _export_onnx(keras_cache_path: Path, variant: LiteVariant, input_name: str, opset: int) -> bytes:
    lite = _import_keras_builder()
    return lite.onnx_bytes(lite.load_or_build(keras_cache_path, variant), input_name, opset)


def _l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # An all-zero feature vector (possible in principle after ReLU6) stays zero instead of becoming NaN.
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


class Embedder:
    """Turns images into unit-length 1280-d vectors with one member of the family (Lite0 unless told);
    the model is loaded on first use."""

    dim = EMBEDDING_DIM

    def __init__(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        variant: LiteVariant = LITE0,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.variant = variant
        self.name, self.version, self.input_size = variant.name, variant.version, variant.input_size
        self.batch_size = batch_size
        self.threads = threads  # ONNX Runtime threads; None: one per core
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._run = None
        self._load_lock = threading.Lock()

    @property
    def cache_path(self) -> Path:
        return (self.cache_dir or default_cache_dir()) / cache_file_name(self.variant)

    @property
    def onnx_cache_path(self) -> Path:
        return (self.cache_dir or default_cache_dir()) / onnx_cache_file_name(self.variant)

    @property
    def is_loaded(self) -> bool:
        return self._run is not None

    def load(self) -> None:
        """Load the model now rather than on the first call (worker warm-up)."""
        self._model_function()

    def _model_function(self):
        if self._run is None:
            with self._load_lock:
                if self._run is None:
                    from catalog.embedding import onnx_runtime

                    self._run = onnx_runtime.load_or_export(
                        self.onnx_cache_path,
                        lambda name, opset: _export_onnx(self.cache_path, self.variant, name, opset),
                        self.input_size,
                        (EMBEDDING_DIM, NUM_CLASSES),
                        threads=self.threads,
                    )
        return self._run

    def _features_and_logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        size = self.input_size
        if batch.ndim != 4 or batch.shape[1:] != (size, size, 3):
            raise ValueError(f"expected an array of shape (n, {size}, {size}, 3), got {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
        run = self._model_function()
        chunks = [
            run(batch[start : start + self.batch_size]) for start in range(0, len(batch), self.batch_size)
        ]
        return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Unit-length vectors, shape (n, 1280), for preprocessed images of shape (n, size, size, 3)."""
        features, _ = self._features_and_logits(batch)
        return _l2_normalize(features)

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """Unit-length vectors, shape (n, 1280), one row per image, in order."""
        return self.embed_batch(self._preprocess_all(images))

    def classify(self, images: list[Image.Image]) -> np.ndarray:
        """ImageNet-1k class probabilities, shape (n, 1000): for tests and diagnostics."""
        _, logits = self._features_and_logits(self._preprocess_all(images))
        return _softmax(logits)

    def _preprocess_all(self, images: list[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.input_size, self.input_size, 3), np.float32)
        return np.stack([preprocess(image, self.input_size) for image in images])


def _configured_threads() -> int | None:
    from django.conf import settings

    return (settings.REVIMG_EMBED_THREADS or None) if settings.configured else None


_shared_embedder: Embedder | None = None
_shared_lock = threading.Lock()


def get_embedder() -> Embedder:
    """This process's shared Embedder (its model is loaded on first use, once)."""
    global _shared_embedder
    if _shared_embedder is None:
        with _shared_lock:
            if _shared_embedder is None:
                _shared_embedder = Embedder(threads=_configured_threads())
    return _shared_embedder
