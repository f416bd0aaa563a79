"""The differential query suite: every case runs unchanged on the native client and on
pyspark-web, against the same server, and the recorded results must be identical.

A case takes a SparkSession and returns what to compare: a DataFrame (its schema, rows
and ``show()`` text are recorded), any other value, or nothing (what it printed is
recorded). An exception is recorded by class, error condition, SQL state and parameters.
Cases run in order in one session, so later cases may use views earlier ones made.
Plain PySpark only: this file must run on the stock client.
"""

import datetime
import decimal

from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DecimalType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from pyspark.sql.window import Window

CASES = []


def case(function):
    CASES.append(function)
    return function


# ---------------------------------------------------------------- SQL


@case
def sql_literals(spark):
    return spark.sql("SELECT 1 AS i, 'a' AS s, 2.5D AS d, true AS b, NULL AS n")


@case
def sql_arithmetic_and_functions(spark):
    return spark.sql(
        "SELECT 7 DIV 2 AS q, 7 % 3 AS m, pow(2, 10) AS p, round(3.14159, 2) AS r, abs(-4) AS a"
    )


@case
def sql_strings(spark):
    return spark.sql(
        "SELECT upper('spark') AS u, concat_ws('-', 'a', 'b') AS c, "
        "substring('héllo wörld', 2, 5) AS s, "
        "length('日本語') AS l, regexp_replace('a1b22c', '[0-9]+', '#') AS r"
    )


@case
def sql_case_when(spark):
    return spark.sql(
        "SELECT id, CASE WHEN id % 3 = 0 THEN 'fizz' WHEN id % 5 = 0 THEN 'buzz' "
        "ELSE string(id) END AS v "
        "FROM range(1, 16)"
    )


@case
def sql_named_parameters(spark):
    return spark.sql("SELECT :x + 1 AS y, :name AS n", args={"x": 41, "name": "spark"})


@case
def sql_cte_and_subquery(spark):
    return spark.sql(
        "WITH t AS (SELECT id, id * id AS sq FROM range(10)) "
        "SELECT id, sq FROM t WHERE sq > (SELECT avg(sq) FROM t) ORDER BY id"
    )


# ---------------------------------------------------------------- transformations


@case
def range_filter_select(spark):
    return spark.range(100).filter(F.col("id") % 7 == 0).select((F.col("id") * 2).alias("twice"))


@case
def with_column_and_rename(spark):
    df = spark.range(5).withColumn("sq", F.col("id") * F.col("id")).withColumnRenamed("id", "n")
    return df.withColumn("label", F.concat(F.lit("n="), F.col("n").cast("string")))


@case
def drop_and_select_expr(spark):
    return spark.range(4).selectExpr("id", "id + 1 AS next", "id * 10 AS big").drop("big")


@case
def distinct_and_order(spark):
    return (
        spark.createDataFrame([(3,), (1,), (3,), (None,), (2,)], "v int")
        .distinct()
        .orderBy(F.col("v").desc_nulls_last())
    )


@case
def drop_duplicates_subset(spark):
    df = spark.createDataFrame([(1, "a"), (1, "b"), (2, "c")], "k int, v string")
    return df.dropDuplicates(["k"]).select("k").orderBy("k")


@case
def union_by_name_and_limit(spark):
    a = spark.createDataFrame([(1, "x")], "a int, b string")
    b = spark.createDataFrame([("y", 2)], "b string, a int")
    return a.unionByName(b).orderBy("a").limit(5)


@case
def explode_and_posexplode(spark):
    df = spark.createDataFrame([(1, [10, 20]), (2, [])], "k int, xs array<int>")
    return df.select("k", F.posexplode_outer("xs")).orderBy("k", "pos")


@case
def string_column_functions(spark):
    df = spark.createDataFrame([("  Alice ",), ("bob",), (None,)], "name string")
    return df.select(
        F.trim("name").alias("t"),
        F.initcap("name").alias("i"),
        F.coalesce("name", F.lit("?")).alias("c"),
    )


# ---------------------------------------------------------------- joins


def _people(spark):
    return spark.createDataFrame(
        [(1, "ann", 10), (2, "bo", 20), (3, "cy", None)], "id int, name string, dept int"
    )


def _depts(spark):
    return spark.createDataFrame([(10, "eng"), (30, "ops")], "dept int, title string")


@case
def join_inner(spark):
    return _people(spark).join(_depts(spark), "dept").orderBy("id")


@case
def join_left_outer(spark):
    return _people(spark).join(_depts(spark), "dept", "left").orderBy("id")


@case
def join_full_outer(spark):
    return _people(spark).join(_depts(spark), "dept", "full").orderBy("dept", "id")


@case
def join_semi_anti_cross(spark):
    people, depts = _people(spark), _depts(spark)
    semi = people.join(depts, "dept", "left_semi").select("name")
    anti = people.join(depts, "dept", "left_anti").select("name")
    cross = people.select("name").crossJoin(depts.select("title"))
    return (
        semi.union(anti).union(cross.select(F.concat("name", F.lit("/"), "title"))).orderBy("name")
    )


# ---------------------------------------------------------------- aggregations


def _sales(spark):
    return spark.createDataFrame(
        [
            ("north", "a", 10, 1.5),
            ("north", "b", 5, 2.0),
            ("south", "a", 7, None),
            ("south", "a", 3, 4.25),
        ],
        "region string, product string, qty int, price double",
    )


@case
def group_by_agg(spark):
    return (
        _sales(spark)
        .groupBy("region")
        .agg(
            F.sum("qty").alias("qty"),
            F.avg("price").alias("avg_price"),
            F.count("*").alias("n"),
            F.sort_array(F.collect_list("product")).alias("products"),
        )
        .orderBy("region")
    )


@case
def pivot(spark):
    return (
        _sales(spark)
        .groupBy("region")
        .pivot("product", ["a", "b"])
        .agg(F.sum("qty"))
        .orderBy("region")
    )


@case
def rollup(spark):
    return (
        _sales(spark)
        .rollup("region", "product")
        .agg(F.sum("qty").alias("q"))
        .orderBy("region", "product")
    )


@case
def cube_with_grouping(spark):
    return (
        _sales(spark)
        .cube("region")
        .agg(F.grouping("region").alias("g"), F.max("qty").alias("m"))
        .orderBy("g", "region")
    )


@case
def global_aggregates(spark):
    return spark.range(1, 101).agg(
        F.sum("id").alias("s"),
        F.min("id"),
        F.max("id"),
        F.stddev("id").alias("sd"),
        F.count_distinct(F.col("id") % 7).alias("d"),
    )


# ---------------------------------------------------------------- window functions


@case
def window_rank(spark):
    w = Window.partitionBy("region").orderBy(F.col("qty").desc())
    return (
        _sales(spark)
        .select("region", "qty", F.row_number().over(w).alias("rn"), F.rank().over(w).alias("rk"))
        .orderBy("region", "rn")
    )


@case
def window_lag_lead(spark):
    w = Window.orderBy("id")
    return spark.range(6).select(
        "id", F.lag("id", 1).over(w).alias("prev"), F.lead("id", 2, -1).over(w).alias("next2")
    )


@case
def window_running_sum(spark):
    w = (
        Window.partitionBy(F.col("id") % 2)
        .orderBy("id")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return spark.range(8).select("id", F.sum("id").over(w).alias("running")).orderBy("id")


# ---------------------------------------------------------------- data types


@case
def type_integers(spark):
    return spark.sql(
        "SELECT CAST(-128 AS TINYINT) AS t, CAST(32767 AS SMALLINT) AS s, 2147483647 AS i, "
        "-9223372036854775808L AS l"
    )


@case
def type_floating(spark):
    return spark.sql(
        "SELECT CAST(1.5 AS FLOAT) AS f, 1e308D AS big, CAST('NaN' AS DOUBLE) AS nan, "
        "CAST('-Infinity' AS DOUBLE) AS ninf, -0.0D AS negzero"
    )


@case
def type_decimal(spark):
    return spark.sql(
        "SELECT CAST(-12345.678 AS DECIMAL(10, 3)) AS d1, "
        "CAST('-12345678901234567890.123456789012345678' AS DECIMAL(38, 18)) AS d2, "
        "CAST(0 AS DECIMAL(38, 0)) AS d3, 99999999999999999999999999999999999999BD AS d4"
    )


@case
def type_string_and_binary(spark):
    return spark.sql(
        "SELECT 'Grüße, 世界 🙂' AS s, X'00FF10' AS b, "
        "CAST('' AS BINARY) AS e, encode('ab', 'UTF-8') AS u"
    )


@case
def type_boolean_and_null(spark):
    return spark.sql("SELECT true AS t, false AS f, CAST(NULL AS BOOLEAN) AS n, NULL AS v")


@case
def type_date(spark):
    return spark.sql(
        "SELECT DATE'2024-02-29' AS leap, DATE'0001-01-01' AS first, DATE'9999-12-31' AS last"
    )


def _timestamps(spark, zone):
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        return spark.sql(
            "SELECT TIMESTAMP'2024-03-10 02:30:00' AS ts, "
            "TIMESTAMP_NTZ'2024-03-10 02:30:00' AS ntz, "
            "TIMESTAMP'1969-12-31 23:59:59.999999' AS before_epoch, "
            "to_utc_timestamp(TIMESTAMP'2024-06-01 12:00:00', 'Asia/Kolkata') AS converted"
        ).collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


@case
def type_timestamp_utc(spark):
    return _timestamps(spark, "UTC")


@case
def type_timestamp_los_angeles(spark):
    return _timestamps(spark, "America/Los_Angeles")


@case
def type_timestamp_kolkata(spark):
    return _timestamps(spark, "Asia/Kolkata")


@case
def type_intervals(spark):
    return spark.sql(
        "SELECT INTERVAL '1 02:03:04.5' DAY TO SECOND AS dt, INTERVAL '-3' HOUR AS h, "
        "INTERVAL '2-3' YEAR TO MONTH AS ym"
    )


@case
def type_arrays(spark):
    return spark.sql(
        "SELECT array(1, 2, NULL) AS a, array(array('x'), array()) AS aa, array() AS e"
    )


@case
def type_maps(spark):
    return spark.sql("SELECT map('a', 1, 'b', NULL) AS m, map(1, array(true)) AS mi, map() AS e")


@case
def type_structs_nested(spark):
    return spark.sql(
        "SELECT named_struct('x', 1, 'y', named_struct('z', array(map('k', 'v')))) AS s, "
        "array(named_struct('a', 1), named_struct('a', 2)) AS arr"
    )


@case
def type_nulls_everywhere(spark):
    return spark.sql(
        "SELECT CAST(NULL AS INT) i, CAST(NULL AS STRING) s, CAST(NULL AS DECIMAL(5,2)) d, "
        "CAST(NULL AS DATE) dt, CAST(NULL AS TIMESTAMP) ts, CAST(NULL AS ARRAY<INT>) a, "
        "CAST(NULL AS MAP<STRING,INT>) m, CAST(NULL AS STRUCT<a: INT>) st, CAST(NULL AS BINARY) b"
    )


@case
def type_variant(spark):
    return spark.sql(
        'SELECT parse_json(\'{"a": 1, "b": [true, null, 2.5], "c": "text"}\') AS v, '
        "parse_json('42') AS n"
    ).collect()


# ---------------------------------------------------------------- createDataFrame


@case
def create_from_tuples_inferred(spark):
    return spark.createDataFrame([(1, "a", 1.5), (2, "b", None)])


@case
def create_from_tuples_ddl(spark):
    return spark.createDataFrame([(1, "a"), (2, None)], "id long, tag string")


@case
def create_from_dicts(spark):
    return spark.createDataFrame([{"b": 2, "a": "x"}, {"b": 3, "a": "y"}])


@case
def create_from_rows(spark):
    return spark.createDataFrame([Row(name="ann", age=31), Row(name="bo", age=None)])


@case
def create_with_struct_type(spark):
    schema = StructType(
        [
            StructField("id", IntegerType(), False),
            StructField("amount", DecimalType(12, 2)),
            StructField("tags", ArrayType(StringType())),
            StructField("attrs", MapType(StringType(), LongType())),
            StructField("at", TimestampType()),
        ]
    )
    rows = [
        (
            1,
            decimal.Decimal("-10.25"),
            ["a", None],
            {"k": 1},
            datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        ),
        (2, None, [], {}, None),
    ]
    return spark.createDataFrame(rows, schema)


@case
def create_from_atomic_values(spark):
    return spark.createDataFrame([1, 2, None], IntegerType())


@case
def create_nested_inferred(spark):
    return spark.createDataFrame(
        [(1, [1, 2], {"k": "v"}, Row(x=1.0, y=[True])), (2, [], {}, Row(x=None, y=[]))],
        ["id", "xs", "m", "st"],
    )


@case
def create_dates_and_bytes(spark):
    return spark.createDataFrame(
        [(datetime.date(2020, 2, 29), bytearray(b"\x00\x01"), decimal.Decimal("1.50"))],
        ["d", "b", "dec"],
    )


@case
def create_empty_with_schema(spark):
    return spark.createDataFrame([], "a int, b string")


# ---------------------------------------------------------------- actions and metadata


@case
def schema_json(spark):
    return _sales(spark).withColumn("tags", F.array(F.lit("x"))).schema.json()


@case
def print_schema(spark):
    spark.sql(
        "SELECT named_struct('a', 1, 'b', array(map('k', 2.5D))) AS s, 'x' AS t"
    ).printSchema()


@case
def explain_plan(spark):
    spark.range(10).filter("id > 5").select((F.col("id") + 1).alias("x")).explain()


@case
def show_default(spark):
    spark.range(25).withColumn("s", F.repeat(F.lit("ab"), F.col("id").cast("int"))).show()


@case
def show_truncate_vertical(spark):
    df = spark.sql("SELECT 'a long string value that is longer than twenty chars' AS s, 1 AS i")
    df.show(truncate=False)
    df.show(truncate=10)
    df.show(vertical=True)


@case
def count_take_first(spark):
    df = spark.range(1000).filter("id % 3 = 0")
    return [df.count(), df.take(3), df.first(), df.head(2), df.orderBy(F.col("id").desc()).first()]


@case
def describe_and_summary(spark):
    return _sales(spark).describe("qty", "price")


@case
def columns_dtypes(spark):
    df = _sales(spark)
    return [df.columns, df.dtypes, df.isEmpty(), spark.range(0).isEmpty()]


@case
def collect_large(spark):
    rows = (
        spark.range(200_000)
        .select("id", (F.col("id") % 13).alias("m"), F.lit("x").alias("s"))
        .collect()
    )
    return [len(rows), rows[0], rows[-1], sum(r.m for r in rows)]


# ---------------------------------------------------------------- statistics


def _stat_frame(spark):
    return spark.createDataFrame(
        [(1, 2.0, "a"), (2, 4.5, "b"), (3, 5.0, "a"), (4, 9.0, "c"), (5, 10.5, "a")],
        "k INT, v DOUBLE, s STRING",
    )


@case
def stat_approx_quantile(spark):
    # One column gives a list, several a list of lists: both read a list-typed Arrow value.
    df = _stat_frame(spark)
    return [
        df.approxQuantile("v", [0.0, 0.5, 1.0], 0.0),
        df.approxQuantile(["k", "v"], [0.25, 0.75], 0.0),
        df.stat.approxQuantile("k", [0.5], 0.1),
    ]


@case
def stat_corr_cov_crosstab_freq_items(spark):
    df = _stat_frame(spark)
    return [
        df.corr("k", "v"),
        df.cov("k", "v"),
        sorted(df.crosstab("s", "k").collect()),
        df.freqItems(["s"], 0.5).collect(),
    ]


@case
def stat_describe_and_summary(spark):
    df = _stat_frame(spark)
    return [df.describe().collect(), df.summary("count", "min", "50%", "max").collect()]


# ---------------------------------------------------------------- catalog, views, config


@case
def temp_view_roundtrip(spark):
    _people(spark).createOrReplaceTempView("people")
    return spark.sql("SELECT name FROM people WHERE dept IS NOT NULL ORDER BY name")


@case
def global_temp_view(spark):
    _depts(spark).createOrReplaceGlobalTempView("depts_global")
    return spark.sql("SELECT title FROM global_temp.depts_global ORDER BY title")


@case
def catalog_databases_and_current(spark):
    return [spark.catalog.currentDatabase(), sorted(d.name for d in spark.catalog.listDatabases())]


@case
def catalog_tables_and_exists(spark):
    tables = sorted(
        (t.name, t.isTemporary) for t in spark.catalog.listTables() if t.name == "people"
    )
    return [tables, spark.catalog.tableExists("people"), spark.catalog.tableExists("no_such_thing")]


@case
def catalog_functions_and_columns(spark):
    functions = {f.name for f in spark.catalog.listFunctions()}
    columns = [(c.name, c.dataType, c.nullable) for c in spark.catalog.listColumns("people")]
    return [sorted(functions & {"abs", "concat", "sum", "variant_get"}), columns]


@case
def config_set_get(spark):
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    value = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.unset("spark.sql.shuffle.partitions")
    return [
        value,
        spark.conf.get("spark.sql.ansi.enabled"),
        spark.conf.get("spark.pyspark-web.missing", "fallback"),
        spark.conf.isModifiable("spark.sql.shuffle.partitions"),
    ]


# ---------------------------------------------------------------- errors


@case
def error_parse(spark):
    return spark.sql("SELEC 1")


@case
def error_missing_table(spark):
    return spark.table("no_such_table_for_sure")


@case
def error_divide_by_zero_ansi(spark):
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        return spark.sql("SELECT 1 / 0 AS x").collect()
    finally:
        spark.conf.unset("spark.sql.ansi.enabled")


@case
def error_invalid_cast_ansi(spark):
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        return spark.sql("SELECT CAST('twelve' AS INT) AS x").collect()
    finally:
        spark.conf.unset("spark.sql.ansi.enabled")


@case
def error_unresolved_column(spark):
    return spark.range(3).select("no_such_column")


@case
def error_raised_at_runtime(spark):
    return (
        spark.range(5)
        .select(
            F.when(F.col("id") == 3, F.raise_error(F.lit("custom failure"))).otherwise(F.col("id"))
        )
        .collect()
    )


@case
def error_in_the_middle_of_a_stream(spark):
    # Ten partitions; the last one fails after the others' batches were sent.
    return (
        spark.range(0, 100, 1, 10)
        .select(
            F.when(F.col("id") == 95, F.raise_error(F.lit("late failure")))
            .otherwise(F.col("id"))
            .alias("v")
        )
        .collect()
    )
