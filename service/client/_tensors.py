"""numpy arrays ↔ the project's ``Tensor`` message (shape + packed little-endian bytes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from service._generated.cifar10.v1 import classifier_pb2 as pb

__all__ = ["from_tensor", "to_tensor"]

_DTYPES: dict[Any, np.dtype[Any]] = {
    pb.FLOAT32: np.dtype("<f4"),
    pb.UINT8: np.dtype("u1"),
    pb.INT64: np.dtype("<i8"),
}


def to_tensor(array: npt.ArrayLike) -> pb.Tensor:
    """A float32, uint8 or int64 array as a ``Tensor`` (other types: float32 or int64)."""
    values = np.asarray(array)
    if values.dtype != np.uint8:
        values = values.astype(np.int64 if values.dtype.kind in "iub" else np.float32)
    code = next(c for c, dtype in _DTYPES.items() if dtype == values.dtype.newbyteorder("<"))
    data = np.ascontiguousarray(values, dtype=_DTYPES[code]).tobytes()
    return pb.Tensor(shape=list(values.shape), dtype=code, data=data)


def from_tensor(tensor: pb.Tensor) -> npt.NDArray[np.generic]:
    """A ``Tensor`` as an array of its own type."""
    array: npt.NDArray[np.generic] = np.frombuffer(tensor.data, dtype=_DTYPES[tensor.dtype])
    return array.reshape(tuple(tensor.shape))
