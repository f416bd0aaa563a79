"""pyspark_web.arrow.spark: Spark SQL types <-> our Arrow types.

Against upstream's mapping with pyarrow (every Spark type in pyarrow_checks/spark_types.py,
both directions, through our writer and reader): pyarrow_checks/check_arrow_spark.py, run
in build/venv-native, which has pyarrow. Here, without pyarrow: what the mapping makes
survives our own writer and reader, maps back to the Spark type it came from, and the
types upstream refuses are refused the same way.
"""

import json

import pytest
from pyarrow_checks.spark_types import SCHEMAS, SUPPORTED, UNSUPPORTED
from pyspark.errors import PySparkTypeError
from pyspark.sql import types as T
from test_arrow_ipc import CHECKS, run_pyarrow_checks

import pyspark_web.arrow as arrow
from pyspark_web.arrow import spark

pytestmark = pytest.mark.unit

IDS = [name for name, _ in SUPPORTED]


def test_the_mapping_is_upstreams_with_pyarrow(wheel):
    run_pyarrow_checks(wheel, str(CHECKS / "check_arrow_spark.py"))


def through_our_stream(data_type):
    """The Arrow type our writer writes and our reader reads back."""
    schema, batches = arrow.read_stream(
        arrow.write_stream(arrow.Schema([arrow.Field("c", data_type)]), [([[None]], 1)])
    )
    assert batches[0].columns[0].to_pylist() == [None]
    return schema.fields[0].type


@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
@pytest.mark.parametrize("name, spark_type", SUPPORTED, ids=IDS)
def test_the_arrow_type_survives_our_writer_and_reader(name, spark_type, large):
    ours = spark.to_arrow_type(spark_type, "UTC", large)
    assert through_our_stream(ours) == ours  # children, nullability and metadata included


def as_arrow_keeps_it(spark_type):
    """The Spark type that upstream's from_arrow_type(to_arrow_type(t)) gives: Arrow keeps
    no UDT, collation, time precision or interval fields."""
    if isinstance(spark_type, T.UserDefinedType):
        return as_arrow_keeps_it(spark_type.sqlType())
    if isinstance(spark_type, T.StringType):
        return T.StringType()
    if isinstance(spark_type, T.TimeType):
        return T.TimeType()
    if isinstance(spark_type, T.DayTimeIntervalType):
        return T.DayTimeIntervalType()
    if isinstance(spark_type, T.ArrayType):
        return T.ArrayType(as_arrow_keeps_it(spark_type.elementType), spark_type.containsNull)
    if isinstance(spark_type, T.MapType):
        return T.MapType(
            as_arrow_keeps_it(spark_type.keyType),
            as_arrow_keeps_it(spark_type.valueType),
            spark_type.valueContainsNull,
        )
    if isinstance(spark_type, T.StructType):
        return T.StructType(
            [
                T.StructField(f.name, as_arrow_keeps_it(f.dataType), f.nullable, f.metadata)
                for f in spark_type.fields
            ]
        )
    return spark_type


@pytest.mark.parametrize("prefer_ntz", [True, False], ids=["ntz", "ltz"])
@pytest.mark.parametrize("name, spark_type", SUPPORTED, ids=IDS)
def test_a_spark_type_maps_back_to_itself(name, spark_type, prefer_ntz):
    back = spark.from_arrow_type(
        through_our_stream(spark.to_arrow_type(spark_type, "UTC")), prefer_ntz
    )
    expected = as_arrow_keeps_it(spark_type)
    if not prefer_ntz and expected == T.TimestampNTZType():
        expected = T.TimestampType()  # a timestamp without a zone, read as local time
    assert back == expected and back.jsonValue() == expected.jsonValue()


@pytest.mark.parametrize("name, spark_type", UNSUPPORTED, ids=[name for name, _ in UNSUPPORTED])
def test_types_upstream_refuses_are_refused(name, spark_type):
    with pytest.raises(PySparkTypeError) as raised:
        spark.to_arrow_type(spark_type, "UTC")
    assert raised.value.getCondition() == "UNSUPPORTED_DATA_TYPE_FOR_ARROW_CONVERSION"


@pytest.mark.parametrize("name, schema", SCHEMAS, ids=[name for name, _ in SCHEMAS])
def test_a_schema_round_trips_with_its_field_metadata(name, schema):
    arrow_schema, _ = arrow.read_stream(
        arrow.write_stream(spark.to_arrow_schema(schema, "UTC"), [])
    )
    assert spark.from_arrow_schema(arrow_schema) == as_arrow_keeps_it(schema)


def test_field_metadata_travels_as_spark_json():
    # upstream's to_arrow_metadata: one key, the metadata as JSON; none when empty
    commented = spark.to_arrow_field(
        T.StructField("c", T.IntegerType(), True, {"comment": "x", "n": [1]})
    )
    assert commented.metadata == (
        ("SPARK::metadata::json", json.dumps({"comment": "x", "n": [1]})),
    )
    assert spark.to_arrow_field(T.StructField("c", T.IntegerType())).metadata == ()


@pytest.mark.parametrize(
    "arrow_type",
    [
        arrow.DataType("int", (("bits", 8), ("signed", False))),
        arrow.DataType("float", (("bits", 16),)),
        arrow.DataType("date", (("unit", "ms"),)),
        arrow.DataType("time", (("unit", "ms"), ("bits", 32))),
        arrow.DataType("interval", (("unit", "month_day_nano"),)),
    ],
    ids=str,
)
def test_arrow_types_upstream_refuses_are_refused(arrow_type):
    # pyarrow's from_arrow_type takes only signed ints, float32/64, date32 and time64.
    with pytest.raises(PySparkTypeError) as raised:
        spark.from_arrow_type(arrow_type)
    assert raised.value.getCondition() == "UNSUPPORTED_DATA_TYPE_FOR_ARROW_CONVERSION"
