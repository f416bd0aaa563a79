"""What the upstream doctest suite expects, shared by its CPython settings
(tests/doctests/test_upstream_doctests.py) and its Pyodide one
(tests/browser/test_doctests_in_pyodide.py): the runner, the reference run, the docstrings
that need the pandas extra and how they must fail without it."""

import importlib.util
import json
import subprocess
import time

from helpers import BUILD, ROOT

RUNNER = ROOT / "tests/doctests/runner.py"
NATIVE = "sc://127.0.0.1:15002"
GRPC_WEB = "http://127.0.0.1:8081"

# setting -> (venv, the wheel's extra, URL, which of grpc/numpy/pandas/pyarrow it has);
# stock is the reference.
WEB_SETTINGS = {
    "web": ("venv-web", "[pandas]", GRPC_WEB, ["numpy", "pandas", "pyarrow"]),
    "web-bare": ("venv-web-bare", "", GRPC_WEB, []),
}

# The docstrings that need the pandas extra (found by running the suite without it), in
# two kinds. Those whose pandas or Arrow API must fail, naming the extra:
PANDAS_APIS = {
    "pyspark.sql.connect.group.GroupedData.apply",
    "pyspark.sql.dataframe.DataFrame.mapInPandas",
    "pyspark.sql.dataframe.DataFrame.pandas_api",
    "pyspark.sql.dataframe.DataFrame.toArrow",
    "pyspark.sql.dataframe.DataFrame.toPandas",
}
INSTALL_NOTE = "pip install 'pyspark-web[pandas]'"
# Those that import what the extra brings themselves (`import pandas as pd`; unwrap_udt's
# pyspark.ml.linalg imports numpy) before their example, and so stop at that import, with
# the package it names. unwrap_udt itself, on a UDT column, runs without numpy
# (tests/differential/arrow_cases.py, collect_udt_values).
IMPORTING_PANDAS = {
    "pyspark.sql.connect.functions.builtin.arrow_udtf": "pyarrow",
    "pyspark.sql.connect.functions.builtin.udf": "pandas",
    "pyspark.sql.connect.functions.builtin.unwrap_udt": "numpy",
    "pyspark.sql.connect.group.GroupedData.agg": "pandas",
    "pyspark.sql.connect.group.GroupedData.applyInArrow": "pyarrow",
    "pyspark.sql.connect.group.GroupedData.applyInPandas": "pandas",
    "pyspark.sql.connect.group.PandasCogroupedOps.applyInArrow": "pyarrow",
    "pyspark.sql.connect.group.PandasCogroupedOps.applyInPandas": "pandas",
    "pyspark.sql.dataframe.DataFrame.mapInArrow": "pyarrow",
}
PANDAS_DOCSTRINGS = PANDAS_APIS | set(IMPORTING_PANDAS)


def load_runner():
    spec = importlib.util.spec_from_file_location("doctest_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_doctests(python, url, setting):
    """Run the runner in another interpreter; its report, also kept in build/doctests/."""
    output = BUILD / "doctests" / f"{setting}.json"
    output.parent.mkdir(exist_ok=True)
    output.unlink(missing_ok=True)
    began = time.monotonic()
    # The environment (its TZ too) is passed on: the client then runs in the time zone of
    # the server, which runs on this machine; upstream's doctests assume that they agree.
    result = subprocess.run(
        [str(python), str(RUNNER), url, str(output)],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd="/",
    )
    assert result.returncode == 0, f"the runner failed in {setting}:\n{result.stderr[-4000:]}"
    report = json.loads(output.read_text())
    print(
        f"\n{setting}: {report['passed_total']}/{report['docstrings_total']} docstrings "
        f"passed in {time.monotonic() - began:.0f} s"
    )
    return report


def failure_list(names, report):
    return "\n\n".join(
        f"{name}:\n{report['docstrings'][name]['first_failure']}"
        if name in report["docstrings"]
        else f"{name}: did not run"
        for name in sorted(names)
    )


def fails_as_without_pandas(name, failure):
    """How a docstring needing the pandas extra must fail without it."""
    if name in PANDAS_APIS:
        return "PACKAGE_NOT_INSTALLED" in failure and INSTALL_NOTE in failure
    first_line, _, error = failure.partition("\n")
    return first_line.startswith((">>> import ", ">>> from ")) and error.startswith(
        f"ModuleNotFoundError: No module named '{IMPORTING_PANDAS[name]}'"
    )


def regressions(stock, report, exempt=frozenset()):
    """Docstrings that pass with the stock client but not in ``report``."""
    return [
        name
        for name, result in stock["docstrings"].items()
        if result["passed"]
        and name not in exempt
        and not report["docstrings"].get(name, {}).get("passed")
    ]
