"""The Spark types that pyspark_web.arrow.spark maps, for tests/unit/test_arrow_spark.py
(no pyarrow) and check_arrow_spark.py here (against pyarrow and upstream's mapping).

Every type upstream's ``to_arrow_type`` (pyspark/sql/pandas/types.py) handles, in the
shapes that change its result (nullability, parameters, nesting, field metadata), and
the types it refuses."""

from pyspark.sql import types as T


class PointUDT(T.UserDefinedType):
    """A user-defined type: Arrow sees its sqlType."""

    @classmethod
    def sqlType(cls):
        return T.ArrayType(T.DoubleType(), False)

    @classmethod
    def module(cls):
        return "spark_types"

    def serialize(self, obj):
        return list(obj)

    def deserialize(self, datum):
        return tuple(datum)


def _struct(*fields):
    return T.StructType(list(fields))


INT, STRING = T.IntegerType(), T.StringType()
COMMENTED = {"comment": "a column's comment", "nested": {"n": 1}}

# (name, Spark type): each maps to an Arrow type, upstream's and ours the same.
SUPPORTED = [
    ("boolean", T.BooleanType()),
    ("byte", T.ByteType()),
    ("short", T.ShortType()),
    ("int", INT),
    ("long", T.LongType()),
    ("float", T.FloatType()),
    ("double", T.DoubleType()),
    ("decimal(10,0)", T.DecimalType(10, 0)),
    ("decimal(5,2)", T.DecimalType(5, 2)),
    ("decimal(38,18)", T.DecimalType(38, 18)),
    ("string", STRING),
    ("string collate UTF8_LCASE", T.StringType("UTF8_LCASE")),
    ("binary", T.BinaryType()),
    ("date", T.DateType()),
    ("timestamp", T.TimestampType()),
    ("timestamp_ntz", T.TimestampNTZType()),
    ("interval day to second", T.DayTimeIntervalType()),
    (
        "interval hour",
        T.DayTimeIntervalType(T.DayTimeIntervalType.HOUR, T.DayTimeIntervalType.HOUR),
    ),
    ("time", T.TimeType()),
    ("time(3)", T.TimeType(3)),
    ("void", T.NullType()),
    ("array<int>", T.ArrayType(INT)),
    ("array<int not null>", T.ArrayType(INT, False)),
    ("array<array<string>>", T.ArrayType(T.ArrayType(STRING))),
    ("array<timestamp>", T.ArrayType(T.TimestampType())),
    ("map<string,int>", T.MapType(STRING, INT)),
    ("map<string,int not null>", T.MapType(STRING, INT, False)),
    ("map<int,array<binary>>", T.MapType(INT, T.ArrayType(T.BinaryType()))),
    ("map<struct,string>", T.MapType(_struct(T.StructField("k", INT)), STRING)),
    ("struct<>", _struct()),
    ("struct<a,b not null>", _struct(T.StructField("a", INT), T.StructField("b", STRING, False))),
    ("struct<commented>", _struct(T.StructField("c", INT, True, COMMENTED))),
    (
        "struct<struct<array<map>>>",
        _struct(
            T.StructField(
                "s",
                _struct(
                    T.StructField("l", T.ArrayType(T.MapType(STRING, T.DecimalType(12, 3))), False)
                ),
            )
        ),
    ),
    ("struct<duplicate names>", _struct(T.StructField("x", INT), T.StructField("x", STRING))),
    ("udt", PointUDT()),
    ("array<udt>", T.ArrayType(PointUDT())),
    ("variant", T.VariantType()),
    ("array<variant>", T.ArrayType(T.VariantType())),
    ("geometry(4326)", T.GeometryType(4326)),
    ("geometry(any)", T.GeometryType("ANY")),
    ("geography(4326)", T.GeographyType(4326)),
    ("geography(any)", T.GeographyType("ANY")),
    ("struct<geometry>", _struct(T.StructField("g", T.GeometryType(0)))),
]

# Spark types that neither mapping takes (UNSUPPORTED_DATA_TYPE_FOR_ARROW_CONVERSION).
UNSUPPORTED = [
    ("interval year to month", T.YearMonthIntervalType()),
    ("calendar interval", T.CalendarIntervalType()),
    ("char(3)", T.CharType(3)),
    ("varchar(3)", T.VarcharType(3)),
    ("array<interval year>", T.ArrayType(T.YearMonthIntervalType())),
]

# Schemas: top-level fields, with and without metadata (upstream keeps it as
# SPARK::metadata::json).
SCHEMAS = [
    ("plain", _struct(T.StructField("a", INT), T.StructField("b", STRING, False))),
    (
        "commented",
        _struct(T.StructField("a", INT, True, COMMENTED), T.StructField("t", T.TimestampType())),
    ),
    ("empty", _struct()),
]
