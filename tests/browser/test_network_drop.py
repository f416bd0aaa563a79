"""The network drops in the middle of a run of queries in Chromium: DevTools takes the page
offline for 3 s. Every request made while offline fails in the browser (a network error),
and upstream's retry policy carries each call over the gap: all results arrive, right.

Chromium's offline emulation fails the requests that start while it is on; it does not cut
a response that is already streaming (seen: a 6 s result streamed through a 3 s drop
unharmed). A stream cut mid-way is tested with Envoy restarted (test_spark.py,
tests/differential/test_faults.py). Chromium only (marker chromium_only): DevTools network
emulation is a browser facility, Node has none.
"""

import json
import time

import pytest
from pages_server import wait_for

pytestmark = [pytest.mark.usefixtures("stack"), pytest.mark.chromium_only]

# 48 single-row partitions that each take 0.25 s on the server's two cores: about 6 s of
# results trickling out, so that the page can be taken offline while the stream is open.
QUERIES = """
import json
from pyspark.sql import SparkSession
from pyspark_web import transport

spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
assert spark.range(1).count() == 1
failed = []
post = transport.Transport.post
def counting(self, url, *args, **kwargs):
    try:
        return post(self, url, *args, **kwargs)
    except transport.TransportError as error:
        failed.append(str(error))
        raise
transport.Transport.post = counting
import js
js.window.queryStarted = True
sums = [spark.range(n, n + 1000).groupBy().sum("id").collect()[0][0] for n in range(40)]
json.dumps({"sums": sums, "failed": failed})
"""

START = """
window.queryStarted = false;
window.dropOutcome = null;
window.pysparkQuery = pyodide.runPythonAsync(%s).then(
    (out) => { window.dropOutcome = {ok: out}; },
    (error) => { window.dropOutcome = {error: String(error)}; });
"""


def offline(driver, yes):
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": yes, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def test_a_network_drop_mid_run_is_carried_over_by_retries(selenium_jspi):
    driver = selenium_jspi.driver
    selenium_jspi.load_package("pyspark-web")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_script(START % json.dumps(QUERIES))
    wait_for(driver, "return window.queryStarted", 120)
    time.sleep(0.3)  # queries are running
    offline(driver, True)
    try:
        time.sleep(3.0)
    finally:
        offline(driver, False)
    outcome = wait_for(driver, "return window.dropOutcome", 180)
    assert "error" not in outcome, outcome["error"][-3000:]
    result = json.loads(outcome["ok"])
    assert result["sums"] == [sum(range(n, n + 1000)) for n in range(40)]
    # The drop took effect: requests failed in the browser, and were retried.
    assert result["failed"], "no request failed: the page was not offline while it queried"
    assert all("HTTP request failed" in message for message in result["failed"]), result
