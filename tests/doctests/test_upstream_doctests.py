"""Apache Spark's own doctests of the Spark Connect client, through pyspark-web (issue 17).

tests/doctests/runner.py runs the docstrings of the Connect functions, DataFrame, Column,
GroupedData, Window, Catalog and RuntimeConfig with the globals that each module's
upstream `_test()` builds, every docstring in a session of its own and with what it left
on the server dropped (see the runner's docstring). It runs once per setting, against the
same server:
- stock: the stock pyspark-client with grpcio, pandas and pyarrow (build/venv-stock), over
  native gRPC: the reference;
- web: pyspark-web with its pandas extra (build/venv-web), over grpc-web through Envoy;
- web-bare: pyspark-web alone, no numpy, pandas or pyarrow (build/venv-web-bare; the
  setting of a page in the browser), over grpc-web.
Every docstring that passes with the stock client must pass in each pyspark-web setting,
except, in web-bare, those that need the pandas extra (PANDAS_DOCSTRINGS): they must fail at
their pandas or Arrow API with PACKAGE_NOT_INSTALLED and the note that says how to install
the extra, or, where the docstring imports pandas or pyarrow itself, at that import.
Each setting's report (counts, seconds, every docstring's result) goes to
build/doctests/<setting>.json.
"""

import ast
import doctest
import os

import pytest
from helpers import ROOT, STOCK_CLIENT, ensure_venv, run_python
from upstream_doctests import (
    INSTALL_NOTE,
    NATIVE,
    PANDAS_DOCSTRINGS,
    WEB_SETTINGS,
    fails_as_without_pandas,
    failure_list,
    load_runner,
    regressions,
    run_doctests,
)

pytestmark = [pytest.mark.differential, pytest.mark.usefixtures("stack")]
PINS = ROOT / "tests/requirements-native.txt"


@pytest.fixture(scope="session")
def stock_python(stack):
    return ensure_venv("venv-stock", [STOCK_CLIENT], PINS)


@pytest.fixture(scope="session")
def stock(stock_python):
    # Run next to the settings it is compared with: other tests leave tables on the stack
    # (the demo's saveAsTable), which a docstring such as Catalog.listTables shows.
    return run_doctests(stock_python, NATIVE, "stock")


@pytest.fixture(scope="session")
def web_report(stack, wheel, stock):
    """A function: the report of a pyspark-web setting, run on first use."""
    reports = {}

    def get(setting):
        if setting not in reports:
            venv, extra, url, _ = WEB_SETTINGS[setting]
            python = ensure_venv(venv, [f"{wheel}{extra}"], PINS, reinstall=[wheel])
            reports[setting] = run_doctests(python, url, setting)
        return reports[setting]

    return get


def upstream_test_setup(source):
    """From the source of a Connect module, what its _test() does: (the module whose
    __dict__ becomes the globals, the module testmod runs, the optionflags)."""
    test = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == "_test"
    )
    globs = testmod = flags = None
    for node in ast.walk(test):
        # globs = pyspark.sql.X.__dict__.copy()
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "globs":
            globs = ast.unparse(node.value.func.value.value)
        # doctest.testmod(pyspark.sql.X, globs=globs, optionflags=doctest.A | doctest.B)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "doctest.testmod":
            testmod = ast.unparse(node.args[0])
            value = next(k.value for k in node.keywords if k.arg == "optionflags")
            flags = 0
            for name in (n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)):
                flags |= getattr(doctest, name)
    return globs, testmod, flags


def test_runner_builds_the_globals_of_upstreams_test_functions(stock_python):
    """runner.MODULES is upstream's _test() of each module, as the stock client has it."""
    package = run_python(
        stock_python, "import os, pyspark; print(os.path.dirname(pyspark.__file__))"
    ).stdout.strip()
    for name, (target, flags) in load_runner().MODULES.items():
        path = os.path.join(package, *name.split(".")[1:]) + ".py"
        with open(path) as file:
            assert upstream_test_setup(file.read()) == (target, target, flags), name


def test_stock_client_runs_every_module(stock):
    runner = load_runner()
    for name in runner.MODULES:
        module = stock["modules"][name]
        assert "error" not in module, f"{name} did not run:\n{module['error']}"
        assert module["docstrings"] > 0, name
    assert stock["heavy_packages"] == ["grpc", "numpy", "pandas", "pyarrow"]
    # What the docstrings created on the server was dropped, so a run repeats the last one.
    assert stock["left_behind"] == []


@pytest.mark.parametrize("setting", list(WEB_SETTINGS))
def test_what_passes_with_the_stock_client_passes_with_pyspark_web(stock, web_report, setting):
    report = web_report(setting)
    assert report["heavy_packages"] == WEB_SETTINGS[setting][3], "not the setting's packages"
    for name, module in report["modules"].items():
        assert "error" not in module, f"{name} did not run in {setting}:\n{module['error']}"
    assert report["left_behind"] == [], f"{setting} left objects on the server"
    exempt = PANDAS_DOCSTRINGS if setting == "web-bare" else set()
    regressed = regressions(stock, report, exempt)
    assert not regressed, (
        f"{len(regressed)} docstrings pass with the stock client but not in {setting}:\n\n"
        + failure_list(regressed, report)
    )


def test_without_pandas_the_pandas_docstrings_fail_naming_the_extra(stock, web_report):
    report = web_report("web-bare")
    # They are real tests in the reference, not docstrings that fail anyway.
    failing = [name for name in PANDAS_DOCSTRINGS if not stock["docstrings"][name]["passed"]]
    assert not failing, "the stock client fails these:\n\n" + failure_list(failing, stock)
    wrong = [
        name
        for name in PANDAS_DOCSTRINGS
        if report["docstrings"][name]["passed"]
        or not fails_as_without_pandas(name, report["docstrings"][name]["first_failure"])
    ]
    assert not wrong, (
        "without pandas, these must fail at their pandas API with PACKAGE_NOT_INSTALLED and "
        f"the note {INSTALL_NOTE!r}, or at their own import of the package:\n\n"
        + failure_list(wrong, report)
    )
