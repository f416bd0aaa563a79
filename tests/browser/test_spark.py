"""Unchanged PySpark in Pyodide against the real stack: Spark Connect 4.3 behind Envoy,
reached over grpc-web from headless Chromium and from Node (JSPI: Python is entered with
runPythonAsync, and urllib3's emscripten backend makes fetch blocking).

The differential suite runs in the browser and is compared, case by case, with the stock
native client on CPython against the same server.
"""

import pytest
from helpers import DIFFERENTIAL, assert_same, case_names, stock_results
from in_pyodide import run_cases_in_pyodide
from pytest_pyodide import run_in_pyodide

pytestmark = pytest.mark.usefixtures("stack")
URL = "http://127.0.0.1:8081"
CASES = case_names()
ARROW_CASES = case_names("arrow_cases.py")


@run_in_pyodide(packages=["pyspark-web"])
def connect_and_query(selenium, url):
    import sys

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).getOrCreate()
    result = {
        "version": spark.version,
        "rows": [r.asDict() for r in spark.sql("SELECT 1 AS a, 'x' AS b").collect()],
        "count": spark.range(1000).count(),
        "loaded": sorted(m for m in ("numpy", "pandas", "pyarrow", "grpc") if m in sys.modules),
        "channel": type(spark.client._channel).__name__,
    }
    spark.stop()
    return result


@pytest.mark.parametrize(
    "url", [URL, "sc://127.0.0.1:8081/;transport=grpcweb", "sc://127.0.0.1/;transport=grpcweb"]
)
def test_connect_forms(selenium_jspi, url):
    result = connect_and_query(selenium_jspi, url)
    assert result["version"] == "4.3.0"
    assert result["rows"] == [{"a": 1, "b": "x"}]
    assert result["count"] == 1000
    assert result["loaded"] == []
    assert result["channel"] == "GrpcWebChannel"


@run_in_pyodide(packages=["pyspark-web"])
def first_contact(selenium, url):
    import time

    from pyspark.sql import SparkSession

    began = time.monotonic()
    try:
        SparkSession.builder.remote(url).getOrCreate().range(1).collect()
        return ["no error", 0.0, ""]
    except Exception as error:
        return [type(error).__name__, time.monotonic() - began, str(error)]


def test_a_first_contact_that_cannot_connect_fails_within_seconds(selenium_jspi):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kind, seconds, message = first_contact(selenium_jspi, f"http://127.0.0.1:{port}")
    assert kind == "ServerUnreachableError", message
    assert seconds < 10
    assert f"Cannot reach the Spark Connect server at http://127.0.0.1:{port}" in message
    assert "CORS policy allows this page's origin" in message


@run_in_pyodide(packages=["pyspark-web"])
def collect_range(selenium, url, n):
    import time

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).getOrCreate()
    began = time.perf_counter()
    rows = spark.range(n).collect()
    seconds = time.perf_counter() - began
    spark.stop()
    return [len(rows), rows[0].id, rows[-1].id, sum(r.id for r in rows), seconds]


@pytest.mark.driver_timeout(600)
def test_collect_one_million_rows(selenium_jspi):
    n = 1_000_000
    count, first, last, total, seconds = collect_range(selenium_jspi, URL, n)
    assert (count, first, last, total) == (n, 0, n - 1, n * (n - 1) // 2)
    print(f"range({n}).collect() in {selenium_jspi.browser}: {seconds:.1f} s")


@pytest.fixture(scope="module")
def native_utc(wheel, tmp_path_factory):
    return stock_results(tmp_path_factory.mktemp("native-utc") / "out.json", "UTC")


@pytest.fixture(scope="module")
def browser_results(selenium_jspi_module, native_utc):
    return run_cases_in_pyodide(selenium_jspi_module, URL)


@pytest.mark.parametrize("name", CASES)
def test_differential_in_pyodide(browser_results, native_utc, name):
    assert_same(name, native_utc, browser_results, "pyspark-web in Pyodide")


@pytest.fixture(scope="module")
def native_arrow_utc(wheel, tmp_path_factory):
    output = tmp_path_factory.mktemp("native-arrow-utc") / "out.json"
    return stock_results(output, "UTC", DIFFERENTIAL / "arrow_cases.py")


@pytest.fixture(scope="module")
def browser_arrow_results(selenium_jspi_module, native_arrow_utc):
    return run_cases_in_pyodide(
        selenium_jspi_module, URL, "arrow_cases.py", modules=["point_udt.py"]
    )


@pytest.mark.parametrize("name", ARROW_CASES)
def test_arrow_paths_in_pyodide(browser_arrow_results, native_arrow_utc, name):
    """tests/differential/arrow_cases.py: every API that moves data through Arrow."""
    assert_same(name, native_arrow_utc, browser_arrow_results, "pyspark-web in Pyodide")


@run_in_pyodide(packages=["pyspark-web"])
def slow_collect(selenium, url):
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.remote(url).getOrCreate()
    stub = spark.client._stub
    calls = {"ReattachExecute": 0}
    original = stub.ReattachExecute

    def counting(*args, **kwargs):
        calls["ReattachExecute"] += 1
        return original(*args, **kwargs)

    stub.ReattachExecute = counting
    # 96 single-row partitions of 0.25 s each: results trickle out for about 12 s.
    df = spark.range(0, 96, 1, 96).select(
        "id", F.expr("java_method('java.lang.Thread', 'sleep', CAST(250 AS BIGINT))").alias("slept")
    )
    ids = [r.id for r in df.collect()]
    spark.stop()
    return ids, calls["ReattachExecute"]


@pytest.mark.driver_timeout(300)
def test_reattach_after_envoy_restart_mid_stream(selenium_jspi):
    import threading

    from helpers import restart_envoy

    timer = threading.Timer(7.0, restart_envoy)  # after the session is up and rows flow
    timer.start()
    try:
        ids, reattaches = slow_collect(selenium_jspi, URL)
    finally:
        timer.join()
    assert ids == list(range(96))
    assert reattaches >= 1, "the stream was not cut: the restart came too late"
