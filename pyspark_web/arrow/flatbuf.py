"""Just enough FlatBuffers to read and write Arrow IPC metadata.

Format: https://flatbuffers.dev/internals/ . A table starts with a signed 32-bit offset
back to its vtable; the vtable lists, per field id, the field's offset inside the table
(0: absent, use the default). Offsets to strings, vectors and sub-tables are unsigned and
point forward from where they are stored.

``Reader`` reads a table. ``build`` writes one from nested Python values, laying every
object out after the one that refers to it, so that every offset points forward.
"""

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional


class FlatbufferError(Exception):
    """Malformed IPC metadata."""


_I32, _U16, _U32 = struct.Struct("<i"), struct.Struct("<H"), struct.Struct("<I")
_LAYOUTS: dict[str, struct.Struct] = {}


def _layout(fmt: str) -> struct.Struct:
    layout = _LAYOUTS.get(fmt)
    if layout is None:
        layout = _LAYOUTS[fmt] = struct.Struct("<" + fmt)
    return layout


class Reader:
    """A table at ``pos`` in ``buf``.

    Every read is bounds-checked: a malformed buffer raises FlatbufferError, never
    struct.error, IndexError or UnicodeDecodeError. Readers reached from one root share a
    cache of decoded strings, so that tables sharing a string (allowed, and cheap to
    forge) share one Python str rather than each decoding a copy."""

    __slots__ = ("buf", "pos", "_vtable", "_vtable_size", "_strings")

    def __init__(self, buf: memoryview, pos: int, strings: dict[int, str] | None = None) -> None:
        if pos < 0 or pos + 4 > len(buf):
            raise FlatbufferError(f"table offset {pos} outside the {len(buf)}-byte buffer")
        self.buf, self.pos = buf, pos
        self._strings = {} if strings is None else strings
        self._vtable = pos - _I32.unpack_from(buf, pos)[0]
        if self._vtable < 0 or self._vtable + 4 > len(buf):
            raise FlatbufferError("vtable outside the buffer")
        self._vtable_size = _U16.unpack_from(buf, self._vtable)[0]
        if self._vtable + self._vtable_size > len(buf):
            raise FlatbufferError("vtable runs past the end of the buffer")

    @classmethod
    def root(cls, buf: memoryview) -> "Reader":
        return cls(buf, _read(_U32, buf, 0)[0])

    def _offset(self, field_id: int) -> int:
        slot = 4 + 2 * field_id
        if slot + 2 > self._vtable_size:
            return 0
        return struct.unpack_from("<H", self.buf, self._vtable + slot)[0]

    def scalar(self, field_id: int, fmt: str, default: Any = 0) -> Any:
        offset = self._offset(field_id)
        return default if offset == 0 else _read(_layout(fmt), self.buf, self.pos + offset)[0]

    def _target(self, field_id: int) -> int | None:
        offset = self._offset(field_id)
        if offset == 0:
            return None
        at = self.pos + offset
        return at + _read(_U32, self.buf, at)[0]

    def table(self, field_id: int) -> Optional["Reader"]:
        target = self._target(field_id)
        return None if target is None else Reader(self.buf, target, self._strings)

    def string(self, field_id: int) -> str | None:
        target = self._target(field_id)
        if target is None:
            return None
        if target not in self._strings:
            length = _read(_U32, self.buf, target)[0]
            if target + 4 + length > len(self.buf):
                raise FlatbufferError(f"a {length}-byte string runs past the end of the buffer")
            try:
                self._strings[target] = str(self.buf[target + 4 : target + 4 + length], "utf-8")
            except UnicodeDecodeError as error:
                raise FlatbufferError(f"a string in the metadata is not UTF-8 ({error})") from None
        return self._strings[target]

    def vector_id(self, field_id: int) -> int | None:
        """Where a vector field's data lies: equal for fields that share one vector."""
        return self._target(field_id)

    def _vector(self, field_id: int, item_size: int = 1) -> tuple[int, int]:
        target = self._target(field_id)
        if target is None:
            return 0, 0
        count = _read(_U32, self.buf, target)[0]
        if target + 4 + count * item_size > len(self.buf):
            raise FlatbufferError(f"a vector of {count} items runs past the end of the buffer")
        return count, target + 4

    def tables(self, field_id: int) -> list["Reader"]:
        return list(self.iter_tables(field_id))

    def iter_tables(self, field_id: int) -> Iterator["Reader"]:
        """The tables of a vector, one at a time: a caller that stops early (at a limit)
        has not built a Reader for every entry of a forged million-entry vector."""
        count, start = self._vector(field_id, 4)
        for at in range(start, start + 4 * count, 4):
            yield Reader(self.buf, at + _U32.unpack_from(self.buf, at)[0], self._strings)

    def structs(self, field_id: int, fmt: str) -> list[tuple[Any, ...]]:
        layout = _layout(fmt)
        count, start = self._vector(field_id, layout.size)
        return list(layout.iter_unpack(self.buf[start : start + count * layout.size]))


def _read(layout: struct.Struct, buf: memoryview, at: int) -> tuple[Any, ...]:
    if at < 0 or at + layout.size > len(buf):
        raise FlatbufferError(
            f"a {layout.size}-byte value at {at} lies outside the {len(buf)}-byte buffer"
        )
    return layout.unpack_from(buf, at)


# ---------------------------------------------------------------- writing


@dataclass
class Table:
    """A table to write: ``fields[i]`` is field id i, each None (absent) or a value."""

    fields: Sequence[Any]


@dataclass
class Scalar:
    fmt: str  # struct format of one scalar, e.g. "h", "q", "?"
    value: Any


@dataclass
class Structs:
    """A vector of inline structs, e.g. Arrow's FieldNode and Buffer (two int64 each)."""

    fmt: str
    items: Sequence[tuple[Any, ...]]


@dataclass
class _Builder:
    buf: bytearray = field(default_factory=bytearray)

    def align(self, size: int) -> None:
        self.buf += b"\0" * (-len(self.buf) % size)

    def place(self, value: Any) -> int:
        """Write an offset-addressed object (table, string, vector) at the end; its position."""
        if isinstance(value, Table):
            return self._table(value)
        if isinstance(value, str):
            data = value.encode("utf-8")
            self.align(4)
            position = len(self.buf)
            self.buf += struct.pack("<I", len(data)) + data + b"\0"
            return position
        if isinstance(value, Structs):
            layout = struct.Struct("<" + value.fmt)
            # The elements (after the 4-byte length) must be aligned to 8 for int64s.
            self.align(8)
            self.buf += b"\0" * 4
            position = len(self.buf)
            self.buf += struct.pack("<I", len(value.items))
            for item in value.items:
                self.buf += layout.pack(*item)
            return position
        if isinstance(value, list):  # a vector of tables or strings
            self.align(4)
            position = len(self.buf)
            self.buf += struct.pack("<I", len(value)) + b"\0" * (4 * len(value))
            for i, item in enumerate(value):
                slot = position + 4 + 4 * i
                target = self.place(item)
                struct.pack_into("<I", self.buf, slot, target - slot)
            return position
        raise TypeError(f"cannot place {type(value).__name__}")

    def _table(self, table: Table) -> int:
        # Inline layout: the soffset to the vtable, then scalars (aligned), then 4-byte
        # slots for offsets, patched once their objects are placed after the table.
        inline: list[tuple[int, int, Any]] = []  # (field id, offset in table, value)
        layout = bytearray(4)
        for field_id, value in enumerate(table.fields):
            if value is None:
                continue
            if isinstance(value, Scalar):
                size = struct.calcsize("<" + value.fmt)
                layout += b"\0" * (-len(layout) % size)
                inline.append((field_id, len(layout), value))
                layout += struct.pack("<" + value.fmt, value.value)
            else:
                layout += b"\0" * (-len(layout) % 4)
                inline.append((field_id, len(layout), value))
                layout += b"\0" * 4
        field_count = max((i for i, _, _ in inline), default=-1) + 1
        vtable = struct.pack("<HH", 4 + 2 * field_count, len(layout))
        offsets = [0] * field_count
        for field_id, offset, _ in inline:
            offsets[field_id] = offset
        vtable += struct.pack(f"<{field_count}H", *offsets)
        self.align(4)
        vtable_position = len(self.buf)
        self.buf += vtable
        self.align(8)
        position = len(self.buf)
        self.buf += layout
        struct.pack_into("<i", self.buf, position, position - vtable_position)
        for _, offset, value in inline:
            if not isinstance(value, Scalar):
                slot = position + offset
                target = self.place(value)
                struct.pack_into("<I", self.buf, slot, target - slot)
        return position


def build(root: Table) -> bytes:
    """The bytes of a FlatBuffer whose root is ``root``, padded to a multiple of 8."""
    builder = _Builder(bytearray(8))  # root offset, then padding to keep 8-byte alignment
    position = builder.place(root)
    struct.pack_into("<I", builder.buf, 0, position)
    builder.align(8)
    return bytes(builder.buf)
