"""Load through Envoy, bounded and on loopback: 16 CPython clients at once, each a session
of 100 mixed queries (tests/load_client.py: small SQL, aggregates, createDataFrame, 5,000-row
collects), every result checked. pyspark-web over grpc-web; the side-by-side numbers with
the native client come from `./build.sh bench load` (BENCHMARKS.md). Four Chromium pages
at once: tests/browser/test_load_pages.py.
"""

import statistics

import pytest
from helpers import ROOT, ensure_venv
from load_client import percentile, run_clients

pytestmark = pytest.mark.usefixtures("stack")
CLIENTS, QUERIES = 16, 100


@pytest.fixture(scope="module")
def web(wheel):
    return ensure_venv(
        "venv-web", [f"{wheel}[pandas]"], ROOT / "tests/requirements-native.txt", reinstall=[wheel]
    )


def test_sixteen_sessions_of_mixed_queries_get_every_result_right(web, tmp_path):
    outcomes, wall = run_clients(web, "http://127.0.0.1:8081", CLIENTS, QUERIES, tmp_path)
    failures = [failure for outcome in outcomes for failure in outcome["failures"]]
    assert failures == [], failures[:3]
    latencies = [s for outcome in outcomes for s in outcome["latencies"]]
    assert len(latencies) == CLIENTS * QUERIES
    print(
        f"{CLIENTS} x {QUERIES}: wall {wall:.0f} s, p50 {statistics.median(latencies):.2f} s, "
        f"p99 {percentile(latencies, 99):.2f} s, 0 errors"
    )
