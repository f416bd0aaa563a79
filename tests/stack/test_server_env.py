"""The server is a real PySpark server: Python UDFs run on workers that have pyarrow and
pandas, and tables outlive a restart of the stack (a Hive catalog in Derby under
build/run/). The stock native client (build/venv-stock) talks to 127.0.0.1:15002."""

import json
import subprocess
import sys

import pytest
from helpers import BUILD, ROOT, ensure_venv, restart_stack

pytestmark = pytest.mark.usefixtures("stack")

PINS = ROOT / "tests/requirements-native.txt"
REMOTE = "sc://127.0.0.1:15002"


@pytest.fixture(scope="module")
def stock():
    return ensure_venv("venv-stock", ["pyspark-client==4.2.0"], PINS)


def run_client(python, code, tmp_path):
    """Run code as a script: pyspark takes `python -c` for a doctest run and exits."""
    script = tmp_path / "client.py"
    script.write_text(code)
    result = subprocess.run(
        [str(python), str(script)], capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    return result.stdout.splitlines()[-1]


def workers():
    return json.loads((BUILD / "run/python.json").read_text())


@pytest.mark.parametrize("arrow", [True, False], ids=["arrow", "pickled"])
def test_python_udf_runs_on_the_stack_venv(stock, arrow, tmp_path):
    if workers()["version"] != "{}.{}".format(*sys.version_info[:2]):
        pytest.skip(
            f"the stack's workers run Python {workers()['version']}; "
            "a UDF needs the client's version"
        )
    code = f"""
import json
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf
spark = SparkSession.builder.remote({REMOTE!r}).getOrCreate()

def where(_):
    import json, sys
    import pandas, pyarrow
    return json.dumps([list(sys.version_info[:3]), sys.executable, \
pyarrow.__version__, pandas.__version__])

print(spark.range(1).select(udf(where, "string", useArrow={arrow})("id")).first()[0])
"""
    version, executable, pyarrow, pandas = json.loads(run_client(stock, code, tmp_path))
    assert version[:2] == list(sys.version_info[:2])
    assert executable == workers()["python"]
    pins = dict(
        line.split("==")
        for line in (ROOT / "deploy/requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert (pyarrow, pandas) == (pins["pyarrow"], pins["pandas"])


def table_rows(stock, code, tmp_path):
    """Run code with `spark` bound; it prints the table's ids as JSON."""
    header = (
        "from pyspark.sql import SparkSession\n"
        f"spark = SparkSession.builder.remote({REMOTE!r}).getOrCreate()\n"
    )
    return json.loads(run_client(stock, header + code, tmp_path))


def test_a_table_outlives_a_restart_and_can_be_overwritten(stock, tmp_path):
    read = 'print(sorted(r.id for r in spark.table("stack_persist").collect()))'
    write = 'spark.range({}).write.mode("overwrite").saveAsTable("stack_persist")\n' + read
    assert table_rows(stock, write.format(3), tmp_path) == [0, 1, 2]
    restart_stack()
    assert table_rows(stock, read, tmp_path) == [0, 1, 2]
    # The in-memory catalog failed here with LOCATION_ALREADY_EXISTS.
    assert table_rows(stock, write.format(5), tmp_path) == [0, 1, 2, 3, 4]
    restart_stack()
    assert table_rows(stock, read + '\nspark.sql("drop table stack_persist")', tmp_path) == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert (BUILD / "run/metastore_db").is_dir()
