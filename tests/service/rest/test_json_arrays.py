"""Numeric arrays read from JSON bodies: the structure check made on the body's own text
(``value_text``) must accept exactly the arrays the check on simdjson's rendering accepts,
whatever the nesting, spacing, number spelling or the rest of the body."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.codecs.json_arrays import numeric_array, parse, value_text
from service.errors import InvalidInputError

numbers = st.one_of(st.integers(-300, 300), st.floats(-1e6, 1e6, allow_nan=False, width=32))
nested = st.recursive(
    st.lists(numbers, max_size=4), lambda inner: st.lists(inner, min_size=1, max_size=3),
    max_leaves=40,
)  # fmt: skip
rectangular = (
    st.integers(1, 3)
    .flatmap(lambda depth: st.lists(st.integers(1, 3), min_size=depth, max_size=depth))
    .flatmap(lambda shape: st.just(np.arange(int(np.prod(shape))).reshape(shape).tolist()))
)
spacing = st.sampled_from(["", " ", "\n  ", "\t"])
others = st.dictionaries(
    st.sampled_from(["model", "note", "version"]),
    st.one_of(
        st.text(max_size=12),
        st.integers(-(2**63), 2**63 - 1),
        st.lists(st.text(max_size=5), max_size=2),
    ),
    max_size=2,
)


def body_of(array: object, gap: str, extra: dict[str, object], first: bool) -> bytes:
    text = json.dumps(array, separators=("," + gap, ":" + gap))
    fields = [f'"instances"{gap}:{gap}{text}', *(f"{json.dumps(k)}:{json.dumps(v)}"
                                                  for k, v in extra.items())]  # fmt: skip
    if not first:
        fields.reverse()
    return ("{" + gap + ("," + gap).join(fields) + gap + "}").encode()


def outcome(array: object, text: bytes | None) -> tuple[str, object]:
    try:
        result = numeric_array(array, "instances", text=text)
    except InvalidInputError as error:
        return "refused", error.message
    return "accepted", (result.shape, result.tolist())


@given(array=st.one_of(nested, rectangular), gap=spacing, extra=others, first=st.booleans())
def test_the_body_text_check_agrees_with_the_rendering_check(
    array: object, gap: str, extra: dict[str, object], first: bool
) -> None:
    body = body_of(array, gap, extra, first)
    parsed = parse(body)["instances"]
    text = value_text(body, "instances")
    assert outcome(parsed, text) == outcome(parsed, None)


def test_an_array_whose_numbers_do_not_fill_its_shape_is_refused_not_a_server_error() -> None:
    for body in (b'{"instances": [[], [1]]}', b'{"instances": [[1], []]}'):
        with pytest.raises(InvalidInputError, match="rectangular"):
            numeric_array(parse(body)["instances"], "instances")


def test_an_irregular_array_with_as_many_numbers_as_its_shape_is_refused() -> None:
    body = b'{"instances": [[1, 2], [3, 4, 5, 6], [7, 8]]}'  # shape (3, 2) by its first path
    parsed, text = parse(body)["instances"], value_text(body, "instances")
    assert text is not None
    with pytest.raises(InvalidInputError, match="rectangular"):
        numeric_array(parsed, "instances", text=text)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "a\\"instances\\": [[1]]", "instances": [[1, 2]]}',  # a backslash
        b'{"model": "instances", "instances": [[1, 2]]}',  # the name twice
        b'{"instances": [[1]], "instances": [[1, 2]]}',  # the key twice
    ],
)
def test_the_body_text_is_not_used_where_it_cannot_be_told_apart(body: bytes) -> None:
    assert value_text(body, "instances") is None


def test_the_body_text_starts_at_the_value() -> None:
    assert value_text(b'{"a": 1, "instances" :\n [[1]], "b": 2}', "instances") == b'[[1]], "b": 2}'
