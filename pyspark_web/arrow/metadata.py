"""Arrow IPC metadata: the stream's message framing, and schemas to and from their
FlatBuffers tables (Schema.fbs and Message.fbs), with the limits on what a schema may ask
the reader to build.

Format: the "IPC Streaming Format" section of
https://arrow.apache.org/docs/format/Columnar.html , metadata from Schema.fbs and
Message.fbs.
"""

from collections.abc import Sequence
from typing import Any

from pyspark_web.arrow.flatbuf import Reader, Scalar
from pyspark_web.arrow.flatbuf import Table as FbTable
from pyspark_web.arrow.types import ArrowError, DataType, Field, Schema

CONTINUATION = b"\xff\xff\xff\xff"
END_OF_STREAM = CONTINUATION + b"\x00\x00\x00\x00"
METADATA_V5 = 4
# Message.header union, Schema.fbs Type union.
HEADER_SCHEMA, HEADER_DICTIONARY, HEADER_RECORD_BATCH = 1, 2, 3
TYPE_IDS = {
    "null": 1,
    "int": 2,
    "float": 3,
    "binary": 4,
    "utf8": 5,
    "bool": 6,
    "decimal": 7,
    "date": 8,
    "time": 9,
    "timestamp": 10,
    "interval": 11,
    "list": 12,
    "struct": 13,
    "union": 14,
    "fixed_binary": 15,
    "fixed_list": 16,
    "map": 17,
    "duration": 18,
    "large_binary": 19,
    "large_utf8": 20,
    "large_list": 21,
}
TYPE_NAMES = {number: name for name, number in TYPE_IDS.items()}
# Schema.fbs enums, by value.
TIME_UNITS = ("s", "ms", "us", "ns")
INTERVAL_UNITS = ("year_month", "day_time", "month_day_nano")
FLOAT_PRECISIONS = (16, 32, 64)

# Bounds on what a schema may ask the reader to build: flatbuffer tables can be shared, so
# a few hundred bytes can otherwise describe 2^depth fields.
MAX_NESTING = 64
MAX_FIELDS = 10_000

# How many children a field of each nested kind has (None: any number); other kinds, none.
_CHILDREN = {"list": 1, "large_list": 1, "fixed_list": 1, "map": 1, "struct": None}


# ---------------------------------------------------------------- reading


def read_schema(header: Reader) -> Schema:
    """The Schema of a schema message's header table, within MAX_NESTING and MAX_FIELDS."""
    if header.scalar(0, "h") != 0:
        raise ArrowError("big-endian Arrow streams are not supported")
    reader = _SchemaReader()
    fields = [reader.field(table, 1) for table in header.iter_tables(1)]
    return Schema(fields, dict(reader.metadata(header, 2)))


def _enum(
    table: Reader, field_id: int, default: int, names: Sequence[Any], what: str, name: str
) -> Any:
    value = table.scalar(field_id, "h", default)
    if not 0 <= value < len(names):
        raise ArrowError(f"Arrow field {name!r}: {what} {value} is not one Arrow defines")
    return names[value]


def _read_type(kind: str, table: Reader, name: str) -> tuple[tuple[str, Any], ...]:
    """A type's parameters, each checked: the decoders rely on them."""
    if kind == "int":
        bits = table.scalar(0, "i")
        if bits not in (8, 16, 32, 64):
            raise ArrowError(
                f"Arrow field {name!r}: int of {bits} bits (Arrow has 8, 16, 32 and 64)"
            )
        return (("bits", bits), ("signed", table.scalar(1, "?", False)))
    if kind == "float":
        return (("bits", _enum(table, 0, 0, FLOAT_PRECISIONS, "float precision", name)),)
    if kind == "decimal":
        bits = table.scalar(2, "i", 128)
        if bits not in (32, 64, 128, 256):
            raise ArrowError(
                f"Arrow field {name!r}: decimal of {bits} bits (Arrow has 32, 64, 128 and 256)"
            )
        return (
            ("precision", table.scalar(0, "i")),
            ("scale", table.scalar(1, "i")),
            ("bits", bits),
        )
    if kind == "date":
        return (("unit", _enum(table, 0, 1, ("day", "ms"), "date unit", name)),)
    if kind == "time":
        unit, bits = _enum(table, 0, 1, TIME_UNITS, "time unit", name), table.scalar(1, "i", 32)
        if bits not in (32, 64):
            raise ArrowError(f"Arrow field {name!r}: time of {bits} bits (Arrow has 32 and 64)")
        return (("unit", unit), ("bits", bits))
    if kind == "timestamp":
        return (
            ("unit", _enum(table, 0, 0, TIME_UNITS, "timestamp unit", name)),
            ("tz", table.string(1)),
        )
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


def _check_children(kind: str, name: str, children: tuple[Field, ...]) -> None:
    expected = _CHILDREN.get(kind, 0)
    if expected is not None and len(children) != expected:
        raise ArrowError(
            f"Arrow {kind} field {name!r} has {len(children)} children (it takes {expected})"
        )
    if kind == "map":
        entries = children[0].type
        if entries.kind != "struct" or len(entries.children) != 2:
            raise ArrowError(
                f"Arrow map field {name!r}: its entries must be a struct of two fields (key, value)"
            )


class _SchemaReader:
    """Reads a schema's fields against the limits. Metadata vectors that fields share (as
    forged tables can) are read once and shared, so they cannot multiply either."""

    def __init__(self) -> None:
        self.count = 0
        self.shared: dict[int, tuple[tuple[str, str], ...]] = {}

    def metadata(self, table: Reader, field_id: int) -> tuple[tuple[str, str], ...]:
        key = table.vector_id(field_id)
        if key is None:
            return ()
        if key not in self.shared:
            self.shared[key] = tuple(
                (kv.string(0) or "", kv.string(1) or "") for kv in table.iter_tables(field_id)
            )
        return self.shared[key]

    def field(self, table: Reader, depth: int) -> Field:
        if depth > MAX_NESTING:
            raise ArrowError(
                f"Arrow schema nests more than {MAX_NESTING} levels deep "
                "(MAX_NESTING, the reader's limit)"
            )
        self.count += 1
        if self.count > MAX_FIELDS:
            raise ArrowError(
                f"Arrow schema has more than {MAX_FIELDS} fields (MAX_FIELDS, the reader's limit)"
            )
        name = table.string(0) or ""
        type_id = table.scalar(2, "B")
        kind = TYPE_NAMES.get(type_id)
        if kind is None or kind == "union":
            raise ArrowError(
                f"Arrow type id {type_id} (field {name!r}) is not supported by pyspark-web's reader"
            )
        if table.table(4) is not None:
            raise ArrowError(
                "dictionary-encoded Arrow fields are not supported (Spark does not send them)"
            )
        type_table = table.table(3)
        if type_table is None:
            raise ArrowError(f"Arrow field {name!r} lacks its type table")
        children = tuple(self.field(child, depth + 1) for child in table.iter_tables(5))
        _check_children(kind, name, children)
        data_type = DataType(kind, _read_type(kind, type_table, name), children)
        return Field(name, data_type, table.scalar(1, "?", False), self.metadata(table, 6))


# ---------------------------------------------------------------- writing


def schema_table(schema: Schema) -> FbTable:
    """A schema message's header table (little-endian, as the reader requires)."""
    return FbTable(
        [
            Scalar("h", 0),
            [_field_table(f) for f in schema.fields],
            _metadata_vector(list(schema.metadata.items())),
        ]
    )


def _type_table(data_type: DataType) -> FbTable:
    p, kind = data_type.param, data_type.kind
    if kind == "int":
        return FbTable([Scalar("i", p("bits")), Scalar("?", p("signed"))])
    if kind == "float":
        return FbTable([Scalar("h", FLOAT_PRECISIONS.index(p("bits")))])
    if kind == "decimal":
        return FbTable(
            [Scalar("i", p("precision")), Scalar("i", p("scale")), Scalar("i", p("bits", 128))]
        )
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


def _metadata_vector(metadata: Sequence[tuple[str, str]]) -> list | None:
    return [FbTable([key, value]) for key, value in metadata] or None


def _field_table(f: Field, depth: int = 1) -> FbTable:
    if depth > MAX_NESTING:  # the reader's limit, and Python's recursion limit further on
        raise ArrowError(
            f"Arrow schema nests more than {MAX_NESTING} levels deep "
            "(MAX_NESTING, the writer's limit)"
        )
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
