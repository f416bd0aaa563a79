"""Writing Arrow IPC streams from Python values: the values pyarrow's ``to_pylist()``
gives, typed by a Schema (tests/unit/pyarrow_checks/check_arrow_ipc.py checks that
pyarrow reads them back)."""

import datetime
import decimal
import struct
from collections.abc import Sequence
from typing import Any

from pyspark_web.arrow import flatbuf
from pyspark_web.arrow.flatbuf import Scalar, Structs
from pyspark_web.arrow.flatbuf import Table as FbTable
from pyspark_web.arrow.metadata import (
    CONTINUATION,
    END_OF_STREAM,
    HEADER_RECORD_BATCH,
    HEADER_SCHEMA,
    METADATA_V5,
    schema_table,
)
from pyspark_web.arrow.types import (
    EPOCH,
    EPOCH_ORDINAL,
    EPOCH_UTC,
    FIXED_WIDTH_KINDS,
    MICROS,
    ArrowError,
    DataType,
    Field,
    Schema,
    fixed_format,
)


class _Body:
    def __init__(self) -> None:
        self.data = bytearray()
        self.buffers: list[tuple[int, int]] = []
        self.nodes: list[tuple[int, int]] = []

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
    if kind in FIXED_WIDTH_KINDS:
        unit = data_type.param("unit")
        if kind == "date":
            values = [
                None
                if v is None
                else (v.toordinal() - EPOCH_ORDINAL) * (1 if unit == "day" else 86_400_000)
                for v in values
            ]
        elif kind == "timestamp":
            values = [None if v is None else _to_micros(v, unit) for v in values]
        elif kind == "duration":
            values = [
                None
                if v is None
                else (v // datetime.timedelta(microseconds=1))
                * (1000 if unit == "ns" else 1)
                // (MICROS[unit] or 1)
                for v in values
            ]
        elif kind == "time":
            values = [
                None
                if v is None
                else ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
                for v in values
            ]
            values = [
                None if v is None else (v * 1000 if unit == "ns" else v // MICROS[unit])
                for v in values
            ]
        fmt = fixed_format(data_type)
        zero: Any = 0.0 if kind == "float" else 0
        try:
            body.add(struct.pack(f"<{length}{fmt}", *(zero if v is None else v for v in values)))
        except struct.error as error:
            raise _unconvertible(values, fmt, zero, data_type) from error
    elif kind == "bool":
        body.add(_bitmap([bool(v) for v in values]))
    elif kind == "decimal":
        scale, width = data_type.param("scale"), data_type.param("bits", 128) // 8
        out = bytearray()
        with decimal.localcontext() as context:
            context.prec = 80
            for v in values:
                unscaled = (
                    0 if v is None else int(decimal.Decimal(v).scaleb(scale).to_integral_value())
                )
                out += unscaled.to_bytes(width, "little", signed=True)
        body.add(bytes(out))
    elif kind in ("utf8", "large_utf8", "binary", "large_binary"):
        encoded = [
            b"" if v is None else (v.encode("utf-8") if isinstance(v, str) else bytes(v))
            for v in values
        ]
        offsets = [0]
        for item in encoded:
            offsets.append(offsets[-1] + len(item))
        body.add(
            struct.pack(f"<{len(offsets)}{'q' if kind.startswith('large') else 'i'}", *offsets)
        )
        body.add(b"".join(encoded))
    elif kind == "fixed_binary":
        width = data_type.param("width")
        body.add(b"".join(b"\0" * width if v is None else bytes(v) for v in values))
    elif kind in ("list", "large_list", "map"):
        items: list[Any] = []
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
            child = DataType(
                "struct",
                (),
                (
                    Field("key", key_field.type, False),
                    Field("value", value_field.type, value_field.nullable),
                ),
            )
        _write_array(child, items, body)
    elif kind == "struct":
        for index, child in enumerate(data_type.children):
            column = [
                None if v is None else (v.get(child.name) if isinstance(v, dict) else v[index])
                for v in values
            ]
            _write_array(child.type, column, body)
    else:
        raise ArrowError(f"writing Arrow {data_type} is not supported")


def _message(header_type: int, header: FbTable, body_length: int) -> bytes:
    metadata = flatbuf.build(
        FbTable(
            [Scalar("h", METADATA_V5), Scalar("B", header_type), header, Scalar("q", body_length)]
        )
    )
    return CONTINUATION + struct.pack("<i", len(metadata)) + metadata


def schema_message(schema: Schema) -> bytes:
    return _message(HEADER_SCHEMA, schema_table(schema), 0)


def batch_message(schema: Schema, columns: Sequence[Sequence[Any]], num_rows: int) -> bytes:
    body = _Body()
    for f, values in zip(schema.fields, columns):
        if len(values) != num_rows:
            raise ArrowError(f"column {f.name} has {len(values)} values, the batch {num_rows} rows")
        _write_array(f.type, values, body)
    header = FbTable(
        [Scalar("q", num_rows), Structs("qq", body.nodes), Structs("qq", body.buffers)]
    )
    return _message(HEADER_RECORD_BATCH, header, len(body.data)) + bytes(body.data)


def write_stream(schema: Schema, batches: Sequence[tuple[Sequence[Sequence[Any]], int]]) -> bytes:
    """An IPC stream: the schema, then one record batch per (columns, num_rows)."""
    out = bytearray(schema_message(schema))
    for columns, num_rows in batches:
        out += batch_message(schema, columns, num_rows)
    out += END_OF_STREAM
    return bytes(out)


def _unconvertible(values: Sequence[Any], fmt: str, zero: Any, data_type: DataType) -> ArrowError:
    """The error for a column that struct cannot pack: it names the first value that fails,
    with its Python type, as pyarrow's ArrowInvalid does ("Could not convert ...")."""
    for value in values:
        try:
            struct.pack(f"<{fmt}", zero if value is None else value)
        except struct.error as error:
            reason = "out of range" if isinstance(value, int) else str(error)
            return ArrowError(
                f"cannot convert {value!r} of type {type(value).__name__} to Arrow "
                f"{data_type}: {reason}"
            )
    return ArrowError(f"cannot convert the values to Arrow {data_type}")
