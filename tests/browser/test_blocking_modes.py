"""How Pyodide blocks on HTTP for the synchronous PySpark API, mode by mode.

- page main thread, entered with runPythonAsync (JSPI): test_spark.py and here;
- a dedicated Web Worker with JSPI: here (Chromium; pytest-pyodide has no Node workers);
- Node 20 with --experimental-wasm-stack-switching: test_spark.py and here (node runtime);
- no blocking mode (main thread or Node entered synchronously): a clear error at connect
  time, never a hang.
Workers without JSPI (synchronous XHR, and the cross-origin-isolated streaming worker)
are in test_workers.py.
"""

import pytest
from pytest_pyodide import run_in_pyodide

pytestmark = pytest.mark.usefixtures("stack")
URL = "http://127.0.0.1:8081"


@run_in_pyodide(packages=["pyspark-web"])
def query_and_mode(selenium, url):
    from pyspark.sql import SparkSession

    from pyspark_web.transport import blocking_mode

    spark = SparkSession.builder.remote(url).getOrCreate()
    rows = spark.range(0, 50000, 1, 4).selectExpr("sum(id) AS s").collect()
    ids = [r.id for r in spark.range(70000).collect()]
    spark.stop()
    return blocking_mode(), rows[0].s, len(ids), ids[-1]


def test_page_main_thread_with_jspi(selenium_jspi):
    assert list(query_and_mode(selenium_jspi, URL)) == ["jspi", sum(range(50000)), 70000, 69999]


def test_dedicated_worker_with_jspi(selenium_jspi_worker):
    assert list(query_and_mode(selenium_jspi_worker, URL)) == [
        "jspi",
        sum(range(50000)),
        70000,
        69999,
    ]


SYNC_CONNECT = """
let message = "connected";
try {
    pyodide.runPython(`
from pyspark.sql import SparkSession
SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
`);
} catch (e) { message = String(e); }
return message;
"""


def test_no_blocking_mode_is_a_clear_error_at_connect_time(selenium):
    selenium.load_package("pyspark-web")
    message = selenium.run_js(SYNC_CONNECT)
    assert "cannot make a blocking HTTP request" in message, message
    if selenium.browser == "node":
        assert "--experimental-wasm-stack-switching" in message and "runPythonAsync" in message
    else:
        assert "runPythonAsync" in message and "Web Worker" in message
