"""Every API that moves data through Arrow (arrow_cases.py), through the stock native
client, whose pyarrow reads and writes the batches, and through pyspark-web with and
without pyarrow, on the same server: identical results, case by case.

The pyarrow-backed result is the reference for pyspark-web's own reader and writer
(build/venv-web-bare, no numpy, pandas or pyarrow); build/venv-web runs upstream's path.
The same cases run inside Pyodide in tests/browser/test_spark.py.
"""

import pytest
from helpers import DIFFERENTIAL, ROOT, assert_same, case_names, ensure_venv, run_differential
from test_differential import WEB_CONFIGS, absent

PINS = ROOT / "tests/requirements-native.txt"
TZ = "America/Los_Angeles"
CASES_FILE = DIFFERENTIAL / "arrow_cases.py"
CASE_NAMES = case_names(CASES_FILE.name)

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture(scope="module")
def native_results(tmp_path_factory):
    stock = ensure_venv("venv-stock", ["pyspark-client==4.2.0"], PINS)
    output = tmp_path_factory.mktemp("arrow-native") / "native.json"
    return run_differential(stock, "sc://127.0.0.1:15002", output, TZ, CASES_FILE)


@pytest.fixture(scope="module", params=list(WEB_CONFIGS))
def results(request, wheel, native_results, tmp_path_factory):
    venv, extra, missing = WEB_CONFIGS[request.param]
    web = ensure_venv(venv, [f"{wheel}{extra}"], PINS, reinstall=[wheel])
    assert absent(web, ["grpc", *missing]), f"{venv} has packages it must not have"
    output = tmp_path_factory.mktemp(f"arrow-{request.param}") / "web.json"
    return native_results, run_differential(web, "http://127.0.0.1:8081", output, TZ, CASES_FILE)


def test_the_sweep_covers_every_arrow_api():
    """The APIs of issue 17's sweep each have a case (a renamed case must not drop one)."""
    source = CASES_FILE.read_text()
    for api in ("approxQuantile", "corr", "cov", "crosstab", "freqItems", "sampleBy",
                "describe", "summary", "toLocalIterator", "head", "take", "tail", "first",
                "isEmpty", "parse_json", "PointUDT", "createDataFrame"):  # fmt: skip
        assert api in source, api


@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_result(results, name):
    native, web = results
    # A case that fails for the stock client too still compares: both must fail alike.
    assert_same(name, native, web, "pyspark-web")
