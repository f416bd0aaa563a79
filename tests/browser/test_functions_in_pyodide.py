"""Python functions on the cluster from Pyodide (Python 3.14) in headless Chromium and in
Node, against workers on CPython 3.11: every function travels as source.

- udf_cases.py runs inside Pyodide and is compared case by case with the stock native client
  on CPython 3.11. pandas and pyarrow cannot be installed offline in Pyodide, so there the
  pandas and Arrow cases must fail with PACKAGE_NOT_INSTALLED
  (tests/differential/test_python_functions.py runs them on CPython 3.13 with pandas).
- A page that runs its code with runPythonAsync(code, {filename}) gets UDFs that work; without
  a filename Python keeps no source, and the error says what to do.
- The documented pandas route asks the Pyodide distribution for the packages, which the
  network block refuses here.
"""

import json

import pytest
from helpers import UDF_CASES, assert_same, case_names, stock_results
from in_pyodide import run_cases_in_pyodide
from pytest_pyodide import run_in_pyodide

pytestmark = pytest.mark.usefixtures("stack")
URL = "http://127.0.0.1:8081"
CASES = case_names(UDF_CASES.name)
PANDAS_CASES = [name for name in CASES if name.startswith("pandas_")]


@pytest.fixture(scope="module")
def native_udf_utc(stack, tmp_path_factory):
    return stock_results(tmp_path_factory.mktemp("udf-native-utc") / "out.json", "UTC", UDF_CASES)


@pytest.fixture(scope="module")
def pyodide_udf_results(selenium_jspi_module, native_udf_utc):
    return run_cases_in_pyodide(selenium_jspi_module, URL, UDF_CASES.name)


@pytest.mark.parametrize("name", CASES)
def test_udf_in_pyodide(pyodide_udf_results, native_udf_utc, name):
    result = pyodide_udf_results[name]
    assert "PYTHON_VERSION_MISMATCH" not in json.dumps(result)
    if name in PANDAS_CASES:
        assert (result.get("error"), result.get("condition")) == (
            "PySparkImportError",
            "PACKAGE_NOT_INSTALLED",
        ), result
        return
    assert_same(name, native_udf_utc, pyodide_udf_results, "pyspark-web in Pyodide")


PAGE_CODE = """
import json
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf

spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
OFFSET = 100

@udf("long")
def shifted(x):
    return x + OFFSET

rows = spark.range(3).select(shifted("id").alias("v"), \
udf(lambda x: -x, "long")("id").alias("n")).collect()
json.dumps([[r.v, r.n] for r in rows])
"""

RUN_PAGE_CODE = """
await pyodide.loadPackage("pyspark-web");
try {
    return ["ok", await pyodide.runPythonAsync(%s, %s)];
} catch (error) {
    return ["error", String(error)];
}
"""


# In the module's runtime: one browser less to start (and a page keeps its Pyodide anyway).
def test_page_code_with_a_filename_runs_udfs(selenium_jspi_module):
    outcome, value = selenium_jspi_module.run_js(
        RUN_PAGE_CODE % (json.dumps(PAGE_CODE), '{filename: "main.py"}')
    )
    assert outcome == "ok", value
    assert json.loads(value) == [[100, 0], [101, -1], [102, -2]]


def test_page_code_without_a_filename_says_what_to_do(selenium_jspi_module):
    outcome, message = selenium_jspi_module.run_js(RUN_PAGE_CODE % (json.dumps(PAGE_CODE), "{}"))
    assert outcome == "error"
    assert "PYTHON_VERSION_MISMATCH" not in message
    assert (
        "FunctionNotPortable: Cannot send the Python function 'shifted' (<exec>, line 9)" in message
    )
    assert "the Spark workers run Python 3.11, this client runs Python 3.14" in message
    assert "pyodide.runPythonAsync(code, {filename: 'main.py'})" in message


@run_in_pyodide(packages=["pyspark-web", "micropip"])
async def pandas_route(selenium):

    from pyspark.errors import PySparkImportError
    from pyspark.sql.functions import pandas_udf

    try:
        pandas_udf("double")
    except PySparkImportError as error:
        note = " ".join(getattr(error, "__notes__", []))
        condition = error.getCondition()
    import micropip

    try:
        await micropip.install(["pandas", "pyarrow"])  # the route the note gives
    except Exception:  # micropip may report the failed downloads or only log them
        pass
    try:
        import pandas  # noqa: F401

        imported = "pandas imported"
    except ImportError as error:
        imported = str(error)
    return condition, note, imported


RECORD_FETCHES = """
self.requested = [];
const fetchOriginal = self.fetch;
self.fetch = (resource, ...rest) => {
    self.requested.push(String(resource && resource.url ? resource.url : resource));
    return fetchOriginal(resource, ...rest);
};
"""


# In Chromium, Pyodide fetches through the page's fetch; in Node, through Node's own, which
# block_net.cjs wraps (it records what it refused).
REQUESTED = """
return typeof process !== "undefined" && process.blockedRequests \
? process.blockedRequests : self.requested;
"""


def test_pandas_route_names_packages_and_asks_the_pyodide_distribution(selenium, lock):
    selenium.run_js(RECORD_FETCHES)
    condition, note, imported = pandas_route(selenium)
    assert condition == "PACKAGE_NOT_INSTALLED"
    assert "pandas_udf needs pandas and pyarrow on the client" in note
    assert "await micropip.install(['pandas', 'pyarrow'])" in note
    # The lockfile sends micropip to the official Pyodide distribution for these wheels
    # (a real browser gets them there); offline, the network block refuses them.
    requested = selenium.run_js(REQUESTED)
    for package in ("numpy", "pandas", "pyarrow"):
        official = lock["packages"][package]["file_name"]
        assert official.startswith("https://")
        if selenium.browser == "node":
            # Node's Pyodide resolves the lockfile's absolute URL against its local index
            # and then prefixes its CDN, so it asks for <CDN>/<official URL>.
            assert any(url.endswith(official) for url in requested), (package, requested)
        else:
            assert official in requested, (package, requested)
    assert imported == "No module named 'pandas'"
