"""Arrow IPC streams in pure Python: read them into Python values, write them from Python
values. Covers every type Spark Connect sends or accepts.

Formats: https://arrow.apache.org/docs/format/Columnar.html (buffers) and its "IPC
Streaming Format" section (messages), metadata from Schema.fbs and Message.fbs.

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
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from pyspark_web.arrow import flatbuf
from pyspark_web.arrow.flatbuf import FlatbufferError, Reader, Scalar, Structs, Table as FbTable

CONTINUATION = b"\xff\xff\xff\xff"
END_OF_STREAM = CONTINUATION + b"\x00\x00\x00\x00"
METADATA_V5 = 4
# Message.header union, Schema.fbs Type union.
HEADER_SCHEMA, HEADER_DICTIONARY, HEADER_RECORD_BATCH = 1, 2, 3
TYPE_IDS = {
    "null": 1, "int": 2, "float": 3, "binary": 4, "utf8": 5, "bool": 6, "decimal": 7, "date": 8,
    "time": 9, "timestamp": 10, "interval": 11, "list": 12, "struct": 13, "union": 14,
    "fixed_binary": 15, "fixed_list": 16, "map": 17, "duration": 18, "large_binary": 19,
    "large_utf8": 20, "large_list": 21,
}
TYPE_NAMES = {number: name for name, number in TYPE_IDS.items()}
TIME_UNITS = ("s", "ms", "us", "ns")
CODECS = {0: "lz4", 1: "zstd"}

EPOCH = datetime.datetime(1970, 1, 1)
EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}

# For each byte, its 8 bits as booleans, least significant first (Arrow's bit order).
_BITS = [tuple(bool(b >> i & 1) for i in range(8)) for b in range(256)]


class ArrowError(Exception):
    """An IPC stream this reader cannot read, or data this writer cannot write."""


@dataclass(frozen=True)
class DataType:
    kind: str  # a key of TYPE_IDS
    params: Tuple[Tuple[str, Any], ...] = ()
    children: Tuple["Field", ...] = ()

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def __str__(self) -> str:
        """pyarrow's name of the type (error messages quote it)."""
        p, kind = self.param, self.kind
        if kind == "int":
            return f"{'' if p('signed') else 'u'}int{p('bits')}"
        if kind == "float":
            return {16: "halffloat", 32: "float", 64: "double"}[p("bits")]
        if kind == "decimal":
            return f"decimal{p('bits', 128)}({p('precision')}, {p('scale')})"
        if kind == "date":
            return "date32[day]" if p("unit") == "day" else "date64[ms]"
        if kind == "timestamp":
            return f"timestamp[{p('unit')}" + (f", tz={p('tz')}]" if p("tz") else "]")
        if kind in ("duration", "time"):
            return f"{'duration' if kind == 'duration' else 'time' + str(p('bits'))}[{p('unit')}]"
        if kind == "interval":
            return {"year_month": "month_interval", "day_time": "day_time_interval"}.get(p("unit"), "month_day_nano_interval")
        if kind in ("list", "large_list"):
            return f"{kind}<{self.children[0]}>"
        if kind == "struct":
            return "struct<" + ", ".join(str(c) for c in self.children) + ">"
        if kind == "map":
            key, value = self.children[0].type.children
            return f"map<{key.type}, {value.type}>"
        names = {"utf8": "string", "large_utf8": "large_string", "bool": "bool", "null": "null"}
        return names.get(kind, kind)


@dataclass(frozen=True)
class Field:
    name: str
    type: DataType
    nullable: bool = True
    metadata: Tuple[Tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.name}: {self.type}"


@dataclass
class Schema:
    fields: List[Field]
    metadata: Dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> List[str]:
        return [f.name for f in self.fields]


# ---------------------------------------------------------------- schema <-> flatbuffers

# Bounds on what a schema may ask the reader to build: flatbuffer tables can be shared, so
# a few hundred bytes can otherwise describe 2^depth fields.
MAX_NESTING = 64
MAX_FIELDS = 10_000

INTERVAL_UNITS = ("year_month", "day_time", "month_day_nano")
# How many children a field of each nested kind has (None: any number); other kinds, none.
_CHILDREN = {"list": 1, "large_list": 1, "fixed_list": 1, "map": 1, "struct": None}


def _enum(table: Reader, field_id: int, default: int, names: Sequence[Any], what: str, name: str) -> Any:
    value = table.scalar(field_id, "h", default)
    if not 0 <= value < len(names):
        raise ArrowError(f"Arrow field {name!r}: {what} {value} is not one Arrow defines")
    return names[value]


def _read_type(kind: str, table: Reader, name: str) -> Tuple[Tuple[str, Any], ...]:
    """A type's parameters, each checked: the decoders rely on them."""
    if kind == "int":
        bits = table.scalar(0, "i")
        if bits not in (8, 16, 32, 64):
            raise ArrowError(f"Arrow field {name!r}: int of {bits} bits (Arrow has 8, 16, 32 and 64)")
        return (("bits", bits), ("signed", table.scalar(1, "?", False)))
    if kind == "float":
        return (("bits", _enum(table, 0, 0, (16, 32, 64), "float precision", name)),)
    if kind == "decimal":
        bits = table.scalar(2, "i", 128)
        if bits not in (32, 64, 128, 256):
            raise ArrowError(f"Arrow field {name!r}: decimal of {bits} bits (Arrow has 32, 64, 128 and 256)")
        return (("precision", table.scalar(0, "i")), ("scale", table.scalar(1, "i")), ("bits", bits))
    if kind == "date":
        return (("unit", _enum(table, 0, 1, ("day", "ms"), "date unit", name)),)
    if kind == "time":
        unit, bits = _enum(table, 0, 1, TIME_UNITS, "time unit", name), table.scalar(1, "i", 32)
        if bits not in (32, 64):
            raise ArrowError(f"Arrow field {name!r}: time of {bits} bits (Arrow has 32 and 64)")
        return (("unit", unit), ("bits", bits))
    if kind == "timestamp":
        return (("unit", _enum(table, 0, 0, TIME_UNITS, "timestamp unit", name)), ("tz", table.string(1)))
    if kind == "duration":
        return (("unit", _enum(table, 0, 1, TIME_UNITS, "duration unit", name)),)
    if kind == "interval":
        return (("unit", _enum(table, 0, 0, INTERVAL_UNITS, "interval unit", name)),)
    if kind in ("fixed_binary", "fixed_list"):
        param = "width" if kind == "fixed_binary" else "size"
        value = table.scalar(0, "i")
        if value < 0:
            raise ArrowError(f"Arrow field {name!r}: negative {param} {value}")
        return ((param, value),)
    if kind == "map":
        return (("keys_sorted", table.scalar(0, "?", False)),)
    return ()


def _check_children(kind: str, name: str, children: Tuple["Field", ...]) -> None:
    expected = _CHILDREN.get(kind, 0)
    if expected is not None and len(children) != expected:
        raise ArrowError(f"Arrow {kind} field {name!r} has {len(children)} children (it takes {expected})")
    if kind == "map":
        entries = children[0].type
        if entries.kind != "struct" or len(entries.children) != 2:
            raise ArrowError(f"Arrow map field {name!r}: its entries must be a struct of two fields (key, value)")


class _SchemaReader:
    """Reads a schema's fields against the limits. Metadata vectors that fields share (as
    forged tables can) are read once and shared, so they cannot multiply either."""

    def __init__(self) -> None:
        self.count = 0
        self.shared: Dict[int, Tuple[Tuple[str, str], ...]] = {}

    def metadata(self, table: Reader, field_id: int) -> Tuple[Tuple[str, str], ...]:
        key = table.vector_id(field_id)
        if key is None:
            return ()
        if key not in self.shared:
            self.shared[key] = tuple((kv.string(0) or "", kv.string(1) or "") for kv in table.iter_tables(field_id))
        return self.shared[key]

    def field(self, table: Reader, depth: int) -> "Field":
        if depth > MAX_NESTING:
            raise ArrowError(f"Arrow schema nests more than {MAX_NESTING} levels deep (MAX_NESTING, the reader's limit)")
        self.count += 1
        if self.count > MAX_FIELDS:
            raise ArrowError(f"Arrow schema has more than {MAX_FIELDS} fields (MAX_FIELDS, the reader's limit)")
        name = table.string(0) or ""
        type_id = table.scalar(2, "B")
        kind = TYPE_NAMES.get(type_id)
        if kind is None or kind == "union":
            raise ArrowError(f"Arrow type id {type_id} (field {name!r}) is not supported by pyspark-web's reader")
        if table.table(4) is not None:
            raise ArrowError("dictionary-encoded Arrow fields are not supported (Spark does not send them)")
        type_table = table.table(3)
        if type_table is None:
            raise ArrowError(f"Arrow field {name!r} lacks its type table")
        children = tuple(self.field(child, depth + 1) for child in table.iter_tables(5))
        _check_children(kind, name, children)
        data_type = DataType(kind, _read_type(kind, type_table, name), children)
        return Field(name, data_type, table.scalar(1, "?", False), self.metadata(table, 6))


def _read_schema(header: Reader) -> "Schema":
    if header.scalar(0, "h") != 0:
        raise ArrowError("big-endian Arrow streams are not supported")
    reader = _SchemaReader()
    fields = [reader.field(table, 1) for table in header.iter_tables(1)]
    return Schema(fields, dict(reader.metadata(header, 2)))


def _type_table(data_type: DataType) -> FbTable:
    p, kind = data_type.param, data_type.kind
    if kind == "int":
        return FbTable([Scalar("i", p("bits")), Scalar("?", p("signed"))])
    if kind == "float":
        return FbTable([Scalar("h", {16: 0, 32: 1, 64: 2}[p("bits")])])
    if kind == "decimal":
        return FbTable([Scalar("i", p("precision")), Scalar("i", p("scale")), Scalar("i", p("bits", 128))])
    if kind == "date":
        return FbTable([Scalar("h", 0 if p("unit") == "day" else 1)])
    if kind == "time":
        return FbTable([Scalar("h", TIME_UNITS.index(p("unit"))), Scalar("i", p("bits"))])
    if kind == "timestamp":
        return FbTable([Scalar("h", TIME_UNITS.index(p("unit"))), p("tz")])
    if kind == "duration":
        return FbTable([Scalar("h", TIME_UNITS.index(p("unit")))])
    if kind == "interval":
        return FbTable([Scalar("h", INTERVAL_UNITS.index(p("unit")))])
    if kind == "map":
        return FbTable([Scalar("?", p("keys_sorted", False))])
    if kind == "fixed_binary":
        return FbTable([Scalar("i", p("width"))])
    if kind == "fixed_list":
        return FbTable([Scalar("i", p("size"))])
    return FbTable([])


def _metadata_vector(metadata: Sequence[Tuple[str, str]]) -> Optional[list]:
    return [FbTable([key, value]) for key, value in metadata] or None


def _field_table(f: Field, depth: int = 1) -> FbTable:
    if depth > MAX_NESTING:  # the reader's limit, and Python's recursion limit further on
        raise ArrowError(f"Arrow schema nests more than {MAX_NESTING} levels deep (MAX_NESTING, the writer's limit)")
    return FbTable(
        [
            f.name,
            Scalar("?", f.nullable),
            Scalar("B", TYPE_IDS[f.type.kind]),
            _type_table(f.type),
            None,
            [_field_table(child, depth + 1) for child in f.type.children],
            _metadata_vector(f.metadata),
        ]
    )


# ---------------------------------------------------------------- reading

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


def read_stream(data: bytes) -> Tuple[Schema, List["RecordBatch"]]:
    """Parse a complete IPC stream: its schema and record batches.

    Whatever the bytes (they come from a server or proxy we do not control), malformed
    input raises ArrowError and no other exception, in time and memory bounded by the
    stream's size and these limits, each named in its error message:

    - MAX_NESTING (64) levels of nested fields and MAX_FIELDS (10,000) fields a schema;
      one schema, first in the stream;
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


def _read_stream(view: memoryview) -> Tuple[Schema, List["RecordBatch"]]:
    limits = _Limits()
    schema: Optional[Schema] = None
    batches: List[RecordBatch] = []
    for message, body in _messages(view):
        header_type = message.scalar(1, "B")
        header = message.table(2)
        if header is None:
            raise ArrowError(f"Arrow IPC message of type {header_type} without its header")
        if header_type == HEADER_SCHEMA:
            if schema is not None:
                raise ArrowError("Arrow IPC stream has a second schema message")
            schema = _read_schema(header)
        elif header_type == HEADER_RECORD_BATCH:
            if schema is None:
                raise ArrowError("Arrow IPC stream has a record batch before its schema")
            batches.append(_read_batch(schema, header, body, limits))
        elif header_type == HEADER_DICTIONARY:
            raise ArrowError("Arrow dictionary batches are not supported (Spark does not send them)")
        else:
            raise ArrowError(f"unexpected Arrow IPC message type {header_type}")
    if schema is None:
        raise ArrowError("Arrow IPC stream without a schema")
    return schema, batches


def _messages(data: memoryview) -> Iterator[Tuple[Reader, memoryview]]:
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
            raise ArrowError(f"Arrow IPC metadata version {version} is not supported (need V4 or V5)")
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


def _message_size(data: memoryview, offset: int) -> Tuple[Optional[int], int]:
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


def _decompressor(codec: str) -> Callable[[bytes, int], bytes]:
    """The codec as ``f(payload, size)``, which returns at most size + 1 bytes: a bomb
    stops one byte past its declared size instead of filling memory."""
    if codec == "lz4":
        try:
            import lz4.frame
        except ImportError as error:
            raise ArrowError(
                "the Arrow stream is compressed with lz4; install the lz4 package, or disable "
                "compression on the server (spark.sql.execution.arrow.compression.codec=none)"
            ) from error

        def lz4_frame(payload: bytes, size: int) -> bytes:
            return lz4.frame.LZ4FrameDecompressor().decompress(payload, max_length=size + 1)

        return lz4_frame
    try:
        import zstandard
    except ImportError as error:
        raise ArrowError(
            "the Arrow stream is compressed with zstd; install the zstandard package, or "
            "disable compression on the server (spark.sql.execution.arrow.compression.codec=none)"
        ) from error

    def zstd(payload: bytes, size: int) -> bytes:
        # ZstdDecompressor.decompress would allocate what the frame header claims.
        chunks, total = [], 0
        with zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True) as reader:
            while total <= size:
                chunk = reader.read(size + 1 - total)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    return zstd


def _read_batch(schema: Schema, header: Reader, body: memoryview, limits: _Limits) -> "RecordBatch":
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


def _load_buffers(specs: List[Tuple[int, int]], body: memoryview, compression: Optional[Reader], limits: _Limits) -> List[memoryview]:
    _check_layout(specs, len(body))
    buffers = [body[offset : offset + size] for offset, size in specs]
    if compression is None:
        return buffers
    codec = CODECS.get(compression.scalar(0, "b"))
    if codec is None:
        raise ArrowError(f"Arrow compression codec {compression.scalar(0, 'b')} is unknown (Arrow has 0: lz4, 1: zstd)")
    if compression.scalar(1, "b") != 0:
        raise ArrowError(f"Arrow body compression method {compression.scalar(1, 'b')} is unknown (Arrow has 0: per buffer)")
    decompress = _decompressor(codec)
    return [_decompressed(buffer, codec, decompress, limits) for buffer in buffers]


def _check_layout(specs: List[Tuple[int, int]], body_length: int) -> None:
    """Buffers inside the body and sharing no bytes: with that, the values a batch makes
    are bounded by the bytes it has."""
    for offset, size in specs:
        if offset < 0 or size < 0 or offset + size > body_length:
            raise ArrowError(f"Arrow buffer of {size} bytes at {offset} lies outside its {body_length}-byte message body")
    end = 0
    for offset, size in sorted(spec for spec in specs if spec[1]):
        if offset < end:
            raise ArrowError(f"Arrow buffers overlap at byte {offset} of their message body (each needs bytes of its own)")
        end = offset + size


def _decompressed(raw: memoryview, codec: str, decompress: Callable[[bytes, int], bytes], limits: _Limits) -> memoryview:
    if len(raw) == 0:
        return raw
    if len(raw) < 8:
        raise ArrowError(f"Arrow {codec} buffer of {len(raw)} bytes lacks its 8-byte length")
    (size,) = struct.unpack_from("<q", raw, 0)
    if size == -1:  # stored uncompressed
        return raw[8:]
    if size < 0:
        raise ArrowError(f"Arrow {codec} buffer declares a negative length ({size})")
    limits.decompress(size)
    if size == 0:
        return raw[8:8]
    try:
        out = decompress(bytes(raw[8:]), size)
    except MemoryError:
        raise
    except Exception as error:  # the codec libraries' own errors (RuntimeError, ZstdError)
        raise ArrowError(f"Arrow {codec} buffer does not decompress: {error}") from error
    if len(out) != size:
        got = "more than" if len(out) > size else f"{len(out)} bytes, not"
        raise ArrowError(f"Arrow {codec} buffer decompresses to {got} its declared {size} bytes")
    return memoryview(out)


class _Cursor:
    """A record batch's field nodes and buffers, handed out in schema order."""

    __slots__ = ("nodes", "buffers", "limits", "taken", "_node", "_buffer")

    def __init__(self, nodes: List[Tuple[int, int]], buffers: List[memoryview], limits: _Limits) -> None:
        self.nodes, self.buffers, self.limits = nodes, buffers, limits
        self.taken = self._node = self._buffer = 0

    def node(self, path: str) -> Tuple[int, int]:
        if self._node == len(self.nodes):
            raise ArrowError(f"Arrow record batch has {len(self.nodes)} field nodes, too few for its schema (at {path!r})")
        length, null_count = self.nodes[self._node]
        self._node += 1
        if length < 0:
            raise ArrowError(f"Arrow column {path!r} has a negative length ({length})")
        if not 0 <= null_count <= length:
            raise ArrowError(f"Arrow column {path!r}: null count {null_count} outside 0..{length}")
        return length, null_count

    def buffer(self, path: str) -> memoryview:
        if self._buffer == len(self.buffers):
            raise ArrowError(f"Arrow record batch has {len(self.buffers)} buffers, too few for its schema (at {path!r})")
        buffer = self.buffers[self._buffer]
        self._buffer += 1
        self.taken += len(buffer)
        return buffer


@dataclass
class Array:
    """One column of one batch: its type, length and decoded Python values."""

    type: DataType
    length: int
    values: List[Any]
    nbytes: int = 0

    def to_pylist(self) -> List[Any]:
        return self.values


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
        raise ArrowError(f"Arrow column {path!r}: its {what} buffer has {len(buffer)} bytes; its length needs {nbytes}")
    return buffer[:nbytes]


def _bits(bitmap: memoryview, length: int) -> List[bool]:
    return list(chain.from_iterable(_BITS[b] for b in bytes(bitmap)))[:length]


def _validity(buffer: memoryview, length: int, null_count: int, path: str) -> Optional[List[bool]]:
    if null_count == 0:
        return None
    return _bits(_holding(buffer, (length + 7) // 8, path, "validity"), length)


def _fixed(buffer: memoryview, fmt: str, length: int, path: str, what: str = "data") -> List[Any]:
    data = _holding(buffer, struct.calcsize(fmt) * length, path, what)
    if fmt == "e":  # memoryview.cast has no "e" before Python 3.12
        return list(struct.unpack(f"<{length}e", data))
    try:
        return data.cast(fmt).tolist()
    except TypeError:  # not castable (e.g. unaligned on some builds): unpack instead
        return list(struct.unpack(f"<{length}{fmt}", data))


def _fixed_format(data_type: DataType) -> str:
    kind = data_type.kind
    bits = data_type.param("bits", 64 if kind in ("timestamp", "duration") else 32)
    if kind == "date":
        bits = 32 if data_type.param("unit") == "day" else 64
    if kind == "float":
        return {16: "e", 32: "f", 64: "d"}[bits]
    fmt = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
    return fmt.upper() if kind == "int" and not data_type.param("signed") else fmt


def _offsets(buffer: memoryview, length: int, large: bool, path: str, limit: Optional[int] = None) -> List[int]:
    """length + 1 offsets, from 0 or later, never decreasing, up to ``limit`` if given."""
    if not length:
        return [0]
    offsets = _fixed(buffer, "q" if large else "i", length + 1, path, "offsets")
    first, last = offsets[0], offsets[-1]
    if first < 0:
        raise ArrowError(f"Arrow column {path!r}: its offsets start at {first}, before its data")
    if limit is not None and last > limit:
        raise ArrowError(f"Arrow column {path!r}: its offsets end at {last}, past its {limit}-byte data")
    if offsets != sorted(offsets):  # one pass in C for ordered offsets
        raise ArrowError(f"Arrow column {path!r}: its offsets decrease")
    return offsets


def _decode_fixed(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
    values = _fixed(cursor.buffer(path), _fixed_format(data_type), length, path)
    if data_type.kind in ("int", "float"):
        return values
    if valid is not None:
        values = [v if ok else 0 for v, ok in zip(values, valid)]
    try:
        return _temporal(data_type, values)
    except (OverflowError, ValueError) as error:
        raise ArrowError(f"Arrow {data_type} column {path!r} holds a value out of range for Python ({error})") from error


def _temporal(data_type: DataType, raw: List[int]) -> List[Any]:
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


def _decode_bool(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
    return _bits(_holding(cursor.buffer(path), (length + 7) // 8, path, "data"), length)


def _decode_decimal(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
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


def _decode_strings(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
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


def _decode_fixed_binary(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
    width = data_type.param("width")
    raw = bytes(_holding(cursor.buffer(path), width * length, path, "data"))
    if not width:
        cursor.limits.rows_without_data(length, f"Arrow fixed_binary[0] column {path!r}")
        return [b""] * length
    return [raw[i : i + width] for i in range(0, width * length, width)]


def _decode_interval(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
    unit, data = data_type.param("unit"), cursor.buffer(path)
    if unit == "year_month":
        return _fixed(data, "i", length, path)
    if unit == "day_time":
        pairs = _fixed(data, "i", 2 * length, path)
        try:
            return [datetime.timedelta(days=pairs[2 * i], milliseconds=pairs[2 * i + 1]) for i in range(length)]
        except OverflowError as error:
            raise ArrowError(f"Arrow interval column {path!r} holds a value out of range for Python ({error})") from error
    from pyspark_web.arrow.values import MonthDayNano

    return [MonthDayNano(*v) for v in struct.iter_unpack("<iiq", _holding(data, 16 * length, path, "data"))]


def _decode_list(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
    offsets = _offsets(cursor.buffer(path), length, data_type.kind == "large_list", path)
    child = data_type.children[0]
    needed = offsets[-1]
    if data_type.kind == "map":
        items = _read_entries(child, cursor, f"{path}.{child.name}", needed)
    else:
        items = _read_array(child, cursor, f"{path}.{child.name}", needed, _UNBOUNDED, f"its list's offsets need {needed}").values
    return [items[a:b] for a, b in zip(offsets, offsets[1:])]


def _read_entries(f: Field, cursor: _Cursor, path: str, needed: int) -> List[Tuple[Any, Any]]:
    """A map's entries as (key, value) tuples, as pyarrow gives them."""
    length, _ = cursor.node(path)
    if length < needed:
        raise ArrowError(f"Arrow column {path!r} has {length} values; its map's offsets need {needed}")
    cursor.buffer(path)  # the entries' validity: entries are never null
    key, value = f.type.children
    context = f"its map has {length} entries"
    keys = _read_array(key, cursor, f"{path}.{key.name}", length, _UNBOUNDED, context).values
    values = _read_array(value, cursor, f"{path}.{value.name}", length, _UNBOUNDED, context).values
    return list(zip(keys, values))


def _decode_fixed_list(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
    size, child = data_type.param("size"), data_type.children[0]
    if not size:
        cursor.limits.rows_without_data(length, f"Arrow fixed_size_list[0] column {path!r}")
    needed = size * length
    items = _read_array(child, cursor, f"{path}.{child.name}", needed, _UNBOUNDED, f"its fixed-size lists need {needed}").values
    return [items[i * size : (i + 1) * size] for i in range(length)]


def _decode_struct(data_type: DataType, cursor: _Cursor, path: str, length: int, valid: Optional[List[bool]]) -> List[Any]:
    fields = data_type.children
    if not fields:
        cursor.limits.rows_without_data(length, f"Arrow struct column {path!r} without fields")
        return [{} for _ in range(length)]
    context = f"its struct has {length} rows"
    columns = []
    for child in fields:
        values = _read_array(child, cursor, f"{path}.{child.name}", length, _UNBOUNDED, context).values
        columns.append(values if len(values) == length else values[:length])
    names = [child.name for child in fields]
    return [dict(zip(names, row)) for row in zip(*columns)]


_Decoder = Callable[[DataType, _Cursor, str, int, Optional[List[bool]]], List[Any]]
_DECODERS: Dict[str, _Decoder] = {
    **dict.fromkeys(("int", "float", "date", "time", "timestamp", "duration"), _decode_fixed),
    "bool": _decode_bool,
    "decimal": _decode_decimal,
    **dict.fromkeys(("utf8", "large_utf8", "binary", "large_binary"), _decode_strings),
    "fixed_binary": _decode_fixed_binary,
    "interval": _decode_interval,
    **dict.fromkeys(("list", "large_list", "map"), _decode_list),
    "fixed_list": _decode_fixed_list,
    "struct": _decode_struct,
}


@dataclass
class RecordBatch:
    schema: Schema
    num_rows: int
    columns: List[Array]

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.columns)


# ---------------------------------------------------------------- writing


class _Body:
    def __init__(self) -> None:
        self.data = bytearray()
        self.buffers: List[Tuple[int, int]] = []
        self.nodes: List[Tuple[int, int]] = []

    def add(self, raw: bytes) -> None:
        self.buffers.append((len(self.data), len(raw)))
        self.data += raw
        self.data += b"\0" * (-len(self.data) % 8)


def _bitmap(flags: Sequence[bool]) -> bytes:
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def _to_micros(value: datetime.datetime, unit: str) -> int:
    if value.tzinfo is not None:
        delta = value - EPOCH_UTC
    else:
        delta = value - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros * 1000 if unit == "ns" else micros // MICROS[unit]


def _write_array(data_type: DataType, values: Sequence[Any], body: _Body) -> None:
    kind = data_type.kind
    length = len(values)
    nulls = sum(v is None for v in values)
    body.nodes.append((length, nulls if kind != "null" else length))
    if kind == "null":
        return
    body.add(_bitmap([v is not None for v in values]) if nulls else b"")
    if kind in ("int", "float", "date", "time", "timestamp", "duration"):
        bits = data_type.param("bits", 64 if kind in ("timestamp", "duration") else 32)
        unit = data_type.param("unit")
        if kind == "date":
            bits = 32 if unit == "day" else 64
            values = [None if v is None else (v.toordinal() - EPOCH_ORDINAL) * (1 if unit == "day" else 86_400_000) for v in values]
        elif kind == "timestamp":
            values = [None if v is None else _to_micros(v, unit) for v in values]
        elif kind == "duration":
            values = [None if v is None else (v // datetime.timedelta(microseconds=1)) * (1000 if unit == "ns" else 1) // (MICROS[unit] or 1) for v in values]
        elif kind == "time":
            values = [None if v is None else ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond for v in values]
            values = [None if v is None else (v * 1000 if unit == "ns" else v // MICROS[unit]) for v in values]
        if kind == "float":
            fmt = {16: "e", 32: "f", 64: "d"}[bits]
            zero: Any = 0.0
        else:
            fmt = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
            if kind == "int" and not data_type.param("signed"):
                fmt = fmt.upper()
            zero = 0
        try:
            body.add(struct.pack(f"<{length}{fmt}", *(zero if v is None else v for v in values)))
        except struct.error as error:
            raise ArrowError(f"value out of range for Arrow {data_type}: {error}") from error
    elif kind == "bool":
        body.add(_bitmap([bool(v) for v in values]))
    elif kind == "decimal":
        scale, width = data_type.param("scale"), data_type.param("bits", 128) // 8
        out = bytearray()
        with decimal.localcontext() as context:
            context.prec = 80
            for v in values:
                unscaled = 0 if v is None else int(decimal.Decimal(v).scaleb(scale).to_integral_value())
                out += unscaled.to_bytes(width, "little", signed=True)
        body.add(bytes(out))
    elif kind in ("utf8", "large_utf8", "binary", "large_binary"):
        encoded = [b"" if v is None else (v.encode("utf-8") if isinstance(v, str) else bytes(v)) for v in values]
        offsets = [0]
        for item in encoded:
            offsets.append(offsets[-1] + len(item))
        body.add(struct.pack(f"<{len(offsets)}{'q' if kind.startswith('large') else 'i'}", *offsets))
        body.add(b"".join(encoded))
    elif kind == "fixed_binary":
        width = data_type.param("width")
        body.add(b"".join(b"\0" * width if v is None else bytes(v) for v in values))
    elif kind in ("list", "large_list", "map"):
        items: List[Any] = []
        offsets = [0]
        for v in values:
            if v is not None:
                entries = list(v.items()) if isinstance(v, dict) else list(v)
                if kind == "map":
                    entries = [{"key": k, "value": x} for k, x in entries]
                items.extend(entries)
            offsets.append(len(items))
        body.add(struct.pack(f"<{len(offsets)}{'q' if kind == 'large_list' else 'i'}", *offsets))
        child = data_type.children[0].type
        if kind == "map":
            key_field, value_field = child.children
            child = DataType("struct", (), (Field("key", key_field.type, False), Field("value", value_field.type, value_field.nullable)))
        _write_array(child, items, body)
    elif kind == "struct":
        for index, child in enumerate(data_type.children):
            column = [None if v is None else (v.get(child.name) if isinstance(v, dict) else v[index]) for v in values]
            _write_array(child.type, column, body)
    else:
        raise ArrowError(f"writing Arrow {data_type} is not supported")


def _message(header_type: int, header: FbTable, body_length: int) -> bytes:
    metadata = flatbuf.build(FbTable([Scalar("h", METADATA_V5), Scalar("B", header_type), header, Scalar("q", body_length)]))
    return CONTINUATION + struct.pack("<i", len(metadata)) + metadata


def schema_message(schema: Schema) -> bytes:
    header = FbTable([Scalar("h", 0), [_field_table(f) for f in schema.fields], _metadata_vector(list(schema.metadata.items()))])
    return _message(HEADER_SCHEMA, header, 0)


def batch_message(schema: Schema, columns: Sequence[Sequence[Any]], num_rows: int) -> bytes:
    body = _Body()
    for f, values in zip(schema.fields, columns):
        if len(values) != num_rows:
            raise ArrowError(f"column {f.name} has {len(values)} values, the batch {num_rows} rows")
        _write_array(f.type, values, body)
    header = FbTable([Scalar("q", num_rows), Structs("qq", body.nodes), Structs("qq", body.buffers)])
    return _message(HEADER_RECORD_BATCH, header, len(body.data)) + bytes(body.data)


def write_stream(schema: Schema, batches: Sequence[Tuple[Sequence[Sequence[Any]], int]]) -> bytes:
    """An IPC stream: the schema, then one record batch per (columns, num_rows)."""
    out = bytearray(schema_message(schema))
    for columns, num_rows in batches:
        out += batch_message(schema, columns, num_rows)
    out += END_OF_STREAM
    return bytes(out)
