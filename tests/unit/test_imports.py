"""Importing the client on plain CPython without grpcio, numpy, pandas or pyarrow.

These run in fresh interpreters, the way a user starts one ("python -c", a script).
"""

import sys

from helpers import run_python

HEAVY = ("numpy", "pandas", "pyarrow", "grpc", "grpc_status", "zstandard")

IMPORT_CLIENT = f"""
import sys
import pyspark.sql.connect.session
import pyspark.sql.connect.client.core
from pyspark.sql.connect.functions import col, lit
import pyspark_web
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
print(col("x"), lit(1))
"""


def test_environment_is_bare():
    result = run_python(
        sys.executable,
        "import importlib.util as u; print([m for m in %r if u.find_spec(m)])" % (HEAVY,),
    )
    assert result.stdout.strip() == "[]"


def test_client_imports_under_python_c_without_exit_or_noise():
    result = run_python(sys.executable, IMPORT_CLIENT)
    lines = result.stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "Column<'x'> Column<'1'>"
    assert result.stderr == ""


def test_functions_module_exports_everything():
    import pyspark.sql.connect.functions as F
    import pyspark.sql.connect.functions.builtin as builtin

    public = [name for name in dir(builtin) if not name.startswith("_")]
    assert len(public) > 400
    missing = [
        name
        for name in ("col", "lit", "sum", "window", "udf", "pandas_udf")
        if not hasattr(F, name)
    ]
    assert missing == []


def test_doctest_shortcut_still_applies_under_python_m():
    # Upstream runs doctests as "python -m <module>": there check_dependencies still takes
    # its doctest branch, which imports pyspark.testing (here it then looks for SPARK_HOME
    # and exits, as upstream does on a machine without Spark).
    import subprocess

    command = [sys.executable, "-m", "pyspark.sql.connect.column"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")
    assert "SPARK_HOME" in result.stderr or "Skipping doctests" in result.stderr, result.stderr
