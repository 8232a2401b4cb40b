"""Hypothesis strategies for any protobuf message, derived from its descriptor.

:func:`messages` walks ``DESCRIPTOR.fields``: every scalar type with its extreme values (NaN,
±inf, subnormals and the integer limits), strings with empty and odd unicode, bytes, open enums
with unknown numbers, repeated fields, maps, oneofs (none or one member set), proto3
``optional`` presence, and nested messages down to a depth limit. ``hints`` steer chosen
fields (or every field of a chosen message type) towards values the server knows, so that the
generated messages reach past the first name lookup; a hinted field still draws generic values
too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

__all__ = ["ODD_TEXT", "Hints", "messages", "scalars"]

Hints = Mapping[str, st.SearchStrategy[Any]]
"""Field full names (``pkg.Message.field``) or message full names (``pkg.Message``) → a
strategy drawn instead of the generic one half of the time; for a repeated field, of the whole
list; for a map entry's key or value, name the entry's field (``pkg.Message.XEntry.key``)."""

ODD_TEXT = (
    "",
    " ",
    "\x00",
    "\t\n",
    "é",
    "Ω≈ç√∫",
    "ﬁ",
    "²",
    "١٢",
    "🐈‍⬛",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\U0010ffff",
    "a" * 300,
)
"""Strings that tend to break parsers: empty, control characters, combining sequences, digits
that are not ASCII, bidi and zero-width marks, the last code point, a long one."""

_F32_MAX = 3.4028234663852886e38
_SPECIAL_FLOATS = (0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1e-45, 1.0, -1.0)

_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({low, high, 0 if low <= 0 else low, -1 if low < 0 else high, 1, 2**31 - 1})
    return st.one_of(
        st.integers(-4, 64).filter(lambda n: low <= n <= high),
        st.sampled_from([e for e in edges if low <= e <= high]),
        st.integers(low, high),
    )


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=max_size))


def scalars(field: FieldDescriptor, *, max_bytes: int = 64) -> st.SearchStrategy[Any]:
    """Any value of ``field``'s scalar (or enum) type, extremes included."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.one_of(st.sampled_from(_SPECIAL_FLOATS), st.floats())
    if kind == FieldDescriptor.TYPE_FLOAT:
        specials = (*_SPECIAL_FLOATS[:5], 1e-45, _F32_MAX, -_F32_MAX, 1.0)
        return st.one_of(st.sampled_from(specials), st.floats(width=32))
    if kind in _INTEGER_RANGES:
        return _integers(*_INTEGER_RANGES[kind])
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return _text(max_size=40)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=max_bytes)
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        # proto3 enums are open: unknown numbers travel and must be refused by the server.
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    raise TypeError(f"{field.full_name}: no strategy for field type {kind}")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


class _Builder:
    def __init__(self, hints: Hints, max_depth: int, max_items: int, max_bytes: int) -> None:
        self.hints, self.max_depth = hints, max_depth
        self.max_items, self.max_bytes = max_items, max_bytes

    def _hinted(self, name: str, generic: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        hint = self.hints.get(name)
        return generic if hint is None else st.one_of(hint, generic)

    def single(self, field: FieldDescriptor, depth: int, hinted: bool) -> st.SearchStrategy[Any]:
        """One value of ``field`` (an element, for a repeated field: its hint is a list)."""
        if field.message_type is not None:
            return self.message(field.message_type, depth + 1)
        generic = scalars(field, max_bytes=self.max_bytes)
        return self._hinted(field.full_name, generic) if hinted else generic

    def value(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
        """What ``field`` is set to in the message's constructor."""
        if _is_map(field):
            entry = field.message_type
            keys = self.single(entry.fields_by_name["key"], depth, hinted=True)
            values = self.single(entry.fields_by_name["value"], depth, hinted=True)
            return st.dictionaries(keys, values, max_size=self.max_items)
        if _is_repeated(field):
            items = st.lists(self.single(field, depth, hinted=False), max_size=self.max_items)
            return self._hinted(field.full_name, items)
        return self.single(field, depth, hinted=True)

    def message(self, descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        generic = self._generic(descriptor, depth)
        return self._hinted(descriptor.full_name, generic)

    def _generic(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        cls = GetMessageClass(descriptor)
        deep = depth >= self.max_depth

        def usable(field: FieldDescriptor) -> bool:
            # Below the depth limit only scalar fields are set: message fields stay absent.
            return not (deep and field.message_type is not None and not _is_map(field))

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            kwargs: dict[str, Any] = {}
            for oneof in descriptor.oneofs:  # proto3 `optional` fields are one-member oneofs
                members = [f for f in oneof.fields if usable(f)]
                chosen = draw(st.sampled_from([None, *members]))
                if chosen is not None:
                    kwargs[chosen.name] = draw(self.value(chosen, depth))
            for field in descriptor.fields:
                if field.containing_oneof is None and usable(field) and draw(st.booleans()):
                    kwargs[field.name] = draw(self.value(field, depth))
            return cls(**kwargs)

        return build()


def messages(
    descriptor: Descriptor,
    *,
    hints: Hints | None = None,
    max_depth: int = 3,
    max_items: int = 4,
    max_bytes: int = 64,
) -> st.SearchStrategy[Message]:
    """Messages of type ``descriptor``: any field set or not, to any value of its type.

    ``max_depth`` bounds the nesting of sub-messages, ``max_items`` the length of repeated
    fields and maps, ``max_bytes`` the length of ``bytes`` values."""
    return _Builder(hints or {}, max_depth, max_items, max_bytes).message(descriptor)
