"""Open Inference Protocol tensors ↔ numpy: datatypes, raw little-endian bytes, value lists."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.codecs.json_arrays import JsonArray, numeric_array, to_python
from service.errors import InvalidInputError

__all__ = ["DATATYPES", "datatype_of", "from_bytes", "from_json", "from_values", "to_bytes"]

DATATYPES: dict[str, np.dtype[np.generic]] = {
    name: np.dtype(dtype).newbyteorder("<")
    for name, dtype in {
        "BOOL": np.bool_,
        "UINT8": np.uint8,
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "INT32": np.int32,
        "INT64": np.int64,
        "FP16": np.float16,
        "FP32": np.float32,
        "FP64": np.float64,
    }.items()
}
"""Numeric protocol datatypes (BYTES is not a numeric tensor and is not accepted here)."""


def _dtype(datatype: str, field: str) -> np.dtype[np.generic]:
    try:
        return DATATYPES[datatype]
    except KeyError:
        raise InvalidInputError(
            f"{field}: datatype {datatype!r} is not supported (use one of {', '.join(DATATYPES)})",
            field=field,
        ) from None


MAX_DIMS = 32
"""numpy 1's limit (numpy 2 allows 64)."""
_MAX_SPAN = np.iinfo(np.intp).max // 8
"""numpy refuses arrays whose item size times the product of their dimensions (zeros counted
as ones) overflows; this bound keeps every array convertible to any 8-byte type."""


def _shape(shape: Sequence[int], field: str) -> tuple[int, ...]:
    dims = tuple(shape)
    span = 1  # one pass: this runs on every request's every tensor
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise InvalidInputError(
                f"{field}: shape must be non-negative integers, got {list(shape)}", field=field
            )
        if d > 1:
            span *= d
    if len(dims) > MAX_DIMS:
        raise InvalidInputError(
            f"{field}: shape has {len(dims)} dimensions (at most {MAX_DIMS})", field=field
        )
    if span > _MAX_SPAN:
        raise InvalidInputError(f"{field}: shape {list(shape)} is too large", field=field)
    return dims


def from_bytes(
    raw: bytes | memoryview, datatype: str, shape: Sequence[int], field: str
) -> npt.NDArray[np.generic]:
    """Row-major little-endian elements → an array of ``shape``."""
    dtype, dims = _dtype(datatype, field), _shape(shape, field)
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInputError(
            f"{field}: {len(raw)} bytes of data for shape {list(dims)} {datatype} "
            f"({expected} bytes expected)",
            field=field,
        )
    return np.frombuffer(raw, dtype=dtype).reshape(dims)


def from_values(
    values: object, datatype: str, shape: Sequence[int], field: str
) -> npt.NDArray[np.generic]:
    """Flat or nested values (JSON ``data``, typed protobuf contents) → an array of ``shape``."""
    dtype, dims = _dtype(datatype, field), _shape(shape, field)
    try:
        array = np.asarray(values, dtype=dtype)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInputError(
            f"{field}: data must be numbers of datatype {datatype}", field=field
        ) from None
    if array.size != math.prod(dims):
        raise InvalidInputError(
            f"{field}: {array.size} values for shape {list(dims)} ({math.prod(dims)} expected)",
            field=field,
        )
    return array.reshape(dims)


def from_json(
    values: object, datatype: str, shape: Sequence[int], field: str
) -> npt.NDArray[np.generic]:
    """A parsed JSON ``data`` value (flat or nested, row-major) → an array of ``shape``; numbers
    are read as one buffer, not one Python object each."""
    dtype, dims = _dtype(datatype, field), _shape(shape, field)
    if not isinstance(values, JsonArray) or dtype.kind == "b":
        return from_values(to_python(values), datatype, dims, field)
    kind = "f" if dtype.kind == "f" else dtype.kind
    array = numeric_array(values, f"{field}: data", kind)  # type: ignore[arg-type]
    if dtype.kind in "iu" and array.size:
        limits = np.iinfo(dtype)  # type: ignore[type-var]
        # Unsigned values were read as uint64, which refuses negative numbers already.
        low = dtype.kind == "i" and array.min() < limits.min
        if low or array.max() > limits.max:
            raise InvalidInputError(
                f"{field}: data holds values outside the range of {datatype}", field=field
            )
    if array.size != math.prod(dims):
        raise InvalidInputError(
            f"{field}: {array.size} values for shape {list(dims)} ({math.prod(dims)} expected)",
            field=field,
        )
    return array.astype(dtype, copy=False).reshape(dims)


_NAMES = {dtype: name for name, dtype in DATATYPES.items()} | {
    dtype.newbyteorder("="): name for name, dtype in DATATYPES.items()
}


def datatype_of(array: npt.NDArray[np.generic]) -> str:
    """The protocol datatype name of a numeric array."""
    try:
        return _NAMES[array.dtype]
    except KeyError:
        raise ValueError(f"no protocol datatype for {array.dtype}") from None


def to_bytes(array: npt.NDArray[np.generic]) -> bytes:
    """Row-major little-endian bytes of ``array``."""
    if array.dtype.isnative and _LITTLE_ENDIAN:  # the usual case: no conversion to look up
        return array.tobytes()  # row-major ("C") order whatever the array's layout
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


_LITTLE_ENDIAN = sys.byteorder == "little"
