"""JSON request bodies with numeric arrays read straight into numpy.

simdjson parses the body once, and each numeric array is copied out as one C buffer
(``as_buffer``) instead of one Python object per number — about 7× less work than
``orjson.loads`` + ``numpy.asarray`` for a 32×32×3 pixel array. ``as_buffer`` flattens whatever
it is given, so a nested array's rectangularity is checked separately: it is rectangular exactly
when its text, with the numbers and whitespace removed, equals the bracket-and-comma skeleton of
its shape. The array's own text is read from the request body when it can be found there
without a parser (:func:`value_text`); otherwise simdjson writes it out again (``.mini``), which
costs more than the rest of the decoding because it formats every number anew.
"""

from __future__ import annotations

import math
from collections.abc import Container
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import simdjson

from service.errors import InvalidInputError

__all__ = [
    "JsonArray",
    "JsonObject",
    "fields",
    "numeric_array",
    "parse",
    "to_python",
    "value_text",
]

JsonArray = simdjson.Array
JsonObject = simdjson.Object
_NUMBER_CHARACTERS = b"0123456789.eE+-"
_WHITESPACE = b" \t\n\r"
_NOT_STRUCTURE = _NUMBER_CHARACTERS + _WHITESPACE
_BUFFER_TYPES: dict[str, tuple[Literal["d", "i", "u"], type[np.generic]]] = {
    "f": ("d", np.float64),
    "i": ("i", np.int64),
    "u": ("u", np.uint64),
}


def parse(body: bytes) -> Any:
    """The parsed body: ``simdjson.Object`` / ``simdjson.Array`` proxies or a plain scalar."""
    try:
        # A parser holds one document at a time, so each body gets its own (they are cheap).
        return simdjson.Parser().parse(body)
    except (ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}", field="body") from None


def to_python(value: Any) -> Any:
    """A parsed value as plain ``dict`` / ``list`` / scalars."""
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def fields(document: simdjson.Object, keep: Container[str] = ()) -> dict[str, Any]:
    """An object's fields, as plain values except those named in ``keep`` (left parsed).

    Iterating keys is deliberate: ``Object.items()`` converts every value to Python first,
    which would undo the point of keeping a numeric array parsed."""
    try:
        return {k: document[k] if k in keep else to_python(document[k]) for k in document}
    except KeyError:  # simdjson cannot look up a key holding NUL: such a body takes the slow path
        return dict(document.as_dict())


def value_text(body: bytes, key: str) -> bytes | None:
    """The body's text from the first byte of the value of its top-level field ``key`` to the
    end, for a body that simdjson parsed and found ``key`` in — or ``None`` when that place
    cannot be told without a parser.

    It can be told when the body holds no backslash and the key's quoted name exactly once:
    without a backslash no string holds an escaped quote or an escaped spelling of the name,
    so the top-level key's raw text is exactly ``"key"``, and a single occurrence is that
    key."""
    if b"\\" in body:
        return None
    token = b'"' + key.encode() + b'"'
    at = body.find(token)
    if at < 0 or body.find(token, at + 1) >= 0:
        return None
    rest = body[at + len(token) :].lstrip(_WHITESPACE)
    return rest[1:].lstrip(_WHITESPACE) if rest.startswith(b":") else None


@lru_cache(maxsize=256)
def _skeleton(shape: tuple[int, ...]) -> bytes:
    """``[[,],[,]]`` for shape (2, 2): the text of a rectangular array without its numbers."""
    if not shape:
        return b""
    inner = _skeleton(shape[1:])
    return b"[" + b",".join([inner] * shape[0]) + b"]"


def _shape(array: simdjson.Array) -> tuple[int, ...]:
    shape: list[int] = []
    value: Any = array
    while isinstance(value, simdjson.Array):
        shape.append(len(value))
        if not shape[-1]:
            break
        value = value[0]
    return tuple(shape)


def numeric_array(
    array: simdjson.Array,
    field: str,
    kind: Literal["f", "i", "u"] = "f",
    text: bytes | None = None,
) -> npt.NDArray[np.generic]:
    """A rectangular array of JSON numbers as float64 (``f``), int64 (``i``) or uint64 (``u``),
    its shape taken from the nesting; anything else is an :class:`InvalidInputError`.

    ``text``, when given, is the body from the array's first byte on (:func:`value_text`):
    then a nested array's structure is checked on it rather than on a fresh rendering."""
    buffer_type, dtype = _BUFFER_TYPES[kind]
    try:
        flat = np.frombuffer(array.as_buffer(of_type=buffer_type), dtype=dtype)
    except TypeError:
        wanted = "numbers" if kind == "f" else "integers"
        raise InvalidInputError(f"{field} must hold only {wanted}", field=field) from None
    except ValueError:  # out of the type's range
        raise InvalidInputError(f"{field} holds a number out of range", field=field) from None
    shape = _shape(array)
    if len(shape) == 1 and shape[0] == flat.size:
        return flat  # flat: as many numbers as elements, so nothing nested
    if flat.size != math.prod(shape):  # e.g. [[], [1]], whose skeleton without numbers fits (2, 0)
        raise InvalidInputError(f"{field} must be a rectangular array of numbers", field=field)
    # ``flat`` came out, so the array holds only arrays and numbers: its text is brackets,
    # commas, whitespace and number characters. With those last two removed it is a balanced
    # bracket string at the start of ``text``; the skeleton is one too, so if the skeleton
    # starts ``text`` both end where the array's outermost bracket closes: they are equal.
    if text is not None and text.translate(None, _NOT_STRUCTURE).startswith(_skeleton(shape)):
        return flat.reshape(shape)
    minified: bytes | str = array.mini  # bytes at run time; typed str by the library
    text = minified.encode() if isinstance(minified, str) else minified
    if text.translate(None, _NUMBER_CHARACTERS) != _skeleton(shape):
        raise InvalidInputError(f"{field} must be a rectangular array of numbers", field=field)
    return flat.reshape(shape)
