"""Spark SQL types <-> Arrow types, as upstream's ``to_arrow_type`` and
``from_arrow_type`` (pyspark/sql/pandas/types.py) map them with pyarrow: the same types,
field names, nullability and field metadata, and the same refusals
(tests/unit/test_arrow_spark.py checks every Spark type against upstream's mapping)."""

import json
from typing import Any

from pyspark.errors import PySparkTypeError
from pyspark.sql import types as T

from pyspark_web.arrow.types import DataType, Field, Schema

# Where a Spark field's metadata travels in its Arrow field's (upstream's metadata_key).
METADATA_KEY = "SPARK::metadata::json"

_SIMPLE = {
    T.BooleanType: DataType("bool"),
    T.ByteType: DataType("int", (("bits", 8), ("signed", True))),
    T.ShortType: DataType("int", (("bits", 16), ("signed", True))),
    T.IntegerType: DataType("int", (("bits", 32), ("signed", True))),
    T.LongType: DataType("int", (("bits", 64), ("signed", True))),
    T.FloatType: DataType("float", (("bits", 32),)),
    T.DoubleType: DataType("float", (("bits", 64),)),
    T.DateType: DataType("date", (("unit", "day"),)),
    T.TimestampNTZType: DataType("timestamp", (("unit", "us"), ("tz", None))),
    T.DayTimeIntervalType: DataType("duration", (("unit", "us"),)),
    T.NullType: DataType("null"),
}
# TIME (4.1) and the spatial types (4.1) are absent from the 4.0 line's pyspark.sql.types;
# the same module serves every release line, so it maps only the types the line has.
if hasattr(T, "TimeType"):
    _SIMPLE[T.TimeType] = DataType("time", (("unit", "ns"), ("bits", 64)))
_SPATIAL = {
    tag: getattr(T, name)
    for tag, name in (("geometry", "GeometryType"), ("geography", "GeographyType"))
    if hasattr(T, name)
}


def to_arrow_type(
    dt: T.DataType, timezone: str | None = None, prefers_large_types: bool = False
) -> DataType:
    for spark_type, arrow_type in _SIMPLE.items():
        if isinstance(dt, spark_type):
            return arrow_type
    if isinstance(dt, T.DecimalType):
        return DataType(
            "decimal", (("precision", dt.precision), ("scale", dt.scale), ("bits", 128))
        )
    if isinstance(dt, T.StringType):
        return DataType("large_utf8" if prefers_large_types else "utf8")
    if isinstance(dt, T.BinaryType):
        return DataType("large_binary" if prefers_large_types else "binary")
    if isinstance(dt, T.TimestampType):
        return DataType("timestamp", (("unit", "us"), ("tz", timezone)))
    if isinstance(dt, T.ArrayType):
        element = Field(
            "element", to_arrow_type(dt.elementType, timezone, prefers_large_types), dt.containsNull
        )
        return DataType("list", (), (element,))
    if isinstance(dt, T.MapType):
        key = Field("key", to_arrow_type(dt.keyType, timezone, prefers_large_types), False)
        value = Field(
            "value",
            to_arrow_type(dt.valueType, timezone, prefers_large_types),
            dt.valueContainsNull,
        )
        return DataType(
            "map",
            (("keys_sorted", False),),
            (Field("entries", DataType("struct", (), (key, value)), False),),
        )
    if isinstance(dt, T.StructType):
        return DataType(
            "struct", (), tuple(to_arrow_field(f, timezone, prefers_large_types) for f in dt.fields)
        )
    if isinstance(dt, T.UserDefinedType):
        return to_arrow_type(dt.sqlType(), timezone, prefers_large_types)
    if isinstance(dt, T.VariantType):
        return DataType(
            "struct",
            (),
            (
                Field("value", DataType("binary"), False),
                Field("metadata", DataType("binary"), False, (("variant", "true"),)),
            ),
        )
    for tag, spatial in _SPATIAL.items():
        if isinstance(dt, spatial):
            return DataType(
                "struct",
                (),
                (
                    Field("srid", _SIMPLE[T.IntegerType], False),
                    Field(
                        "wkb", DataType("binary"), False, ((tag, "true"), ("srid", str(dt.srid)))
                    ),
                ),
            )
    raise PySparkTypeError(
        errorClass="UNSUPPORTED_DATA_TYPE_FOR_ARROW_CONVERSION",
        messageParameters={"data_type": str(dt)},
    )


def to_arrow_field(
    field: T.StructField, timezone: str | None = None, prefers_large_types: bool = False
) -> Field:
    metadata = _to_arrow_metadata(field.metadata)
    return Field(
        field.name,
        to_arrow_type(field.dataType, timezone, prefers_large_types),
        field.nullable,
        metadata,
    )


def _to_arrow_metadata(metadata: dict[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return ((METADATA_KEY, json.dumps(metadata)),) if metadata else ()


def _from_arrow_metadata(metadata: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    value = dict(metadata).get(METADATA_KEY)
    return None if value is None else json.loads(value)


def to_arrow_schema(
    schema: T.StructType, timezone: str | None = None, prefers_large_types: bool = False
) -> Schema:
    return Schema([to_arrow_field(f, timezone, prefers_large_types) for f in schema.fields])


def from_arrow_type(at: DataType, prefer_timestamp_ntz: bool = True) -> T.DataType:
    kind, p = at.kind, at.param
    if kind == "bool":
        return T.BooleanType()
    if kind == "int" and p("signed"):
        return {8: T.ByteType(), 16: T.ShortType(), 32: T.IntegerType(), 64: T.LongType()}[
            p("bits")
        ]
    if kind == "float" and p("bits") in (32, 64):
        return T.FloatType() if p("bits") == 32 else T.DoubleType()
    if kind == "decimal":
        return T.DecimalType(p("precision"), p("scale"))
    if kind in ("utf8", "large_utf8"):
        return T.StringType()
    if kind in ("binary", "large_binary", "fixed_binary"):
        return T.BinaryType()
    if kind == "date" and p("unit") == "day":
        return T.DateType()
    if kind == "time" and p("bits") == 64 and hasattr(T, "TimeType"):
        return T.TimeType()
    if kind == "timestamp":
        return (
            T.TimestampNTZType() if p("tz") is None and prefer_timestamp_ntz else T.TimestampType()
        )
    if kind == "duration":
        return T.DayTimeIntervalType()
    if kind == "null":
        return T.NullType()
    if kind in ("list", "large_list", "fixed_list"):
        element = at.children[0]
        return T.ArrayType(from_arrow_type(element.type, prefer_timestamp_ntz), element.nullable)
    if kind == "map":
        key, value = at.children[0].type.children
        return T.MapType(
            from_arrow_type(key.type, prefer_timestamp_ntz),
            from_arrow_type(value.type, prefer_timestamp_ntz),
            value.nullable,
        )
    if kind == "struct":
        if _tagged(at, "metadata", "variant", "value"):
            return T.VariantType()
        for tag, spatial in _SPATIAL.items():
            if _tagged(at, "wkb", tag, "srid"):
                wkb = next(c for c in at.children if c.name == "wkb")
                srid = int(dict(wkb.metadata).get("srid"))  # type: ignore[arg-type]
                return spatial("ANY") if srid == spatial.MIXED_SRID else spatial(srid)
        return T.StructType([_from_arrow_field(c, prefer_timestamp_ntz) for c in at.children])
    raise PySparkTypeError(
        errorClass="UNSUPPORTED_DATA_TYPE_FOR_ARROW_CONVERSION",
        messageParameters={"data_type": str(at)},
    )


def _tagged(at: DataType, name: str, tag: str, other: str) -> bool:
    """A struct with a field ``name`` whose metadata has tag=true, and a field ``other``
    (how upstream's is_variant, is_geometry and is_geography tell these structs)."""
    names = [c.name for c in at.children]
    return other in names and any(
        c.name == name and dict(c.metadata).get(tag) == "true" for c in at.children
    )


def _from_arrow_field(f: Field, prefer_timestamp_ntz: bool) -> T.StructField:
    return T.StructField(
        f.name,
        from_arrow_type(f.type, prefer_timestamp_ntz),
        f.nullable,
        _from_arrow_metadata(f.metadata),
    )


def from_arrow_schema(schema: Schema, prefer_timestamp_ntz: bool = True) -> T.StructType:
    return T.StructType([_from_arrow_field(f, prefer_timestamp_ntz) for f in schema.fields])
