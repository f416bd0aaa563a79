"""Apache Spark's own doctests of the Connect client inside Pyodide (the third setting of
tests/doctests/test_upstream_doctests.py): tests/doctests/runner.py runs in the page, with
pyspark-web from the lockfile and nothing heavy, against the stack over grpc-web; the stock
client runs it natively against the same server. Every docstring that passes natively
passes here, except those that need the pandas extra, which fail as it says
(tests/upstream_doctests.py), and the few that cannot pass in a browser against a remote
server (PYODIDE_DIFFERENCES), which must fail for their documented reason."""

import json

import pytest
from helpers import ROOT, STOCK_CLIENT, ensure_venv
from pytest_pyodide.utils import set_webdriver_script_timeout
from upstream_doctests import (
    NATIVE,
    PANDAS_DOCSTRINGS,
    RUNNER,
    fails_as_without_pandas,
    failure_list,
    regressions,
    run_doctests,
)

# Chromium only: the suite takes minutes, and Node runs the same Pyodide and client (its
# differential and function suites run in both).
pytestmark = [pytest.mark.usefixtures("stack"), pytest.mark.chromium_only]
URL = "http://127.0.0.1:8081"

# The runner goes into Pyodide's file system once; each call then runs one slice of the
# docstrings, so that no call outlasts the WebDriver's 120 s request timeout.
LOAD = """
import sys, time
# Upstream's doctests assume the client's local time zone is the server's (UTC here).
assert time.timezone == 0 and not time.daylight, f"Pyodide's local zone is {{time.tzname}}"
with open("/tmp/doctest_runner.py", "w") as f:
    f.write({source})
sys.path.insert(0, "/tmp")
import doctest_runner
"""
RUN_PART = "import json, doctest_runner\njson.dumps(doctest_runner.run({url}, part=({i}, {n})))"
PARTS = 16


def merged(reports):
    """One report from the reports of the slices."""
    report = dict(reports[0], docstrings={}, cleanups={}, left_behind=[], seconds=0.0, modules={})
    for part in reports:
        report["docstrings"].update(part["docstrings"])
        report["cleanups"].update(part["cleanups"])
        report["left_behind"] += part["left_behind"]
        report["seconds"] += part["seconds"]
        for name, module in part["modules"].items():
            into = report["modules"].setdefault(name, {"docstrings": 0, "passed": 0})
            if "error" in module:
                into["error"] = module["error"]
            else:
                into["docstrings"] += module["docstrings"]
                into["passed"] += module["passed"]
    report["docstrings_total"] = len(report["docstrings"])
    report["passed_total"] = sum(r["passed"] for r in report["docstrings"].values())
    return report


# Docstrings that cannot pass in a browser against a remote server, each with why and what
# its failure must show (checked: a docstring listed here must fail this way, so the list
# cannot hide anything else). README, "Upstream's doctests".
PYODIDE_DIFFERENCES = {
    # sys.maxsize is 2**31 - 1 on wasm32: the examples print another number.
    "pyspark.sql.connect.functions.builtin.try_add": "(2147483647, 2147483647)",
    "pyspark.sql.connect.functions.builtin.try_multiply": "(2147483647, 2147483647)",
    "pyspark.sql.connect.functions.builtin.try_subtract": "(-2147483647, 2147483647)",
    # The example hands the server a path in the client's file system (its own module).
    "pyspark.sql.connect.functions.builtin.input_file_name": "[PATH_NOT_FOUND]",
    # The examples make a table over a temporary directory of the client, delete the
    # directory and expect the server to see it gone: only when both share a disk.
    "pyspark.sql.connect.catalog.Catalog.refreshByPath": '>>> spark.table("tbl1").count()',
    "pyspark.sql.connect.catalog.Catalog.refreshTable": '>>> spark.table("tbl1").count()',
    # A listener needs a thread; Pyodide refuses it with this error (patch 0025).
    "pyspark.sql.dataframe.DataFrame.observe": "[STREAMING_LISTENER_NEEDS_THREADS]",
}


@pytest.fixture(scope="module")
def stock():
    # Run next to the Pyodide run: other tests leave tables on the stack (the demo's
    # saveAsTable), which a docstring such as Catalog.listTables shows.
    python = ensure_venv("venv-stock", [STOCK_CLIENT], ROOT / "tests/requirements-native.txt")
    return run_doctests(python, NATIVE, "stock-for-pyodide")


@pytest.fixture(scope="module")
def pyodide_report(selenium_jspi_module, stock):
    selenium = selenium_jspi_module
    selenium.load_package("pyspark-web")
    selenium.run_async(LOAD.format(source=repr(RUNNER.read_text())))
    with set_webdriver_script_timeout(selenium, script_timeout=120):
        report = merged(
            [
                json.loads(selenium.run_async(RUN_PART.format(url=repr(URL), i=i, n=PARTS)))
                for i in range(PARTS)
            ]
        )
    print(
        f"\nPyodide ({selenium.browser}): {report['passed_total']}/"
        f"{report['docstrings_total']} docstrings passed in {report['seconds']} s"
    )
    return report


def test_what_passes_natively_passes_in_pyodide(stock, pyodide_report):
    report = pyodide_report
    assert report["platform"] == "emscripten" and report["heavy_packages"] == []
    for name, module in report["modules"].items():
        assert "error" not in module, f"{name} did not run in Pyodide:\n{module['error']}"
    assert report["left_behind"] == [], "the run left objects on the server"
    regressed = regressions(stock, report, PANDAS_DOCSTRINGS | set(PYODIDE_DIFFERENCES))
    assert not regressed, (
        f"{len(regressed)} docstrings pass with the stock client but not in Pyodide:\n\n"
        + failure_list(regressed, report)
    )


def test_in_pyodide_the_pandas_docstrings_fail_naming_the_extra(pyodide_report):
    wrong = [
        name
        for name in PANDAS_DOCSTRINGS
        if pyodide_report["docstrings"][name]["passed"]
        or not fails_as_without_pandas(name, pyodide_report["docstrings"][name]["first_failure"])
    ]
    assert not wrong, failure_list(wrong, pyodide_report)


def test_the_platform_differences_fail_as_documented(stock, pyodide_report):
    """Each docstring of PYODIDE_DIFFERENCES passes natively and fails in Pyodide for the
    documented reason only."""
    wrong = [
        name
        for name, sign in PYODIDE_DIFFERENCES.items()
        if not stock["docstrings"][name]["passed"]
        or pyodide_report["docstrings"][name]["passed"]
        or sign not in pyodide_report["docstrings"][name]["first_failure"]
    ]
    assert not wrong, failure_list(wrong, pyodide_report)
