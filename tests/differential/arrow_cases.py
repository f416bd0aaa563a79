"""Every client API that moves data through Arrow, case by case, for
tests/differential/test_arrow_paths.py: the stock client reads and writes these batches
with pyarrow, pyspark-web without pyarrow with its own reader and writer
(pyspark_web/arrow/), and the results must be identical.

The sweep of issue 17: the stat functions, describe/summary, toLocalIterator, the
head/take/tail/first/isEmpty family, collect of nested, UDT and variant values, and
createDataFrame from every input shape. Plain PySpark only, as cases.py; it runs as
``__main__`` (runner.py), so its user-defined type lives in point_udt.py.
"""

import collections
import datetime
import decimal

from point_udt import Point, PointUDT
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

CASES = []


def case(function):
    CASES.append(function)
    return function


def _numbers(spark):
    return spark.createDataFrame(
        [(1, 2.0, "a", 0), (2, None, "b", 1), (3, 5.0, "a", 0), (None, 9.0, None, 1),
         (5, 10.5, "a", 1), (6, -1.25, "c", 0)],
        "k INT, v DOUBLE, s STRING, g INT",
    )  # fmt: skip


# ---------------------------------------------------------------- stat functions


@case
def stat_approx_quantile_shapes(spark):
    df = _numbers(spark)
    return [
        df.approxQuantile("v", [0.0, 0.25, 0.5, 0.75, 1.0], 0.0),
        df.approxQuantile(["k", "v"], [0.5], 0.25),
        df.limit(0).approxQuantile("v", [0.5], 0.0),
        df.stat.approxQuantile(("k",), [0.1, 0.9], 1.0),
    ]


@case
def stat_corr_and_cov_with_nulls(spark):
    df = _numbers(spark)
    return [
        df.corr("k", "v"),
        df.stat.corr("k", "g", "pearson"),
        df.cov("k", "v"),
        df.cov("g", "g"),
    ]


@case
def stat_crosstab(spark):
    return _numbers(spark).crosstab("s", "g").orderBy("s_g")


@case
def stat_freq_items(spark):
    df = spark.createDataFrame(
        [(1, "x", [1, 2]), (1, "y", [1, 2]), (2, "x", [3]), (1, "x", None)],
        "a INT, b STRING, c ARRAY<INT>",
    )
    rows = df.freqItems(["a", "b", "c"], 0.4).collect()
    # The items of each column come back in a hash order: compare them as sets.
    return [
        (name, sorted(map(repr, row[name])))
        for row in rows
        for name in ("a_freqItems", "b_freqItems", "c_freqItems")
    ]


@case
def stat_sample_by(spark):
    df = spark.range(0, 400).select((F.col("id") % 3).alias("key"), "id")
    sampled = df.sampleBy("key", fractions={0: 0.1, 1: 0.5}, seed=7)
    return [
        sampled.groupBy("key").count().orderBy("key").collect(),
        df.stat.sampleBy(F.col("key"), {2: 1.0}, seed=1).count(),
    ]


@case
def stat_describe_every_type(spark):
    df = _numbers(spark).withColumn("d", F.lit(decimal.Decimal("1.50")))
    return df.describe()


@case
def stat_summary_default_and_chosen(spark):
    df = _numbers(spark)
    return [df.summary().collect(), df.select("v").summary("count", "mean", "33%").collect()]


# ---------------------------------------------------------------- rows out


@case
def to_local_iterator(spark):
    df = spark.range(0, 3000, 1, 4).select("id", (F.col("id") * 0.5).alias("half"))
    rows = list(df.toLocalIterator())
    prefetched = list(df.toLocalIterator(prefetchPartitions=True))
    return [len(rows), rows[:3], rows[-1], rows == prefetched, list(df.limit(0).toLocalIterator())]


@case
def head_take_tail_first_is_empty(spark):
    df = _numbers(spark).orderBy("k")
    empty = df.filter("k > 100")
    return [
        df.head(),
        df.head(2),
        df.head(0),
        df.take(4),
        df.tail(2),
        df.tail(0),
        df.first(),
        df.isEmpty(),
        empty.head(),
        empty.first(),
        empty.take(1),
        empty.tail(3),
        empty.isEmpty(),
        df.limit(1).collect(),
    ]


@case
def collect_nested_values(spark):
    return spark.sql(
        "SELECT array(named_struct('m', map('a', 1, 'b', NULL), 'l', array(array(1), NULL))) "
        "AS deep, map(1, named_struct('x', array('p', NULL)), 2, NULL) AS by_key, "
        "named_struct('inner', named_struct('t', TIMESTAMP'2024-02-29 23:59:59.999999', "
        "'d', DATE'1900-01-01', 'b', X'00ff')) AS s, "
        "array(CAST(NULL AS STRUCT<a: INT>)) AS null_struct, "
        "map_from_arrays(array('k'), array(array(1.5D, NULL))) AS map_of_arrays"
    )


@case
def collect_variant_values(spark):
    return spark.sql(
        'SELECT parse_json(\'{"n": {"deep": [1, {"x": null}]}, "s": "t"}\') AS v, '
        "array(parse_json('1'), parse_json('\"two\"'), NULL) AS vs, "
        "named_struct('v', parse_json('[1.5, true]')) AS in_struct, "
        "map('k', parse_json('{}')) AS in_map, "
        "CAST(NULL AS VARIANT) AS nothing"
    ).collect()


@case
def collect_udt_values(spark):
    schema = StructType([StructField("name", StringType()), StructField("p", PointUDT())])
    df = spark.createDataFrame(
        [("a", Point(1.0, 2.0)), ("b", None), ("c", Point(-0.5, 3.25))], schema
    )
    return [
        df.schema.json(),
        df.collect(),
        df.select(F.unwrap_udt("p").alias("raw")).collect(),
        df.where("name = 'c'").first(),
    ]


@case
def collect_udt_nested(spark):
    schema = StructType(
        [
            StructField("ps", ArrayType(PointUDT())),
            StructField("by_name", MapType(StringType(), PointUDT())),
        ]
    )
    df = spark.createDataFrame([([Point(1.0, 1.0), None], {"o": Point(0.0, 0.0)})], schema)
    return df


# ---------------------------------------------------------------- createDataFrame


@case
def create_rows_with_schema(spark):
    return spark.createDataFrame([Row(a=1, b="x"), Row(a=None, b=None)], "a LONG, b STRING")


@case
def create_nested_rows_inferred(spark):
    return spark.createDataFrame(
        [Row(id=1, inner=Row(x=1.5, tags=["a"]), m={"k": 2}), Row(id=2, inner=None, m={})]
    )


@case
def create_dicts_with_schema(spark):
    schema = StructType(
        [
            StructField("name", StringType()),
            StructField("attrs", MapType(StringType(), LongType())),
            StructField("point", StructType([StructField("x", DoubleType())])),
        ]
    )
    return spark.createDataFrame(
        [{"name": "a", "attrs": {"k": 1}, "point": {"x": 1.5}}, {"name": "b"}], schema
    )


@case
def create_dicts_with_column_names(spark):
    return spark.createDataFrame([{"a": 1, "b": "x"}, {"a": 2, "b": None}], ["a", "b"])


@case
def create_tuples_with_column_names(spark):
    return spark.createDataFrame([(1, "x", 2.5), (2, None, None)], ["id", "tag", "score"])


@case
def create_lists_with_ddl(spark):
    return spark.createDataFrame([[1, [1, 2]], [2, None]], "id INT, xs ARRAY<INT>")


@case
def create_named_tuples(spark):
    Pair = collections.namedtuple("Pair", ["left", "right"])
    return spark.createDataFrame([Pair(1, "a"), Pair(2, "b")])


@case
def create_with_struct_type_every_leaf(spark):
    schema = (
        "b BOOLEAN, i8 TINYINT, i16 SMALLINT, i32 INT, i64 BIGINT, f FLOAT, d DOUBLE, "
        "dec DECIMAL(20, 4), s STRING, bin BINARY, day DATE, ts TIMESTAMP, ntz TIMESTAMP_NTZ, "
        "dt INTERVAL DAY TO SECOND, n VOID"
    )
    row = (
        True, -128, 32767, -(2**31), 2**63 - 1, 1.5, -2.25, decimal.Decimal("12345.6789"),
        "é", b"\x00\x01", datetime.date(1970, 1, 1),
        datetime.datetime(2000, 1, 1, 12, 0, tzinfo=datetime.timezone.utc),
        datetime.datetime(2000, 1, 1, 12, 0), datetime.timedelta(days=1, microseconds=5), None,
    )  # fmt: skip
    return spark.createDataFrame([row, tuple(None for _ in row)], schema)


@case
def create_binary_and_bytearray(spark):
    schema = StructType([StructField("b", BinaryType())])
    return spark.createDataFrame([(b"abc",), (bytearray(b"\xff"),), (None,)], schema)


@case
def create_many_rows_in_chunks(spark):
    # More rows than one Arrow batch of the client's local relation carries.
    df = spark.createDataFrame([(i, str(i) * (i % 7)) for i in range(20_000)], "i INT, s STRING")
    return [df.count(), df.agg(F.sum("i"), F.max(F.length("s"))).collect(), df.tail(1)]


@case
def create_empty_shapes(spark):
    return [
        spark.createDataFrame([], "a INT").collect(),
        spark.createDataFrame([], StructType([])).columns,
        spark.createDataFrame([Row()]).count(),
    ]
