"""The work of a session's first query and of each small query in Pyodide, guarded by count
rather than by time (times are benchmarks: bench/bench_browser.py, BENCHMARKS.md).

- The first query (import, session, collect) imports at most FIRST_QUERY_MODULE_BUDGET
  modules beyond what the test harness has imported, and none of NOT_AT_START.
- spark.sql(...).collect() makes five grpc-web requests, three of which Python waits for:
  two ExecutePlan (the SQL command, then the collect) and Config (upstream reads
  spark.sql.execution.pyspark.binaryAsBytes for every collect); the ReleaseExecute of each
  execution is sent without waiting (patches/0007). Counted in the page and, independently,
  by Envoy as it forwards them to Spark.
"""

import json
import time
import urllib.request

import pytest
from pytest_pyodide import run_in_pyodide

pytestmark = pytest.mark.usefixtures("stack")
URL = "http://127.0.0.1:8081"
# Requests Envoy forwarded to Spark Connect: CORS preflights, which Envoy answers itself,
# are not among them.
ENVOY_REQUESTS = "http://127.0.0.1:9901/stats?filter=^cluster.spark_connect.upstream_rq_total$"

# Measured after the lazy-import patches (0021-0024): 254 in Chromium and in Node (281
# before them). A change
# that imports more at start-up must raise this on purpose (and say why in its commit).
FIRST_QUERY_MODULE_BUDGET = 254
# Each was imported at start-up once, and a patch made it lazy.
NOT_AT_START = [
    "ctypes",  # 0021: pyspark.sql.types sized array type codes with it
    "zoneinfo",  # 0022: pyspark.sql.variant_utils
    "urllib.request",  # 0023: pyspark.sql.connect.client.artifact
    "pyspark.sql.streaming.stateful_processor_api_client",  # 0024
    # Never needed by the pure-Python client:
    "numpy",
    "pandas",
    "pyarrow",
    "grpc",
]


@run_in_pyodide(packages=["pyspark-web"])
def first_query(selenium, url):
    import sys

    before = set(sys.modules)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).getOrCreate()
    rows = spark.sql("SELECT 1 AS a").collect()
    imported = sorted(set(sys.modules) - before)
    spark.stop()
    return [row.a for row in rows], imported


def test_the_first_query_imports_only_what_it_needs(selenium_jspi):
    values, imported = first_query(selenium_jspi, URL)
    assert values == [1]
    print(f"first query in {selenium_jspi.browser}: {len(imported)} modules imported")
    assert [name for name in NOT_AT_START if name in imported] == []
    assert len(imported) <= FIRST_QUERY_MODULE_BUDGET, imported


@run_in_pyodide(packages=["pyspark-web"])
def count_requests(selenium, url, n):
    import collections

    from pyspark.sql import SparkSession

    from pyspark_web import channel, transport

    counts = collections.Counter()
    post, background = transport.Transport.post, channel.post_in_background

    def waited(self, target, *args, **kwargs):
        counts["waited", target.rsplit("/", 1)[1]] += 1
        return post(self, target, *args, **kwargs)

    def not_waited(target, *args, **kwargs):
        counts["background", target.rsplit("/", 1)[1]] += 1
        return background(target, *args, **kwargs)

    transport.Transport.post, channel.post_in_background = waited, not_waited
    try:
        spark = SparkSession.builder.remote(url).getOrCreate()
        spark.sql("SELECT 1").collect()
        total_before = sum(counts.values())
        counts.clear()
        for _ in range(n):
            assert spark.sql("SELECT 1").collect()[0][0] == 1
        per_collect = {f"{mode} {method}": count / n for (mode, method), count in counts.items()}
        return total_before + sum(counts.values()), per_collect
    finally:
        transport.Transport.post, channel.post_in_background = post, background


def envoy_requests():
    with urllib.request.urlopen(ENVOY_REQUESTS, timeout=5) as response:
        return int(response.read().decode().split(":")[1])


def test_a_small_query_waits_for_three_requests_and_releases_in_the_background(selenium_jspi):
    before = envoy_requests()
    sent, per_collect = count_requests(selenium_jspi, URL, 10)
    assert per_collect == {
        "waited ExecutePlan": 2,
        "waited Config": 1,
        "background ReleaseExecute": 2,
    }
    # Every request counted in the page reaches Spark, background ones included, and no
    # other does. Background releases may still be on their way when the page returns.
    deadline = time.monotonic() + 10
    while envoy_requests() - before < sent and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert envoy_requests() - before == sent, json.dumps(per_collect)
