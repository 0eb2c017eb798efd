"""Read PyTorch's legacy (pre-1.6, non-zip) ``.pth`` serialization into numpy, without torch.

The legacy layout is five consecutive pickles (magic number, protocol version, system info, the object
whose tensors refer to storages by persistent id, the list of storage keys), followed by each storage in
key order as an int64 little-endian element count and the raw little-endian data.

Unpickling is restricted to the handful of globals a state_dict needs, so a hostile file cannot run code.
"""

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

# BatchNorm's step counter: training bookkeeping, not a weight.
DROPPED_SUFFIXES = ("num_batches_tracked",)


class PthFormatError(ValueError):
    """The file is not a legacy .pth state_dict this reader understands (or is unsafe to read)."""


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *_):
    # The storages' bytes follow the pickle, so tensors can only be described here, filled in later.
    if not isinstance(storage, _StorageRef):
        raise PthFormatError("tensor refers to something other than a storage")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows only the globals of a plain state_dict; anything else is refused, never imported."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise PthFormatError(f"refusing to unpickle global {module}.{name}: not part of a plain state_dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise PthFormatError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel, view_metadata = pid
        if not isinstance(dtype, np.dtype):
            raise PthFormatError(f"unexpected storage type {dtype!r}")
        if view_metadata is not None:
            raise PthFormatError("storage views are not supported")
        return _StorageRef(str(key), dtype, int(numel))


def _load_pickle(stream: BinaryIO):
    try:
        return _RestrictedUnpickler(stream).load()
    except PthFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise PthFormatError(f"damaged pickle in .pth file: {error}") from error


def _check_header(stream: BinaryIO) -> None:
    if _load_pickle(stream) != LEGACY_MAGIC_NUMBER:
        raise PthFormatError(
            "not a legacy PyTorch file (bad magic number); zip-format files are not supported"
        )
    if _load_pickle(stream) != LEGACY_PROTOCOL_VERSION:
        raise PthFormatError("unsupported legacy PyTorch protocol version")
    system_info = _load_pickle(stream)
    if not (isinstance(system_info, dict) and system_info.get("little_endian")):
        raise PthFormatError("only little-endian files are supported")


def _read_storage(stream: BinaryIO, ref: _StorageRef) -> np.ndarray:
    count_bytes = stream.read(8)
    if len(count_bytes) != 8:
        raise PthFormatError(f"file ends before storage {ref.key}")
    numel = int.from_bytes(count_bytes, "little", signed=True)
    if numel != ref.numel:
        raise PthFormatError(f"storage {ref.key} holds {numel} elements, the pickle said {ref.numel}")
    data = stream.read(numel * ref.dtype.itemsize)
    if len(data) != numel * ref.dtype.itemsize:
        raise PthFormatError(f"file ends inside storage {ref.key}")
    return np.frombuffer(data, dtype=ref.dtype)


def _materialize(tensor: _TensorRef, storage: np.ndarray) -> np.ndarray:
    if len(tensor.shape) != len(tensor.stride):
        raise PthFormatError("tensor shape and stride disagree")
    if any(dim < 0 for dim in tensor.shape) or any(step < 0 for step in tensor.stride):
        raise PthFormatError("negative tensor shape or stride")
    if 0 in tensor.shape:
        return np.zeros(tensor.shape, dtype=storage.dtype.newbyteorder("="))
    last_index = tensor.offset + sum(
        (dim - 1) * step for dim, step in zip(tensor.shape, tensor.stride, strict=True)
    )
    if tensor.offset < 0 or last_index >= storage.size:
        raise PthFormatError("tensor reaches outside its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[tensor.offset :],
        shape=tensor.shape,
        strides=tuple(step * storage.itemsize for step in tensor.stride),
        writeable=False,
    )
    return view.astype(storage.dtype.newbyteorder("="), copy=True)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return the tensors of a legacy .pth state_dict as native-endian numpy arrays, by name."""
    with open(path, "rb") as stream:
        _check_header(stream)
        tensors = _load_pickle(stream)
        if not (isinstance(tensors, dict) and all(isinstance(t, _TensorRef) for t in tensors.values())):
            raise PthFormatError("the file does not hold a state_dict of tensors")
        storage_keys = _load_pickle(stream)
        refs = {tensor.storage.key: tensor.storage for tensor in tensors.values()}
        if not isinstance(storage_keys, list) or set(storage_keys) != set(refs):
            raise PthFormatError("the storage list does not match the tensors")
        storages = {key: _read_storage(stream, refs[key]) for key in storage_keys}
    return {
        name: _materialize(tensor, storages[tensor.storage.key])
        for name, tensor in tensors.items()
        if not name.endswith(DROPPED_SUFFIXES)
    }
