"""The Arrow model that the reader builds and the writer takes: types, fields, schemas,
decoded columns and record batches, the one error, and the physical encoding of
fixed-width values (shared by reader and writer).

Format: https://arrow.apache.org/docs/format/Columnar.html
"""

import datetime
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class ArrowError(Exception):
    """An IPC stream this reader cannot read, or data this writer cannot write."""


@dataclass(frozen=True)
class DataType:
    kind: str  # a type of Schema.fbs: a key of metadata.TYPE_IDS
    params: tuple[tuple[str, Any], ...] = ()
    children: tuple["Field", ...] = ()

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
            return {"year_month": "month_interval", "day_time": "day_time_interval"}.get(
                p("unit"), "month_day_nano_interval"
            )
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
    metadata: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.name}: {self.type}"


@dataclass
class Schema:
    fields: list[Field]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass
class Array:
    """One column of one batch: its type, length and decoded Python values."""

    type: DataType
    length: int
    values: list[Any]
    nbytes: int = 0

    def to_pylist(self) -> list[Any]:
        return self.values


@dataclass
class RecordBatch:
    schema: Schema
    num_rows: int
    columns: list[Array]

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.columns)


class MonthDayNano(NamedTuple):
    """An Arrow month_day_nano interval (pyarrow returns one of the same shape), a value
    type that pyarrow's to_pylist() returns and Python lacks."""

    months: int
    days: int
    nanoseconds: int


# ---------------------------------------------------------------- fixed-width values

# The kinds whose values are one little-endian number each, and their struct formats by
# bit width (unsigned ints: the upper-case format).
FIXED_WIDTH_KINDS = ("int", "float", "date", "time", "timestamp", "duration")
_INT_FORMATS = {8: "b", 16: "h", 32: "i", 64: "q"}
_FLOAT_FORMATS = {16: "e", 32: "f", 64: "d"}


def fixed_format(data_type: DataType) -> str:
    """The struct format of one value of a FIXED_WIDTH_KINDS type."""
    kind = data_type.kind
    bits = data_type.param("bits", 64 if kind in ("timestamp", "duration") else 32)
    if kind == "date":
        bits = 32 if data_type.param("unit") == "day" else 64
    if kind == "float":
        return _FLOAT_FORMATS[bits]
    fmt = _INT_FORMATS[bits]
    return fmt.upper() if kind == "int" and not data_type.param("signed") else fmt


# Temporal values count units from the Unix epoch (times of day: from midnight).
EPOCH = datetime.datetime(1970, 1, 1)
EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}  # microseconds per unit
