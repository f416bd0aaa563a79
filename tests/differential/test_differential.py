"""The same queries through the stock native client and through pyspark-web, compared.

- native: pyspark-client 4.2.0 from the package index with grpcio, pyarrow and pandas
  (build/venv-stock), over gRPC to 127.0.0.1:15002;
- web: the built pyspark-web wheel with its pandas extra and WITHOUT grpcio
  (build/venv-web), over grpc-web through Envoy at 127.0.0.1:8081.
Both run tests/differential/runner.py in their own process, against the same server.
"""

import pytest
from helpers import ROOT, assert_same, case_names, ensure_venv, run_differential, run_python

PINS = ROOT / "tests/requirements-native.txt"
TZ = "Europe/Berlin"
CASE_NAMES = case_names()

pytestmark = pytest.mark.usefixtures("stack")


# pyspark-web's configurations: with pyarrow/pandas (upstream's Arrow path), and with none
# of numpy, pandas or pyarrow (pyspark-web's pure-Python Arrow reader and writer).
WEB_CONFIGS = {
    "web": ("venv-web", "[pandas]", []),
    "web-bare": ("venv-web-bare", "", ["numpy", "pandas", "pyarrow"]),
}


def absent(python, modules):
    code = f"import importlib.util as u; print([m for m in {modules!r} if u.find_spec(m)])"
    return run_python(python, code).stdout.strip() == "[]"


@pytest.fixture(scope="session")
def native_results(stack, tmp_path_factory):
    stock = ensure_venv("venv-stock", ["pyspark-client==4.2.0"], PINS)
    # The client's own time zone matters for timestamps: the same, non-UTC one for both.
    return run_differential(
        stock, "sc://127.0.0.1:15002", tmp_path_factory.mktemp("native") / "native.json", TZ
    )


@pytest.fixture(scope="session", params=list(WEB_CONFIGS))
def results(request, stack, wheel, native_results, tmp_path_factory):
    venv, extra, missing = WEB_CONFIGS[request.param]
    web = ensure_venv(venv, [f"{wheel}{extra}"], PINS, reinstall=[wheel])
    # The configuration under test: no grpcio (and, for web-bare, no numpy/pandas/pyarrow).
    assert absent(web, ["grpc", *missing]), f"{venv} has packages it must not have"
    grpcweb = run_differential(
        web, "http://127.0.0.1:8081", tmp_path_factory.mktemp(request.param) / "web.json", TZ
    )
    return native_results, grpcweb


def test_suite_size():
    assert len(CASE_NAMES) >= 60 and len(set(CASE_NAMES)) == len(CASE_NAMES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_result(results, name):
    native, web = results
    assert_same(name, native, web, "pyspark-web")
