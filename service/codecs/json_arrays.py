"""JSON request bodies with numeric arrays read straight into numpy.

simdjson parses the body once, and each numeric array is copied out as one C buffer
(``as_buffer``) instead of one Python object per number — about 7× less work than
``orjson.loads`` + ``numpy.asarray`` for a 32×32×3 pixel array. ``as_buffer`` flattens whatever
it is given, so a nested array's rectangularity is checked separately: it is rectangular exactly
when its minified text, with the numbers removed, equals the bracket-and-comma skeleton of its
shape.
"""

from __future__ import annotations

from collections.abc import Container
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import simdjson

from service.errors import InvalidInputError

__all__ = ["JsonArray", "JsonObject", "fields", "numeric_array", "parse", "to_python"]

JsonArray = simdjson.Array
JsonObject = simdjson.Object
_NUMBER_CHARACTERS = b"0123456789.eE+-"
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
    array: simdjson.Array, field: str, kind: Literal["f", "i", "u"] = "f"
) -> npt.NDArray[np.generic]:
    """A rectangular array of JSON numbers as float64 (``f``), int64 (``i``) or uint64 (``u``),
    its shape taken from the nesting; anything else is an :class:`InvalidInputError`."""
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
    minified: bytes | str = array.mini  # bytes at run time; typed str by the library
    text = minified.encode() if isinstance(minified, str) else minified
    if text.translate(None, _NUMBER_CHARACTERS) != _skeleton(shape):
        raise InvalidInputError(f"{field} must be a rectangular array of numbers", field=field)
    return flat.reshape(shape)
