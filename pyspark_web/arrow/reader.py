"""Reading Arrow IPC streams into Python values.

Reading yields values exactly as pyarrow's ``to_pylist()`` would (tests/unit/
test_arrow_ipc.py checks it against pyarrow), so upstream PySpark's conversions run on
them unchanged. Buffers are decoded with ``memoryview.cast`` and ``struct``; only strings
and nested values cost a Python step per element.

Streams come from servers and proxies we do not control: the reader checks every length,
offset and count it uses against the bytes it has and a few limits (``read_stream`` lists
them), and raises ArrowError, and nothing else, on malformed input.
"""

import datetime
import decimal
import struct
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from pyspark_web.arrow import compression
from pyspark_web.arrow.flatbuf import FlatbufferError, Reader
from pyspark_web.arrow.metadata import (
    HEADER_DICTIONARY,
    HEADER_RECORD_BATCH,
    HEADER_SCHEMA,
    METADATA_V5,
    read_schema,
)
from pyspark_web.arrow.types import (
    EPOCH,
    EPOCH_ORDINAL,
    EPOCH_UTC,
    FIXED_WIDTH_KINDS,
    MICROS,
    Array,
    ArrowError,
    DataType,
    Field,
    MonthDayNano,
    RecordBatch,
    Schema,
    fixed_format,
)

# For each byte, its 8 bits as booleans, least significant first (Arrow's bit order).
_BITS = [tuple(bool(b >> i & 1) for i in range(8)) for b in range(256)]

# What a stream may make the reader build beyond what its bytes back. Every other value
# needs at least one bit of a buffer of its own (buffers must hold their column's length
# and may not overlap), so the rest of a decode is bounded by the stream's size.
# - values that no buffer backs: null columns, structs without fields, zero-width
#   fixed-size types, rows of batches without columns (Spark sends at most
#   spark.sql.execution.arrow.maxRecordsPerBatch, 10,000 by default, rows a batch);
MAX_ROWS_WITHOUT_DATA = 10_000_000
# - bytes out of lz4/zstd (a few bytes of zstd can declare and produce gigabytes). Spark
#   sends batches of spark.connect.grpc.arrow.maxBatchSize, 4 MiB by default.
MAX_DECOMPRESSED_BYTES = 2 << 30

# The prefix of the one ArrowError that names no cause: read_stream's safety net.
UNEXPECTED = "unexpected error reading an Arrow IPC stream"


def read_stream(data: bytes) -> tuple[Schema, list[RecordBatch]]:
    """Parse a complete IPC stream: its schema and record batches.

    Whatever the bytes (they come from a server or proxy we do not control), malformed
    input raises ArrowError and no other exception, in time and memory bounded by the
    stream's size and these limits, each named in its error message:

    - MAX_NESTING (64) levels of nested fields and MAX_FIELDS (10,000) fields a schema
      (both in ``metadata``); one schema, first in the stream;
    - every message moves the read offset forward (no negative sizes or body lengths);
    - every column has its record batch's length; a struct's fields at least the
      struct's, a list's child at least what the list's offsets reach; null counts lie in
      0..length;
    - every buffer lies inside its message body, overlaps no other, and holds what its
      column's length needs: n * width bytes of fixed-width values, ceil(n / 8) bytes of
      validity when there are nulls, n + 1 offsets that start at 0 or later, never
      decrease and end inside the data;
    - MAX_ROWS_WITHOUT_DATA (10,000,000) values a stream that no buffer backs (null
      columns, structs without fields, zero-width types, rows of batches without columns);
    - MAX_DECOMPRESSED_BYTES (2 GiB) of lz4/zstd output a stream, each buffer
      decompressing to exactly its declared size;
    - strings UTF-8, dates and times within Python's range.

    A failure the checks do not name still ends in ArrowError (its message starts with
    ``UNEXPECTED``, its cause is the original exception). MemoryError is not converted:
    the limits are there to prevent it.
    """
    view = memoryview(data)
    try:
        return _read_stream(view)
    except ArrowError:
        raise
    except FlatbufferError as error:
        raise ArrowError(f"malformed Arrow IPC metadata: {error}") from error
    except MemoryError:
        raise
    except Exception as error:  # the safety net
        raise ArrowError(f"{UNEXPECTED} ({type(error).__name__}: {error})") from error


def _read_stream(view: memoryview) -> tuple[Schema, list[RecordBatch]]:
    limits = _Limits()
    schema: Schema | None = None
    batches: list[RecordBatch] = []
    for message, body in _messages(view):
        header_type = message.scalar(1, "B")
        header = message.table(2)
        if header is None:
            raise ArrowError(f"Arrow IPC message of type {header_type} without its header")
        if header_type == HEADER_SCHEMA:
            if schema is not None:
                raise ArrowError("Arrow IPC stream has a second schema message")
            schema = read_schema(header)
        elif header_type == HEADER_RECORD_BATCH:
            if schema is None:
                raise ArrowError("Arrow IPC stream has a record batch before its schema")
            batches.append(_read_batch(schema, header, body, limits))
        elif header_type == HEADER_DICTIONARY:
            raise ArrowError(
                "Arrow dictionary batches are not supported (Spark does not send them)"
            )
        else:
            raise ArrowError(f"unexpected Arrow IPC message type {header_type}")
    if schema is None:
        raise ArrowError("Arrow IPC stream without a schema")
    return schema, batches


def _messages(data: memoryview) -> Iterator[tuple[Reader, memoryview]]:
    offset = 0
    while offset < len(data):
        start = offset
        size, offset = _message_size(data, offset)
        if size is None:  # end of stream
            return
        if offset + size > len(data):
            raise ArrowError(f"Arrow IPC message of {size} bytes runs past the end of the stream")
        message = Reader.root(data[offset : offset + size])
        offset += size
        version = message.scalar(0, "h")
        if version not in (METADATA_V5 - 1, METADATA_V5):
            raise ArrowError(
                f"Arrow IPC metadata version {version} is not supported (need V4 or V5)"
            )
        body_length = message.scalar(3, "q")
        if body_length < 0:
            # It would move the read offset backwards: the stream would never end.
            raise ArrowError(f"Arrow IPC message with a negative body length ({body_length})")
        if offset + body_length > len(data):
            raise ArrowError("Arrow IPC message body runs past the end of the stream")
        yield message, data[offset : offset + body_length]
        offset += body_length
        if offset <= start:  # what the checks above guarantee, and the loop's end rests on
            raise ArrowError(f"Arrow IPC reader did not move forward at byte {start}")


def _message_size(data: memoryview, offset: int) -> tuple[int | None, int]:
    """A message's metadata size (None: the end-of-stream marker) and where it starts."""
    if offset + 4 > len(data):
        raise ArrowError("Arrow IPC stream ends inside a message")
    (size,) = struct.unpack_from("<i", data, offset)
    offset += 4
    if size == -1:  # continuation marker, then the real size
        if offset == len(data):  # a cut-off end-of-stream marker, as pyarrow takes it
            return None, offset
        if offset + 4 > len(data):
            raise ArrowError("Arrow IPC stream ends inside a message")
        (size,) = struct.unpack_from("<i", data, offset)
        offset += 4
    if size < 0:
        raise ArrowError(f"Arrow IPC message with a negative metadata size ({size})")
    return (size or None), offset


class _Limits:
    """What one stream has used of the limits that its bytes do not bound by themselves."""

    __slots__ = ("rows", "decompressed")

    def __init__(self) -> None:
        self.rows = 0
        self.decompressed = 0

    def rows_without_data(self, count: int, what: str) -> None:
        self.rows += count
        if self.rows > MAX_ROWS_WITHOUT_DATA:
            raise ArrowError(
                f"{what}: the stream has more than {MAX_ROWS_WITHOUT_DATA} values that no buffer "
                "backs (null columns, structs without fields, zero-width types, batches without "
                "columns; MAX_ROWS_WITHOUT_DATA, the reader's limit)"
            )

    def decompress(self, size: int) -> None:
        self.decompressed += size
        if self.decompressed > MAX_DECOMPRESSED_BYTES:
            raise ArrowError(
                f"Arrow stream decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes "
                "(MAX_DECOMPRESSED_BYTES, the reader's limit)"
            )


def _read_batch(schema: Schema, header: Reader, body: memoryview, limits: _Limits) -> RecordBatch:
    length = header.scalar(0, "q")
    if length < 0:
        raise ArrowError(f"Arrow record batch with a negative length ({length})")
    buffers = _load_buffers(header.structs(2, "qq"), body, header.table(3), limits)
    cursor = _Cursor(header.structs(1, "qq"), buffers, limits)
    if not schema.fields:
        limits.rows_without_data(length, "an Arrow record batch without columns")
    context = f"its record batch has {length} rows"
    columns = [_read_array(f, cursor, f.name, length, length, context) for f in schema.fields]
    return RecordBatch(schema, length, columns)


def _load_buffers(
    specs: list[tuple[int, int]],
    body: memoryview,
    body_compression: Reader | None,
    limits: _Limits,
) -> list[memoryview]:
    _check_layout(specs, len(body))
    buffers = [body[offset : offset + size] for offset, size in specs]
    if body_compression is None:
        return buffers
    return compression.decompress_buffers(buffers, body_compression, limits.decompress)


def _check_layout(specs: list[tuple[int, int]], body_length: int) -> None:
    """Buffers inside the body and sharing no bytes: with that, the values a batch makes
    are bounded by the bytes it has."""
    for offset, size in specs:
        if offset < 0 or size < 0 or offset + size > body_length:
            raise ArrowError(
                f"Arrow buffer of {size} bytes at {offset} lies outside its "
                f"{body_length}-byte message body"
            )
    end = 0
    for offset, size in sorted(spec for spec in specs if spec[1]):
        if offset < end:
            raise ArrowError(
                f"Arrow buffers overlap at byte {offset} of their message body "
                "(each needs bytes of its own)"
            )
        end = offset + size


class _Cursor:
    """A record batch's field nodes and buffers, handed out in schema order."""

    __slots__ = ("nodes", "buffers", "limits", "taken", "_node", "_buffer")

    def __init__(
        self, nodes: list[tuple[int, int]], buffers: list[memoryview], limits: _Limits
    ) -> None:
        self.nodes, self.buffers, self.limits = nodes, buffers, limits
        self.taken = self._node = self._buffer = 0

    def node(self, path: str) -> tuple[int, int]:
        if self._node == len(self.nodes):
            raise ArrowError(
                f"Arrow record batch has {len(self.nodes)} field nodes, "
                f"too few for its schema (at {path!r})"
            )
        length, null_count = self.nodes[self._node]
        self._node += 1
        if length < 0:
            raise ArrowError(f"Arrow column {path!r} has a negative length ({length})")
        if not 0 <= null_count <= length:
            raise ArrowError(f"Arrow column {path!r}: null count {null_count} outside 0..{length}")
        return length, null_count

    def buffer(self, path: str) -> memoryview:
        if self._buffer == len(self.buffers):
            raise ArrowError(
                f"Arrow record batch has {len(self.buffers)} buffers, "
                f"too few for its schema (at {path!r})"
            )
        buffer = self.buffers[self._buffer]
        self._buffer += 1
        self.taken += len(buffer)
        return buffer


# A child's length has no upper bound from its parent: its own buffers bound it, or
# MAX_ROWS_WITHOUT_DATA does.
_UNBOUNDED = 1 << 64


def _read_array(f: Field, cursor: _Cursor, path: str, low: int, high: int, context: str) -> Array:
    """One column (or child) of a batch, whose length its parent needs in low..high."""
    data_type, kind = f.type, f.type.kind
    length, null_count = cursor.node(path)
    if not low <= length <= high:
        raise ArrowError(f"Arrow column {path!r} has {length} values; {context}")
    if kind == "null":
        cursor.limits.rows_without_data(length, f"Arrow null column {path!r}")
        return Array(data_type, length, [None] * length)
    taken = cursor.taken
    valid = _validity(cursor.buffer(path), length, null_count, path)
    values = _DECODERS[kind](data_type, cursor, path, length, valid)
    if valid is not None and kind != "decimal":
        values = [v if ok else None for v, ok in zip(values, valid)]
    return Array(data_type, length, values, cursor.taken - taken)


def _holding(buffer: memoryview, nbytes: int, path: str, what: str) -> memoryview:
    """The first nbytes of a buffer, which must have them."""
    if len(buffer) < nbytes:
        raise ArrowError(
            f"Arrow column {path!r}: its {what} buffer has {len(buffer)} bytes; "
            f"its length needs {nbytes}"
        )
    return buffer[:nbytes]


def _bits(bitmap: memoryview, length: int) -> list[bool]:
    return list(chain.from_iterable(_BITS[b] for b in bytes(bitmap)))[:length]


def _validity(buffer: memoryview, length: int, null_count: int, path: str) -> list[bool] | None:
    if null_count == 0:
        return None
    return _bits(_holding(buffer, (length + 7) // 8, path, "validity"), length)


def _fixed(buffer: memoryview, fmt: str, length: int, path: str, what: str = "data") -> list[Any]:
    data = _holding(buffer, struct.calcsize(fmt) * length, path, what)
    if fmt == "e":  # memoryview.cast has no "e" before Python 3.12
        return list(struct.unpack(f"<{length}e", data))
    try:
        return data.cast(fmt).tolist()
    except TypeError:  # not castable (e.g. unaligned on some builds): unpack instead
        return list(struct.unpack(f"<{length}{fmt}", data))


def _offsets(
    buffer: memoryview, length: int, large: bool, path: str, limit: int | None = None
) -> list[int]:
    """length + 1 offsets, from 0 or later, never decreasing, up to ``limit`` if given."""
    if not length:
        return [0]
    offsets = _fixed(buffer, "q" if large else "i", length + 1, path, "offsets")
    first, last = offsets[0], offsets[-1]
    if first < 0:
        raise ArrowError(f"Arrow column {path!r}: its offsets start at {first}, before its data")
    if limit is not None and last > limit:
        raise ArrowError(
            f"Arrow column {path!r}: its offsets end at {last}, past its {limit}-byte data"
        )
    if offsets != sorted(offsets):  # one pass in C for ordered offsets
        raise ArrowError(f"Arrow column {path!r}: its offsets decrease")
    return offsets


def _decode_fixed(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    values = _fixed(cursor.buffer(path), fixed_format(data_type), length, path)
    if data_type.kind in ("int", "float"):
        return values
    if valid is not None:
        values = [v if ok else 0 for v, ok in zip(values, valid)]
    try:
        return _temporal(data_type, values)
    except (OverflowError, ValueError) as error:
        raise ArrowError(
            f"Arrow {data_type} column {path!r} holds a value out of range for Python ({error})"
        ) from error


def _temporal(data_type: DataType, raw: list[int]) -> list[Any]:
    kind, unit = data_type.kind, data_type.param("unit")
    if kind == "date":
        if unit == "day":
            return [datetime.date.fromordinal(v + EPOCH_ORDINAL) for v in raw]
        return [datetime.date.fromordinal(v // 86_400_000 + EPOCH_ORDINAL) for v in raw]
    if unit == "ns":
        micros = [v // 1000 for v in raw]
    else:
        micros = [v * MICROS[unit] for v in raw]
    if kind == "timestamp":
        zone = data_type.param("tz")
        if zone:
            return [EPOCH_UTC + datetime.timedelta(microseconds=m) for m in micros]
        return [EPOCH + datetime.timedelta(microseconds=m) for m in micros]
    if kind == "duration":
        return [datetime.timedelta(microseconds=m) for m in micros]
    # time of day: past midnight, datetime.min + delta would wrap to the next day
    if micros and (min(micros) < 0 or max(micros) >= 86_400_000_000):
        raise ValueError("a time of day outside 00:00..24:00")
    return [(datetime.datetime.min + datetime.timedelta(microseconds=m)).time() for m in micros]


def _decode_bool(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    return _bits(_holding(cursor.buffer(path), (length + 7) // 8, path, "data"), length)


def _decode_decimal(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    width, scale = data_type.param("bits", 128) // 8, data_type.param("scale")
    raw = bytes(_holding(cursor.buffer(path), width * length, path, "data"))
    return [
        _decimal(raw[i : i + width], scale) if valid is None or valid[i // width] else None
        for i in range(0, width * length, width)
    ]


def _decimal(raw: bytes, scale: int) -> decimal.Decimal:
    value = int.from_bytes(raw, "little", signed=True)
    digits = tuple(int(d) for d in str(abs(value)))
    return decimal.Decimal((1 if value < 0 else 0, digits, -scale))


def _decode_strings(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    kind = data_type.kind
    offsets_buffer, data = cursor.buffer(path), cursor.buffer(path)
    offsets = _offsets(offsets_buffer, length, kind.startswith("large"), path, len(data))
    base = offsets[0]
    raw = bytes(data[base : offsets[-1]])
    if not kind.endswith("utf8"):
        return [raw[a - base : b - base] for a, b in zip(offsets, offsets[1:])]
    try:
        decoded = raw.decode("utf-8")
        if len(decoded) == len(raw):  # ASCII: byte offsets are character offsets
            return [decoded[a - base : b - base] for a, b in zip(offsets, offsets[1:])]
        return [raw[a - base : b - base].decode("utf-8") for a, b in zip(offsets, offsets[1:])]
    except UnicodeDecodeError as error:
        raise ArrowError(f"Arrow string column {path!r} holds invalid UTF-8 ({error})") from error


def _decode_fixed_binary(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    width = data_type.param("width")
    raw = bytes(_holding(cursor.buffer(path), width * length, path, "data"))
    if not width:
        cursor.limits.rows_without_data(length, f"Arrow fixed_binary[0] column {path!r}")
        return [b""] * length
    return [raw[i : i + width] for i in range(0, width * length, width)]


def _decode_interval(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    unit, data = data_type.param("unit"), cursor.buffer(path)
    if unit == "year_month":
        return _fixed(data, "i", length, path)
    if unit == "day_time":
        pairs = _fixed(data, "i", 2 * length, path)
        try:
            return [
                datetime.timedelta(days=pairs[2 * i], milliseconds=pairs[2 * i + 1])
                for i in range(length)
            ]
        except OverflowError as error:
            raise ArrowError(
                f"Arrow interval column {path!r} holds a value out of range for Python ({error})"
            ) from error
    return [
        MonthDayNano(*v)
        for v in struct.iter_unpack("<iiq", _holding(data, 16 * length, path, "data"))
    ]


def _decode_list(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    offsets = _offsets(cursor.buffer(path), length, data_type.kind == "large_list", path)
    child = data_type.children[0]
    needed = offsets[-1]
    if data_type.kind == "map":
        items = _read_entries(child, cursor, f"{path}.{child.name}", needed)
    else:
        items = _child_values(child, cursor, path, needed, f"its list's offsets need {needed}")
    return [items[a:b] for a, b in zip(offsets, offsets[1:])]


def _read_entries(f: Field, cursor: _Cursor, path: str, needed: int) -> list[tuple[Any, Any]]:
    """A map's entries as (key, value) tuples, as pyarrow gives them."""
    length, _ = cursor.node(path)
    if length < needed:
        raise ArrowError(
            f"Arrow column {path!r} has {length} values; its map's offsets need {needed}"
        )
    cursor.buffer(path)  # the entries' validity: entries are never null
    key, value = f.type.children
    context = f"its map has {length} entries"
    keys = _child_values(key, cursor, path, length, context)
    values = _child_values(value, cursor, path, length, context)
    return list(zip(keys, values))


def _child_values(child: Field, cursor: _Cursor, path: str, needed: int, why: str) -> list[Any]:
    """The values of a nested column, which must have at least ``needed`` (``why`` says
    who needs them) and may have more."""
    return _read_array(child, cursor, f"{path}.{child.name}", needed, _UNBOUNDED, why).values


def _decode_fixed_list(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    size, child = data_type.param("size"), data_type.children[0]
    if not size:
        cursor.limits.rows_without_data(length, f"Arrow fixed_size_list[0] column {path!r}")
    needed = size * length
    items = _child_values(child, cursor, path, needed, f"its fixed-size lists need {needed}")
    return [items[i * size : (i + 1) * size] for i in range(length)]


def _decode_struct(
    data_type: DataType, cursor: _Cursor, path: str, length: int, valid: list[bool] | None
) -> list[Any]:
    fields = data_type.children
    if not fields:
        cursor.limits.rows_without_data(length, f"Arrow struct column {path!r} without fields")
        return [{} for _ in range(length)]
    context = f"its struct has {length} rows"
    columns = []
    for child in fields:
        values = _child_values(child, cursor, path, length, context)
        columns.append(values if len(values) == length else values[:length])
    names = [child.name for child in fields]
    return [dict(zip(names, row)) for row in zip(*columns)]


_Decoder = Callable[[DataType, _Cursor, str, int, list[bool] | None], list[Any]]
_DECODERS: dict[str, _Decoder] = {
    **dict.fromkeys(FIXED_WIDTH_KINDS, _decode_fixed),
    "bool": _decode_bool,
    "decimal": _decode_decimal,
    **dict.fromkeys(("utf8", "large_utf8", "binary", "large_binary"), _decode_strings),
    "fixed_binary": _decode_fixed_binary,
    "interval": _decode_interval,
    **dict.fromkeys(("list", "large_list", "map"), _decode_list),
    "fixed_list": _decode_fixed_list,
    "struct": _decode_struct,
}
