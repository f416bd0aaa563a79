"""The cost of the first Python function of a session (the workers' version is learned then)
against the next ones, and against a session whose workers' version is declared.

    build/venv-web/bin/python bench/bench_udf.py                    # CPython, the workers' minor
    build/venv-web-3.13/bin/python bench/bench_udf.py               # CPython 3.13: portable path
    node --experimental-wasm-stack-switching --require ./tests/browser/block_net.cjs \\
        bench/pyodide_node.mjs bench/bench_udf.py                   # Pyodide 314 in Node

Needs the stack (./build.sh up). Each round opens new sessions; prints medians.
"""

import statistics
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql.functions import udf

import pyspark_web.udf as portable

URL = "http://127.0.0.1:8081"
ROUNDS = 5


def plus_one(x):
    return x + 1


def timed_query(spark):
    began = time.perf_counter()
    rows = spark.range(8).select(udf(plus_one, "long")("id").alias("v")).collect()
    assert [r.v for r in rows] == list(range(1, 9))
    return time.perf_counter() - began


def session(declare=None):
    spark = SparkSession.builder.remote(URL).create()
    if declare:
        portable.set_worker_python(spark, declare)
    return spark


def main():
    warm = session()
    timed_query(warm)  # the server's Python worker daemon starts once
    workers = portable.worker_python(warm)
    warm.stop()
    first, second, declared = [], [], []
    for _ in range(ROUNDS):
        spark = session()
        first.append(timed_query(spark))
        second.append(timed_query(spark))
        spark.stop()
        spark = session(declare=workers)
        declared.append(timed_query(spark))
        spark.stop()
    client = "%d.%d" % sys.version_info[:2]
    path = "cloudpickle (same minor)" if client == workers else "source (portable)"
    print(
        f"client Python {client} ({sys.platform}), workers {workers}, {path}, median of {ROUNDS}:"
    )
    print(
        f"  first UDF query of a session (probe + query): {statistics.median(first) * 1000:.0f} ms"
    )
    print(
        f"  second UDF query:                             {statistics.median(second) * 1000:.0f} ms"
    )
    print(
        "  first UDF query, version declared (no probe): "
        f"{statistics.median(declared) * 1000:.0f} ms"
    )


main()
