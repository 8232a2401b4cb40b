"""The wire-tensor codecs: a shape is checked before any array is made, raw bytes must match
it exactly, and bytes go out row-major little-endian whatever the array's layout or byte order."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.codecs.json_arrays import parse
from service.codecs.tensors import (
    DATATYPES,
    MAX_DIMS,
    from_bytes,
    from_json,
    from_values,
    to_bytes,
)
from service.errors import InvalidInputError


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([1, -1], "shape must be non-negative integers"),
        ([1, True], "shape must be non-negative integers"),
        ([1, 2.0], "shape must be non-negative integers"),
        ([1, "2"], "shape must be non-negative integers"),
        ([1, None], "shape must be non-negative integers"),
        ([1] * (MAX_DIMS + 1), f"at most {MAX_DIMS}"),
        ([2**40, 2**40], "is too large"),
    ],
)
def test_a_bad_shape_is_refused_naming_the_field(shape: list[object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        from_values([], "FP32", shape, "input 'x'")
    assert caught.value.field == "input 'x'"
    assert str(caught.value).startswith("input 'x': ")


def test_raw_bytes_must_fill_the_shape_exactly() -> None:
    with pytest.raises(InvalidInputError, match=r"11 bytes of data for shape \[1, 3\] FP32"):
        from_bytes(b"\0" * 11, "FP32", [1, 3], "input 'x'")
    with pytest.raises(InvalidInputError, match="datatype 'BYTES' is not supported"):
        from_bytes(b"", "BYTES", [0], "input 'x'")


def test_a_zero_sized_dimension_is_an_empty_array() -> None:
    assert from_bytes(b"", "UINT8", [0, 32, 32, 3], "x").shape == (0, 32, 32, 3)


@given(
    array=hnp.arrays(
        st.sampled_from(sorted({d.newbyteorder("=") for d in DATATYPES.values()}, key=str)),
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
    ),
    transpose=st.booleans(),
    swap=st.booleans(),
)
def test_bytes_round_trip_row_major_little_endian(
    array: np.ndarray, transpose: bool, swap: bool
) -> None:
    if transpose:
        array = array.T  # a non-contiguous view: still sent in row-major order
    if swap:
        array = array.astype(array.dtype.newbyteorder("S"))  # same values, other byte order
    name = next(n for n, d in DATATYPES.items() if d == array.dtype.newbyteorder("<"))
    raw = to_bytes(array)
    expected = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    assert raw == expected
    back = from_bytes(raw, name, list(array.shape), "x")
    np.testing.assert_array_equal(back, array)
    assert sys.byteorder == "big" or back.dtype.isnative or back.dtype.itemsize == 1


INTEGER_TYPES = ["UINT8", "UINT16", "UINT32", "INT8", "INT16", "INT32", "INT64"]


@given(
    datatype=st.sampled_from(INTEGER_TYPES),
    value=st.integers(-(2**63), 2**64 - 1),
)
def test_parsed_json_integers_are_taken_exactly_when_the_datatype_holds_them(
    datatype: str, value: int
) -> None:
    """The one-buffer path for parsed JSON (``from_json``) refuses, naming the field, exactly
    the integers the datatype cannot hold: below its minimum (negative ones for unsigned
    types) as well as above its maximum."""
    limits = np.iinfo(DATATYPES[datatype])  # type: ignore[type-var]
    parsed = parse(f"[0, {value}]".encode())
    if limits.min <= value <= limits.max:
        assert from_json(parsed, datatype, [2], "input 'x'").tolist() == [0, value]
        return
    with pytest.raises(InvalidInputError) as caught:
        from_json(parsed, datatype, [2], "input 'x'")
    assert "range" in str(caught.value)
    assert str(caught.value.field).startswith("input 'x'")
