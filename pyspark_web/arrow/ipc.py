"""Arrow IPC streams in pure Python: read them into Python values, write them from Python
values. Covers every type Spark Connect sends or accepts.

Formats: https://arrow.apache.org/docs/format/Columnar.html (buffers) and its "IPC
Streaming Format" section (messages), metadata from Schema.fbs and Message.fbs.

Reading yields values exactly as pyarrow's ``to_pylist()`` would (tests/unit/
test_arrow_ipc.py checks it against pyarrow), so upstream PySpark's conversions run on
them unchanged. Buffers are decoded with ``memoryview.cast`` and ``struct``; only strings
and nested values cost a Python step per element.
"""

import datetime
import decimal
import struct
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

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


def _read_type(kind: str, table: Optional[Reader]) -> Tuple[Tuple[str, Any], ...]:
    if kind == "int":
        return (("bits", table.scalar(0, "i")), ("signed", table.scalar(1, "?", False)))
    if kind == "float":
        return (("bits", {0: 16, 1: 32, 2: 64}[table.scalar(0, "h")]),)
    if kind == "decimal":
        return (("precision", table.scalar(0, "i")), ("scale", table.scalar(1, "i")), ("bits", table.scalar(2, "i", 128)))
    if kind == "date":
        return (("unit", "day" if table.scalar(0, "h", 1) == 0 else "ms"),)
    if kind == "time":
        return (("unit", TIME_UNITS[table.scalar(0, "h", 1)]), ("bits", table.scalar(1, "i", 32)))
    if kind == "timestamp":
        return (("unit", TIME_UNITS[table.scalar(0, "h")]), ("tz", table.string(1)))
    if kind == "duration":
        return (("unit", TIME_UNITS[table.scalar(0, "h", 1)]),)
    if kind == "interval":
        return (("unit", ("year_month", "day_time", "month_day_nano")[table.scalar(0, "h")]),)
    if kind == "fixed_binary":
        return (("width", table.scalar(0, "i")),)
    if kind == "fixed_list":
        return (("size", table.scalar(0, "i")),)
    if kind == "map":
        return (("keys_sorted", table.scalar(0, "?", False)),)
    return ()


def _read_metadata(table: Reader, field_id: int) -> Tuple[Tuple[str, str], ...]:
    return tuple((kv.string(0) or "", kv.string(1) or "") for kv in table.tables(field_id))


# Bounds on what a schema may ask the reader to build: flatbuffer tables can be shared, so
# a few hundred bytes can otherwise describe 2^depth fields.
MAX_NESTING = 64
MAX_FIELDS = 10_000


def _read_fields(tables: List[Reader]) -> List[Field]:
    count = [0]
    return [_read_field(table, 1, count) for table in tables]


def _read_field(table: Reader, depth: int, count: List[int]) -> Field:
    if depth > MAX_NESTING:
        raise ArrowError(f"Arrow schema nests more than {MAX_NESTING} levels deep (the reader's limit)")
    count[0] += 1
    if count[0] > MAX_FIELDS:
        raise ArrowError(f"Arrow schema has more than {MAX_FIELDS} fields (the reader's limit)")
    type_id = table.scalar(2, "B")
    kind = TYPE_NAMES.get(type_id)
    if kind is None or kind == "union":
        raise ArrowError(f"Arrow type id {type_id} is not supported by pyspark-web's reader")
    if table.table(4) is not None:
        raise ArrowError("dictionary-encoded Arrow fields are not supported (Spark does not send them)")
    children = tuple(_read_field(child, depth + 1, count) for child in table.tables(5))
    data_type = DataType(kind, _read_type(kind, table.table(3)), children)
    return Field(table.string(0) or "", data_type, table.scalar(1, "?", False), _read_metadata(table, 6))


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
        return FbTable([Scalar("h", ("year_month", "day_time", "month_day_nano").index(p("unit")))])
    if kind == "map":
        return FbTable([Scalar("?", p("keys_sorted", False))])
    if kind == "fixed_binary":
        return FbTable([Scalar("i", p("width"))])
    if kind == "fixed_list":
        return FbTable([Scalar("i", p("size"))])
    return FbTable([])


def _metadata_vector(metadata: Sequence[Tuple[str, str]]) -> Optional[list]:
    return [FbTable([key, value]) for key, value in metadata] or None


def _field_table(f: Field) -> FbTable:
    return FbTable(
        [
            f.name,
            Scalar("?", f.nullable),
            Scalar("B", TYPE_IDS[f.type.kind]),
            _type_table(f.type),
            None,
            [_field_table(child) for child in f.type.children],
            _metadata_vector(f.metadata),
        ]
    )


# ---------------------------------------------------------------- reading


def _messages(data: memoryview) -> Iterator[Tuple[Reader, memoryview]]:
    offset = 0
    while offset + 4 <= len(data):
        (size,) = struct.unpack_from("<i", data, offset)
        offset += 4
        if size == -1:  # continuation marker, then the real size
            if offset + 4 > len(data):
                break
            (size,) = struct.unpack_from("<i", data, offset)
            offset += 4
        if size == 0:
            return
        if size < 0 or offset + size > len(data):
            raise ArrowError(f"Arrow IPC message of {size} bytes runs past the end of the stream")
        message = Reader.root(data[offset : offset + size])
        offset += size
        version = message.scalar(0, "h")
        if version < METADATA_V5 - 1:
            raise ArrowError(f"Arrow IPC metadata version {version} is too old (need V4 or V5)")
        body_length = message.scalar(3, "q")
        if body_length < 0:
            # It would move the read offset backwards: the stream would never end.
            raise ArrowError(f"Arrow IPC message with a negative body length ({body_length})")
        if offset + body_length > len(data):
            raise ArrowError("Arrow IPC message body runs past the end of the stream")
        yield message, data[offset : offset + body_length]
        offset += body_length
    if offset != len(data):
        raise ArrowError("Arrow IPC stream ends inside a message")


def read_stream(data: bytes) -> Tuple[Schema, List["RecordBatch"]]:
    """Parse a complete IPC stream: its schema and record batches."""
    view = memoryview(data)
    schema: Optional[Schema] = None
    batches: List[RecordBatch] = []
    try:
        for message, body in _messages(view):
            header_type = message.scalar(1, "B")
            header = message.table(2)
            if header_type == HEADER_SCHEMA:
                schema = Schema(_read_fields(header.tables(1)), dict(_read_metadata(header, 2)))
            elif header_type == HEADER_RECORD_BATCH:
                if schema is None:
                    raise ArrowError("Arrow IPC stream has a record batch before its schema")
                batches.append(_read_batch(schema, header, body))
            elif header_type == HEADER_DICTIONARY:
                raise ArrowError("Arrow dictionary batches are not supported (Spark does not send them)")
            else:
                raise ArrowError(f"unexpected Arrow IPC message type {header_type}")
    except (FlatbufferError, struct.error, IndexError, KeyError) as error:
        raise ArrowError(f"malformed Arrow IPC stream: {error}") from error
    if schema is None:
        raise ArrowError("Arrow IPC stream without a schema")
    return schema, batches


def _decompressor(codec: str):
    if codec == "lz4":
        try:
            import lz4.frame
        except ImportError as error:
            raise ArrowError(
                "the Arrow stream is compressed with lz4; install the lz4 package, or disable "
                "compression on the server (spark.sql.execution.arrow.compression.codec=none)"
            ) from error
        return lz4.frame.decompress
    try:
        import zstandard
    except ImportError as error:
        raise ArrowError(
            "the Arrow stream is compressed with zstd; install the zstandard package, or "
            "disable compression on the server (spark.sql.execution.arrow.compression.codec=none)"
        ) from error
    return lambda data: zstandard.ZstdDecompressor().decompress(data)


def _read_batch(schema: Schema, header: Reader, body: memoryview) -> "RecordBatch":
    length = header.scalar(0, "q")
    nodes = iter(header.structs(1, "qq"))
    buffer_specs = header.structs(2, "qq")
    compression = header.table(3)
    buffers: List[memoryview] = []
    decompress = _decompressor(CODECS.get(compression.scalar(0, "b"), "?")) if compression else None
    for offset, size in buffer_specs:
        if offset < 0 or offset + size > len(body):
            raise ArrowError("Arrow buffer outside its message body")
        raw = body[offset : offset + size]
        if decompress is not None and size >= 8:
            (uncompressed,) = struct.unpack_from("<q", raw, 0)
            raw = raw[8:] if uncompressed == -1 else memoryview(decompress(bytes(raw[8:])))
        buffers.append(raw)
    buffer_iter = iter(buffers)
    columns = [_read_array(f.type, nodes, buffer_iter) for f in schema.fields]
    return RecordBatch(schema, length, columns)


@dataclass
class Array:
    """One column of one batch: its type, length and decoded Python values."""

    type: DataType
    length: int
    values: List[Any]
    nbytes: int = 0

    def to_pylist(self) -> List[Any]:
        return self.values


def _validity(buffer: memoryview, length: int, null_count: int) -> Optional[List[bool]]:
    if null_count == 0 or len(buffer) == 0:
        return None
    return list(chain.from_iterable(_BITS[b] for b in bytes(buffer)))[:length]


def _fixed(buffer: memoryview, fmt: str, length: int) -> List[Any]:
    size = struct.calcsize(fmt)
    if len(buffer) < size * length:
        raise ArrowError("Arrow data buffer shorter than its column")
    data = buffer[: size * length]
    try:
        return data.cast(fmt).tolist()
    except TypeError:  # not castable (e.g. unaligned on some builds): unpack instead
        return list(struct.unpack_from(f"<{length}{fmt}", data))


def _offsets(buffer: memoryview, length: int, large: bool) -> List[int]:
    return _fixed(buffer, "q" if large else "i", length + 1) if length else [0]


def _strings(offsets: List[int], data: memoryview, text: bool) -> List[Any]:
    raw = bytes(data[offsets[0] : offsets[-1]])
    base = offsets[0]
    if text:
        decoded = raw.decode("utf-8")
        if len(decoded) == len(raw):  # ASCII: byte offsets are character offsets
            return [decoded[a - base : b - base] for a, b in zip(offsets, offsets[1:])]
        return [raw[a - base : b - base].decode("utf-8") for a, b in zip(offsets, offsets[1:])]
    return [raw[a - base : b - base] for a, b in zip(offsets, offsets[1:])]


def _decimal(raw: bytes, scale: int) -> decimal.Decimal:
    value = int.from_bytes(raw, "little", signed=True)
    digits = tuple(int(d) for d in str(abs(value)))
    return decimal.Decimal((1 if value < 0 else 0, digits, -scale))


def _temporal(kind: str, data_type: DataType, raw: List[int]) -> List[Any]:
    unit = data_type.param("unit")
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
    # time of day
    return [(datetime.datetime.min + datetime.timedelta(microseconds=m)).time() for m in micros]


def _read_array(data_type: DataType, nodes: Iterator[Tuple[int, int]], buffers: Iterator[memoryview]) -> Array:
    length, null_count = next(nodes)
    kind = data_type.kind
    if kind == "null":
        return Array(data_type, length, [None] * length)
    validity_buffer = next(buffers)
    valid = _validity(validity_buffer, length, null_count)
    nbytes = len(validity_buffer)
    if kind in ("int", "float", "date", "time", "timestamp", "duration"):
        bits = data_type.param("bits", 64 if kind in ("timestamp", "duration") else 32)
        if kind == "date":
            bits = 32 if data_type.param("unit") == "day" else 64
        if kind == "float":
            fmt = {16: "e", 32: "f", 64: "d"}[bits]
        else:
            fmt = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
            if kind == "int" and not data_type.param("signed"):
                fmt = fmt.upper()
        data = next(buffers)
        nbytes += len(data)
        values = _fixed(data, fmt, length)
        if kind not in ("int", "float"):
            if valid is not None:
                values = [v if ok else 0 for v, ok in zip(values, valid)]
            values = _temporal(kind, data_type, values)
    elif kind == "bool":
        data = next(buffers)
        nbytes += len(data)
        values = list(chain.from_iterable(_BITS[b] for b in bytes(data[: (length + 7) // 8])))[:length]
    elif kind == "decimal":
        data = next(buffers)
        nbytes += len(data)
        width = data_type.param("bits", 128) // 8
        scale = data_type.param("scale")
        raw = bytes(data[: width * length])
        values = [
            _decimal(raw[i : i + width], scale) if valid is None or valid[i // width] else None
            for i in range(0, width * length, width)
        ]
    elif kind in ("utf8", "large_utf8", "binary", "large_binary"):
        offsets_buffer, data = next(buffers), next(buffers)
        nbytes += len(offsets_buffer) + len(data)
        offsets = _offsets(offsets_buffer, length, kind.startswith("large"))
        values = _strings(offsets, data, kind.endswith("utf8"))
    elif kind == "fixed_binary":
        data = next(buffers)
        nbytes += len(data)
        width = data_type.param("width")
        raw = bytes(data[: width * length])
        values = [raw[i : i + width] for i in range(0, width * length, width)]
    elif kind == "interval":
        data = next(buffers)
        nbytes += len(data)
        values = _intervals(data_type.param("unit"), data, length)
    elif kind in ("list", "large_list", "map"):
        offsets_buffer = next(buffers)
        nbytes += len(offsets_buffer)
        offsets = _offsets(offsets_buffer, length, kind == "large_list")
        child = _read_array(data_type.children[0].type, nodes, buffers)
        nbytes += child.nbytes
        items = child.values
        if kind == "map":
            # pyarrow gives a map as a list of (key, value) tuples.
            items = [(entry["key"] if "key" in entry else list(entry.values())[0],
                      entry["value"] if "value" in entry else list(entry.values())[1]) for entry in items]
        values = [items[a:b] for a, b in zip(offsets, offsets[1:])]
    elif kind == "fixed_list":
        size = data_type.param("size")
        child = _read_array(data_type.children[0].type, nodes, buffers)
        nbytes += child.nbytes
        values = [child.values[i * size : (i + 1) * size] for i in range(length)]
    elif kind == "struct":
        children = [(f.name, _read_array(f.type, nodes, buffers)) for f in data_type.children]
        nbytes += sum(c.nbytes for _, c in children)
        names = [name for name, _ in children]
        columns = [c.values for _, c in children]
        values = [dict(zip(names, row)) for row in zip(*columns)] if columns else [{} for _ in range(length)]
    else:
        raise ArrowError(f"Arrow type {data_type} is not supported by pyspark-web's reader")
    if valid is not None and kind != "decimal":
        values = [v if ok else None for v, ok in zip(values, valid)]
    return Array(data_type, length, values, nbytes)


def _intervals(unit: str, data: memoryview, length: int) -> List[Any]:
    if unit == "year_month":
        return _fixed(data, "i", length)
    if unit == "day_time":
        pairs = _fixed(data, "i", 2 * length)
        return [datetime.timedelta(days=pairs[2 * i], milliseconds=pairs[2 * i + 1]) for i in range(length)]
    from pyspark_web.arrow.values import MonthDayNano

    layout = struct.Struct("<iiq")
    return [MonthDayNano(*layout.unpack_from(data, 16 * i)) for i in range(length)]


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
