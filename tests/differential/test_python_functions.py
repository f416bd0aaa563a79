"""Python functions on the cluster (udf_cases.py) from every kind of CPython client, compared
with the stock native client on the workers' own Python (3.11) against the same server.

- web-3.11: pyspark-web with its pandas extra on the workers' minor version: upstream's
  cloudpickle path;
- web-3.13: pyspark-web with its pandas extra on CPython 3.13 (pyenv): every function
  travels as source (pyspark_web/udf);
- web-bare: pyspark-web without numpy, pandas or pyarrow: UDFs, UDTFs and foreachPartition
  give the same results; the pandas and Arrow APIs say what to install.
Pyodide runs the same cases in tests/browser/test_functions_in_pyodide.py.
"""

import pytest
from helpers import (
    ROOT,
    UDF_CASES,
    assert_same,
    case_names,
    ensure_venv,
    pyenv_python,
    run_differential,
    run_python,
)

PINS = ROOT / "tests/requirements-native.txt"
TZ = "Europe/Berlin"
CASE_NAMES = case_names(UDF_CASES.name)
PANDAS_CASES = [name for name in CASE_NAMES if name.startswith("pandas_")]
WORKERS = "3.11"

pytestmark = pytest.mark.usefixtures("stack")

CLIENTS = {
    "web-3.11": ("venv-web", "[pandas]", None),
    "web-3.13": ("venv-web-3.13", "[pandas]", "3.13"),
    "web-bare": ("venv-web-bare", "", None),
}


@pytest.fixture(scope="session")
def native_udf_results(stack, tmp_path_factory):
    stock = ensure_venv("venv-stock", ["pyspark-client==4.2.0"], PINS)
    version = run_python(stock, "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
    assert version == WORKERS, (
        f"the reference client must run the workers' Python {WORKERS}, not {version}"
    )
    return run_differential(
        stock,
        "sc://127.0.0.1:15002",
        tmp_path_factory.mktemp("udf-native") / "out.json",
        TZ,
        UDF_CASES,
    )


def client_python(name, wheel):
    venv, extra, version = CLIENTS[name]
    base = pyenv_python(version) if version else None
    if version and base is None:
        pytest.fail(
            f"CPython {version} is missing: install it with pyenv "
            "(the tests need another minor than the workers')"
        )
    return ensure_venv(venv, [f"{wheel}{extra}"], PINS, reinstall=[wheel], base_python=base)


@pytest.fixture(scope="session", params=list(CLIENTS))
def udf_results(request, stack, wheel, native_udf_results, tmp_path_factory):
    python = client_python(request.param, wheel)
    out = tmp_path_factory.mktemp(f"udf-{request.param}") / "out.json"
    return (
        request.param,
        native_udf_results,
        run_differential(python, "http://127.0.0.1:8081", out, TZ, UDF_CASES),
    )


def test_udf_suite_covers_every_kind():
    for kind in (
        "udf_lambda",
        "udf_register_then_sql",
        "udtf_class_with_eval_and_terminate",
        "pandas_udf_series",
        "pandas_apply_in_pandas",
        "pandas_map_in_pandas",
        "pandas_map_in_arrow",
        "foreach_partition_sees_every_row",
        "udf_use_arrow_true",
        "udf_use_arrow_false",
    ):
        assert kind in CASE_NAMES


@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_result_as_native(udf_results, name):
    client, native, web = udf_results
    assert "error" not in native[name] or name == "udf_exception_in_user_code", (
        f"the reference failed: {native[name]}"
    )
    if client == "web-bare" and name in PANDAS_CASES:
        assert (
            web[name]["error"] == "PySparkImportError"
            and web[name]["condition"] == "PACKAGE_NOT_INSTALLED"
        ), web[name]
        return
    assert_same(name, native, web, f"pyspark-web ({client})")


SCRIPT = """
import sys, time, warnings
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf
import pyspark_web.udf as portable
from pyspark_web.udf import workers

spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
calls = []
stub = spark.client._stub
original = stub.ExecutePlan
def counting(request, *args, **kwargs):
    calls.append(request.plan.WhichOneof("op_type"))
    return original(request, *args, **kwargs)
stub.ExecutePlan = counting

def user_function(x):
    if x == 2:
        raise ValueError("refusing two")  # the line the traceback must quote
    return x

times = []
for attempt in range(2):
    before = len(calls)
    began = time.perf_counter()
    spark.range(2).select(udf(lambda x: x + 1, "long")("id")).collect()
    times.append(time.perf_counter() - began)
    print("round trips", attempt, len(calls) - before)
print("learned", workers._learned.get(spark.client))
print("seconds", " ".join(f"{t:.3f}" for t in times))
try:
    spark.range(4).select(udf(user_function, "long")("id")).collect()
except Exception as error:
    print("error", type(error).__name__, "|", str(error).replace("\\n", "\\\\n"))
"""


def run_script(python, text, tmp_path, env=None):
    """Run a client script from a file, as users do: functions then have source."""
    import os
    import subprocess

    script = tmp_path / "client.py"
    script.write_text(text)
    result = subprocess.run(
        [str(python), str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, **(env or {})),
        cwd="/",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("client", ["web-3.11", "web-3.13"])
def test_worker_version_is_learned_once_and_tracebacks_name_user_code(client, wheel, tmp_path):
    python = client_python(client, wheel)
    out = run_script(python, SCRIPT, tmp_path).splitlines()
    lines = dict(line.split(" ", 1) for line in out)
    # First UDF: the probe plus the query; second: the query only.
    assert [line for line in out if line.startswith("round trips")] == [
        "round trips 0 2",
        "round trips 1 1",
    ], out
    assert lines["learned"] == WORKERS
    print(f"{client}: first and second UDF query in seconds: {lines['seconds']}")
    kind, message = lines["error"].split(" | ", 1)
    assert kind == "PythonException"
    line = next(n for n, text in enumerate(SCRIPT.splitlines(), 1) if "refusing two" in text)
    assert f'File "{tmp_path / "client.py"}", line {line}, in user_function' in message, message
    assert "ValueError: refusing two" in message
    if client != "web-3.11":
        # Source travels to the workers, and their traceback quotes the user's own line
        # (cloudpickle's code objects on the same minor version leave it out, as upstream).
        assert 'raise ValueError("refusing two")  # the line the traceback must quote' in message, (
            message
        )


PROBE_FREE = """
import os
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf
spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
calls = []
stub = spark.client._stub
original = stub.ExecutePlan
stub.ExecutePlan = lambda request, *a, **k: calls.append(1) or original(request, *a, **k)
rows = spark.range(3).select(udf(lambda x: x * 7, "long")("id").alias("v")).collect()
print([r.v for r in rows], len(calls))
"""


def test_declared_worker_version_skips_the_probe(wheel, tmp_path):
    python = client_python("web-3.13", wheel)
    out = run_script(python, PROBE_FREE, tmp_path, {"PYSPARK_WEB_WORKER_PYTHON": WORKERS})
    assert out.split() == ["[0,", "7,", "14]", "1"], out


MISMATCH_DECLARED = """
import os
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf
spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
try:
    spark.range(1).select(udf(lambda x: x, "long")("id")).collect()
except Exception as error:
    print(type(error).__name__, str(error)[:2000])
"""


def test_a_wrong_declared_version_is_the_workers_error(wheel, tmp_path):
    # A declaration is trusted: when it is wrong the workers refuse, as upstream does.
    python = client_python("web-3.13", wheel)
    out = run_script(python, MISMATCH_DECLARED, tmp_path, {"PYSPARK_WEB_WORKER_PYTHON": "3.12"})
    assert (
        out.startswith("PythonException")
        and "PYTHON_VERSION_MISMATCH" in out
        and "3.11 than that in driver: 3.12" in out
    ), out
