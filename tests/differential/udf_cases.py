"""Python functions on the cluster: the cases of the differential suite that send Python
code to the server's workers (UDFs, UDTFs, data sources, pandas and Arrow functions,
foreachPartition).

runner.py executes this file as ``__main__``, as a notebook or a script would be, so its
functions travel by value (cloudpickle's rule for ``__main__``, and pyspark-web's). The
same file runs on clients whose Python differs from the workers' (3.13, Pyodide's 3.14),
where pyspark-web sends the functions as source. Cases named ``pandas_*`` need pandas and
pyarrow on the client.
"""

import math
from collections.abc import Iterator

from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.datasource import DataSource, DataSourceReader
from pyspark.sql.functions import udf, udtf
from pyspark.sql.types import (
    ArrayType,
    IntegerType,
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


# Module-level state that the functions below use: data by value, modules by name, other
# functions recursively.
RATES = {"EUR": 1.0, "USD": 0.5, "JPY": 0.01}
PREFIX = "id-"


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def label(value):
    return PREFIX + str(value)


@udf(returnType=StringType())
def shout(text):
    """Upper-cases and exclaims."""
    return None if text is None else text.upper() + "!"


def make_scaler(factor, offset=0):
    def scale(x):
        return x * factor + offset

    return udf(scale, LongType())


def retry_twice(function):
    """A user's decorator: the UDF is the wrapper, the wrapped function a closure cell."""
    import functools

    @functools.wraps(function)
    def wrapper(*args):
        return function(*args) + 1000

    return wrapper


@udf("long")
@retry_twice
def decorated_twice(x):
    return x * 3


def _words(spark):
    return spark.createDataFrame([(1, "spark"), (2, "pyodide"), (3, None)], "id long, word string")


# ---------------------------------------------------------------- udf


@case
def udf_lambda(spark):
    return spark.range(5).select(udf(lambda x: x * 2 + 1, "long")("id").alias("v"))


@case
def udf_two_lambdas_on_one_line(spark):
    plus, times = udf(lambda x: x + 1, "long"), udf(lambda x: x * 100, "long")
    return spark.range(3).select(plus("id").alias("plus"), times("id").alias("times"))


@case
def udf_nested_lambdas(spark):
    return spark.range(4).select(udf(lambda x: (lambda y: y * y)(x) + 1, "long")("id").alias("v"))


@case
def udf_def_and_decorator(spark):
    return _words(spark).select("id", shout("word").alias("loud"))


@case
def udf_user_decorator(spark):
    return spark.range(3).select(decorated_twice("id").alias("v"))


@case
def udf_closure(spark):
    return spark.range(4).select(make_scaler(10, offset=7)("id").alias("v"))


@case
def udf_closure_over_local_state(spark):
    seen = {"threshold": 2}
    names = ["zero", "one", "two", "three"]

    @udf("string")
    def describe(x):
        return names[x] + (" (big)" if x >= seen["threshold"] else "")

    return spark.range(4).select(describe("id").alias("d"))


@case
def udf_module_globals_and_helpers(spark):
    @udf("string")
    def convert(currency, amount):
        rate = RATES.get(currency, math.nan)
        return label(round(amount * rate, 2)) + "/" + str(fibonacci(int(amount) % 10))

    df = spark.createDataFrame(
        [("EUR", 10.0), ("USD", 7.0), ("JPY", 1234.0)], "cur string, amount double"
    )
    return df.select("cur", convert("cur", "amount").alias("converted"))


@case
def udf_defaults_and_keyword_only(spark):
    def combine(x, step=5, *, sign=-1):
        return sign * x + step

    return spark.range(3).select(udf(combine, "long")("id").alias("v"))


@case
def udf_returns_struct_array_map(spark):
    schema = StructType(
        [
            StructField("n", LongType()),
            StructField("digits", ArrayType(IntegerType())),
            StructField("parity", MapType(StringType(), StringType())),
        ]
    )

    @udf(schema)
    def explode_number(x):
        return Row(
            n=x, digits=[int(d) for d in str(x * 37)], parity={"p": "even" if x % 2 == 0 else "odd"}
        )

    return spark.range(4).select(explode_number("id").alias("s")).select("s.*")


@case
def udf_nulls_and_types(spark):
    df = spark.createDataFrame([(1, 2.5, True), (None, None, None)], "i int, d double, b boolean")
    to_text = udf(lambda i, d, b: f"{i}|{d}|{b}", "string")
    return df.select(to_text("i", "d", "b").alias("t"))


@case
def udf_use_arrow_true(spark):
    return spark.range(4).select(udf(lambda x: x * 3, "long", useArrow=True)("id").alias("v"))


@case
def udf_use_arrow_false(spark):
    return spark.range(4).select(udf(lambda x: x * 3, "long", useArrow=False)("id").alias("v"))


@case
def udf_use_arrow_default_type_coercion(spark):
    # Arrow-optimized (the default since 4.2) and pickled UDFs coerce differently: the
    # same answers as the stock client mean the same eval type was chosen.
    as_string = udf(lambda x: x, "string")
    return spark.range(2).select(as_string(F.col("id") + 0.5).alias("s"))


@case
def udf_exception_in_user_code(spark):
    def checked(x):
        if x == 2:
            raise ValueError(f"refusing {x}")
        return x

    return spark.range(4).select(udf(checked, "long")("id")).collect()


@case
def udf_register_then_sql(spark):
    spark.udf.register("web_plus_one", lambda x: x + 1, "long")
    spark.udf.register("web_shout", shout)
    return spark.sql("SELECT web_plus_one(id) AS p, web_shout(string(id)) AS s FROM range(3)")


@case
def udf_in_filter_and_group_by(spark):
    bucket = udf(lambda x: "even" if x % 2 == 0 else "odd", "string")
    return (
        spark.range(10)
        .where(udf(lambda x: x > 2, "boolean")("id"))
        .groupBy(bucket("id").alias("b"))
        .count()
        .orderBy("b")
    )


# ---------------------------------------------------------------- udtf


@udtf(returnType="n: int, square: int")
class Squares:
    def eval(self, start: int, end: int):
        for n in range(start, end + 1):
            yield n, n * n

    def terminate(self):
        yield -1, -1


class WordSplitter:
    def __init__(self):
        self.count = 0

    def eval(self, text: str):
        for word in text.split():
            self.count += 1
            yield word, len(word), label(self.count)


@case
def udtf_class_with_eval_and_terminate(spark):
    return Squares(F.lit(1), F.lit(3))


@case
def udtf_registered_then_sql(spark):
    spark.udtf.register(
        "web_split", udtf(WordSplitter, returnType="word string, length int, tag string")
    )
    return spark.sql("SELECT * FROM web_split('spark in the browser')")


@case
def udtf_lateral_join(spark):
    spark.udtf.register("web_squares", Squares)
    spark.createDataFrame([(1, 2), (3, 3)], "a int, b int").createOrReplaceTempView("web_bounds")
    return spark.sql(
        "SELECT a, b, n, square FROM web_bounds, LATERAL web_squares(a, b) ORDER BY a, n"
    )


# ---------------------------------------------------------------- Python data sources


class CountingReader(DataSourceReader):
    def __init__(self, options):
        self.n = int(options.get("n", 3))

    def read(self, partition):
        for i in range(self.n):
            yield i, label(i)


class CountingSource(DataSource):
    @classmethod
    def name(cls):
        return "web_counting"

    def schema(self):
        return "i int, tag string"

    def reader(self, schema):
        return CountingReader(self.options)


@case
def data_source_registered_then_read(spark):
    spark.dataSource.register(CountingSource)
    return spark.read.format("web_counting").option("n", 4).load()


# ---------------------------------------------------------------- pandas and Arrow functions


@case
def pandas_udf_series(spark):
    from pyspark.sql.functions import pandas_udf

    as_double = pandas_udf("double")  # checks the client's packages first
    import pandas as pd

    @as_double
    def times_one_and_a_half(s: pd.Series) -> pd.Series:
        return s * 1.5

    return spark.range(4).select(times_one_and_a_half("id").alias("v"))


@case
def pandas_apply_in_pandas(spark):
    df = spark.createDataFrame([(1, 1.0), (1, 2.0), (2, 3.0), (2, 5.0)], ("id", "v"))

    def center(pdf):
        return pdf.assign(v=pdf.v - pdf.v.mean())

    return df.groupby("id").applyInPandas(center, schema="id long, v double").orderBy("id", "v")


@case
def pandas_map_in_pandas(spark):
    def evens(batches):
        for pdf in batches:
            yield pdf[pdf.id % 2 == 0]

    return spark.range(10).mapInPandas(evens, schema="id long").orderBy("id")


@case
def pandas_map_in_arrow(spark):
    def doubled(batches):
        import pyarrow.compute as pc

        for batch in batches:
            yield batch.set_column(0, "id", pc.multiply(batch.column(0), 2))

    return spark.range(5).mapInArrow(doubled, schema="id long").orderBy("id")


# ---------------------------------------------------------------- foreach


@case
def foreach_partition_sees_every_row(spark):
    def check(rows: Iterator[Row]):
        ids = [row.id for row in rows]
        if any(not isinstance(i, int) or i < 0 or i >= 20 for i in ids):
            raise ValueError(f"unexpected ids {ids}")

    return spark.range(0, 20, 1, 4).foreachPartition(check)


@case
def foreach_partition_error_reaches_the_client(spark):
    def fail_on_seven(rows):
        for row in rows:
            if row.id == 7:
                raise RuntimeError("row seven is not welcome")

    try:
        spark.range(0, 10, 1, 2).foreachPartition(fail_on_seven)
    except Exception as error:
        return type(error).__name__, "row seven is not welcome" in str(error)
    return "no error"


@case
def foreach_row(spark):
    def check(row):
        if row.word is not None and not row.word.islower():
            raise ValueError(row.word)

    return _words(spark).foreach(check)
