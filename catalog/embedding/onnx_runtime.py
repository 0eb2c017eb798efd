"""Inference in ONNX Runtime on a graph exported from the Keras model, cached next to the ``.keras`` file.

The Keras model (catalog.embedding.lite) stays the definition; tf2onnx turns it into an ONNX file the
first time it is needed, and later starts load that file alone, without importing TensorFlow (seconds and
about half a gigabyte saved per process). On a 2-core AVX-512 machine ONNX Runtime ran this model 1.3-1.6x
as fast as TensorFlow in a tf.function, with the same vectors (cosine distance below 1e-6); see
bench/embed_throughput.py.
"""

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime

from catalog.embedding import usable_cores

logger = logging.getLogger(__name__)

INPUT_NAME = "image"
OPSET = 17


def session_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    options.inter_op_num_threads = 1  # the model is one chain of ops: nothing to run side by side
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle threads otherwise spin for a while after each op, taking the CPU from the threads that decode and
    # store images alongside (the model alone ran as fast either way).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _has_expected_signature(session: onnxruntime.InferenceSession, input_size: int, dims) -> bool:
    inputs = [(i.name, i.shape[1:]) for i in session.get_inputs()]
    outputs = [o.shape[1:] for o in session.get_outputs()]
    return inputs == [(INPUT_NAME, [input_size, input_size, 3])] and outputs == [[dim] for dim in dims]


def _session(model: str | Path | bytes, threads: int | None = None) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model, session_options(threads), providers=["CPUExecutionProvider"])


def _load_cached(
    path: Path, input_size: int, dims, threads: int | None
) -> onnxruntime.InferenceSession | None:
    if not path.is_file():
        return None
    try:
        session = _session(path, threads)
    except Exception as error:  # a damaged cache must never stop the service: it is exported again
        logger.warning("ignoring unreadable ONNX model cache %s: %s", path, error)
        return None
    if not _has_expected_signature(session, input_size, dims):
        logger.warning("ignoring ONNX model cache %s: unexpected inputs or outputs", path)
        return None
    return session


def _save_atomically(data: bytes, path: Path) -> None:
    """Write to a temporary file in the same directory, then rename: readers see no file or a whole one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".onnx")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(temp_name, 0o644)  # mkstemp makes it private; other users' processes may share it
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    except OSError as error:
        # A read-only or full disk costs only the export time on the next start, not the service.
        logger.warning("could not write ONNX model cache %s: %s", path, error)


def load_or_export(
    path: Path, export: Callable[[str, int], bytes], input_size: int, dims, threads: int | None = None
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A callable running the model: float32 batch (n, size, size, 3) in, (features, logits) out.

    The ONNX file at path is used when valid; otherwise export(input name, opset) makes it from the Keras
    model, and it is cached at path.
    """
    session = _load_cached(path, input_size, dims, threads)
    if session is None:
        logger.info("exporting the Keras model to ONNX in %s", path)
        data = export(INPUT_NAME, OPSET)
        _save_atomically(data, path)
        session = _session(data, threads)

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, logits = session.run(None, {INPUT_NAME: batch})
        return features, logits

    return run
