"""pyspark_web.arrow.spark against upstream's own mapping with pyarrow
(pyspark/sql/pandas/types.py: to_arrow_type, to_arrow_schema, from_arrow_type,
from_arrow_schema), for every Spark type in spark_types.py.

Spark -> Arrow: the Arrow type our mapping makes, written to a stream by our writer and
read back by pyarrow, is the one upstream's mapping makes: the same type, field names,
nullability and field metadata. Arrow -> Spark: a stream pyarrow writes, read by our
reader, maps to the Spark type upstream maps pyarrow's schema to. Where upstream refuses a
type, ours refuses it with the same error class.

Runs inside build/venv-native (which has pyarrow), started by
tests/unit/test_arrow_spark.py.
"""

import pyarrow as pa
import pytest
from pyspark.errors import PySparkTypeError
from pyspark.sql import types as T
from pyspark.sql.pandas import types as upstream
from spark_types import SCHEMAS, SUPPORTED, UNSUPPORTED

import pyspark_web.arrow as arrow
from pyspark_web.arrow import spark

TIMEZONES = ["UTC", "America/Los_Angeles"]


def described(data_type):
    """A pyarrow type as nested plain values: its name, and each child field's name,
    nullability, metadata and type (pyarrow's == leaves some of these out)."""
    children = [data_type.field(i) for i in range(data_type.num_fields)]
    return (
        str(data_type),
        [(f.name, f.nullable, dict(f.metadata or {}), described(f.type)) for f in children],
    )


def described_schema(schema):
    return [(f.name, f.nullable, dict(f.metadata or {}), described(f.type)) for f in schema], dict(
        schema.metadata or {}
    )


def through_our_writer(our_schema):
    """pyarrow's schema of a stream our writer wrote (one empty batch)."""
    data = arrow.write_stream(our_schema, [([[] for _ in our_schema.fields], 0)])
    return pa.ipc.open_stream(data).read_all().schema


def through_our_reader(pa_schema):
    """Our schema of a stream pyarrow wrote (one empty batch)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa_schema) as writer:
        writer.write_table(pa_schema.empty_table())
    schema, _ = arrow.read_stream(sink.getvalue().to_pybytes())
    return schema


def outcome(function, *args, **kwargs):
    """The result, or the error class of the PySparkTypeError raised."""
    try:
        return "ok", function(*args, **kwargs)
    except PySparkTypeError as error:
        return "refused", error.getCondition()


@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
@pytest.mark.parametrize("timezone", TIMEZONES)
@pytest.mark.parametrize("name, spark_type", SUPPORTED, ids=[name for name, _ in SUPPORTED])
def check_spark_to_arrow(name, spark_type, timezone, large):
    theirs = upstream.to_arrow_type(spark_type, timezone=timezone, prefers_large_types=large)
    ours = spark.to_arrow_type(spark_type, timezone, large)
    read = through_our_writer(arrow.Schema([arrow.Field("c", ours)])).field("c").type
    assert described(read) == described(theirs)
    assert read.equals(theirs, check_metadata=True)


@pytest.mark.parametrize("name, spark_type", UNSUPPORTED, ids=[name for name, _ in UNSUPPORTED])
def check_spark_types_both_refuse(name, spark_type):
    theirs = outcome(upstream.to_arrow_type, spark_type, timezone="UTC")
    assert theirs == ("refused", "UNSUPPORTED_DATA_TYPE_FOR_ARROW_CONVERSION")
    assert outcome(spark.to_arrow_type, spark_type, "UTC") == theirs


@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
@pytest.mark.parametrize("name, schema", SCHEMAS, ids=[name for name, _ in SCHEMAS])
def check_spark_schema_to_arrow(name, schema, large):
    theirs = upstream.to_arrow_schema(schema, timezone="UTC", prefers_large_types=large)
    read = through_our_writer(spark.to_arrow_schema(schema, "UTC", large))
    assert described_schema(read) == described_schema(theirs)
    assert read.equals(theirs, check_metadata=True)


# ---------------------------------------------------------------- Arrow -> Spark

# Arrow types Spark does not send but a stream may hold: the mappings must agree on them
# too (upstream refuses unsigned ints, half floats, date64, time32 and intervals).
ARROW_ONLY = [
    pa.uint8(),
    pa.uint16(),
    pa.uint32(),
    pa.uint64(),
    pa.float16(),
    pa.date64(),
    pa.time32("s"),
    pa.time32("ms"),
    pa.time64("us"),
    pa.timestamp("s"),
    pa.timestamp("ns", tz="Asia/Tokyo"),
    pa.duration("s"),
    pa.duration("ns"),
    pa.large_list(pa.int32()),
    pa.list_(pa.int64(), 3),
    pa.binary(4),
    pa.large_string(),
    pa.large_binary(),
    pa.month_day_nano_interval(),
    pa.decimal256(40, 2),
    pa.map_(pa.int8(), pa.float16()),
    pa.struct(
        [
            pa.field("metadata", pa.binary(), metadata={b"variant": b"true"}),
            pa.field("value", pa.binary()),
        ]
    ),
    pa.struct(
        [
            pa.field("value", pa.binary()),
            pa.field("metadata", pa.binary(), metadata={b"variant": b"false"}),
        ]
    ),
    pa.struct(
        [
            pa.field("value", pa.binary()),
            pa.field("extra", pa.int8()),
            pa.field("metadata", pa.binary(), metadata={b"variant": b"true"}),
        ]
    ),
    pa.struct(
        [
            pa.field("srid", pa.int32()),
            pa.field("wkb", pa.binary(), metadata={b"geometry": b"true", b"srid": b"3857"}),
        ]
    ),
    pa.struct(
        [
            pa.field(
                "c",
                pa.int32(),
                metadata={b"SPARK::metadata::json": b'{"k": [1, 2]}', b"other": b"x"},
            )
        ]
    ),
]


def arrow_cases():
    cases = []
    for name, spark_type in SUPPORTED:
        cases.append((name, upstream.to_arrow_type(spark_type, timezone="UTC")))
    for name, spark_type in SUPPORTED[:20]:
        cases.append(
            (
                f"{name}, large",
                upstream.to_arrow_type(
                    spark_type, timezone="Europe/Paris", prefers_large_types=True
                ),
            )
        )
    cases += [(str(t), t) for t in ARROW_ONLY]
    return cases


ARROW_CASES = arrow_cases()


@pytest.mark.parametrize("prefer_ntz", [True, False], ids=["ntz", "ltz"])
@pytest.mark.parametrize("name, pa_type", ARROW_CASES, ids=[name for name, _ in ARROW_CASES])
def check_arrow_to_spark(name, pa_type, prefer_ntz):
    pa_schema = pa.schema(
        [
            pa.field("c", pa_type, metadata={b"SPARK::metadata::json": b'{"top": true}'}),
            pa.field("d", pa_type, nullable=pa.types.is_null(pa_type)),
        ]
    )  # null: always nullable
    theirs = outcome(upstream.from_arrow_schema, pa_schema, prefer_timestamp_ntz=prefer_ntz)
    ours = outcome(spark.from_arrow_schema, through_our_reader(pa_schema), prefer_ntz)
    assert ours == theirs
    if theirs[0] == "ok":
        assert repr(ours[1]) == repr(theirs[1]) and ours[1].jsonValue() == theirs[1].jsonValue()


@pytest.mark.parametrize("name, schema", SCHEMAS, ids=[name for name, _ in SCHEMAS])
def check_spark_schema_round_trips_through_both(name, schema):
    # to Arrow with our mapping, through our writer and reader, and back with ours:
    # the Spark schema upstream gets back from its own round trip.
    theirs = upstream.from_arrow_schema(upstream.to_arrow_schema(schema, timezone="UTC"))
    arrow_schema, _ = arrow.read_stream(
        arrow.write_stream(spark.to_arrow_schema(schema, "UTC"), [])
    )
    ours = spark.from_arrow_schema(arrow_schema, True)
    assert ours == theirs and ours.jsonValue() == theirs.jsonValue()
    assert isinstance(ours, T.StructType)
