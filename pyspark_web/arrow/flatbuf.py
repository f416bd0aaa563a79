"""Just enough FlatBuffers to read and write Arrow IPC metadata.

Format: https://flatbuffers.dev/internals/ . A table starts with a signed 32-bit offset
back to its vtable; the vtable lists, per field id, the field's offset inside the table
(0: absent, use the default). Offsets to strings, vectors and sub-tables are unsigned and
point forward from where they are stored.

``Reader`` reads a table. ``build`` writes one from nested Python values, laying every
object out after the one that refers to it, so that every offset points forward.
"""

import struct
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple


class FlatbufferError(Exception):
    """Malformed IPC metadata."""


class Reader:
    """A table at ``pos`` in ``buf``."""

    __slots__ = ("buf", "pos", "_vtable", "_vtable_size")

    def __init__(self, buf: memoryview, pos: int) -> None:
        if pos < 0 or pos + 4 > len(buf):
            raise FlatbufferError(f"table offset {pos} outside the {len(buf)}-byte buffer")
        self.buf, self.pos = buf, pos
        self._vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        if self._vtable < 0 or self._vtable + 4 > len(buf):
            raise FlatbufferError("vtable outside the buffer")
        self._vtable_size = struct.unpack_from("<H", buf, self._vtable)[0]

    @classmethod
    def root(cls, buf: memoryview) -> "Reader":
        return cls(buf, struct.unpack_from("<I", buf, 0)[0])

    def _offset(self, field_id: int) -> int:
        slot = 4 + 2 * field_id
        if slot + 2 > self._vtable_size:
            return 0
        return struct.unpack_from("<H", self.buf, self._vtable + slot)[0]

    def scalar(self, field_id: int, fmt: str, default: Any = 0) -> Any:
        offset = self._offset(field_id)
        return default if offset == 0 else struct.unpack_from("<" + fmt, self.buf, self.pos + offset)[0]

    def _target(self, field_id: int) -> Optional[int]:
        offset = self._offset(field_id)
        if offset == 0:
            return None
        at = self.pos + offset
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, field_id: int) -> Optional["Reader"]:
        target = self._target(field_id)
        return None if target is None else Reader(self.buf, target)

    def string(self, field_id: int) -> Optional[str]:
        target = self._target(field_id)
        if target is None:
            return None
        length = struct.unpack_from("<I", self.buf, target)[0]
        return bytes(self.buf[target + 4 : target + 4 + length]).decode("utf-8")

    def _vector(self, field_id: int) -> Tuple[int, int]:
        target = self._target(field_id)
        if target is None:
            return 0, 0
        return struct.unpack_from("<I", self.buf, target)[0], target + 4

    def tables(self, field_id: int) -> List["Reader"]:
        count, start = self._vector(field_id)
        return [
            Reader(self.buf, start + 4 * i + struct.unpack_from("<I", self.buf, start + 4 * i)[0])
            for i in range(count)
        ]

    def structs(self, field_id: int, fmt: str) -> List[Tuple[Any, ...]]:
        count, start = self._vector(field_id)
        layout = struct.Struct("<" + fmt)
        return [layout.unpack_from(self.buf, start + layout.size * i) for i in range(count)]

    def scalars(self, field_id: int, fmt: str) -> List[Any]:
        return [values[0] for values in self.structs(field_id, fmt)]


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
    items: Sequence[Tuple[Any, ...]]


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
        inline: List[Tuple[int, int, Any]] = []  # (field id, offset in table, value)
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
