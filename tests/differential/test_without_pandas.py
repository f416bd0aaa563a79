"""pyspark-web with none of numpy, pandas or pyarrow (build/venv-web-bare): the row APIs
work (the differential suite), and the pandas/Arrow APIs say what to install."""

import subprocess

import pytest
from helpers import ROOT, ensure_venv

PINS = ROOT / "tests/requirements-native.txt"
pytestmark = pytest.mark.usefixtures("stack")

SCRIPT = """
import sys
from pyspark.sql import SparkSession
from pyspark.errors import PySparkImportError
spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
df = spark.range(3)
for api, call in (("toPandas()", df.toPandas), ("toArrow()", df.toArrow), \
("pandas_api()", df.pandas_api)):
    try:
        call()
        print(api, "returned")
    except PySparkImportError as error:
        print(api, "|", error.getCondition(), "|", " ".join(getattr(error, "__notes__", [])))
print("loaded:", sorted(m for m in ("numpy", "pandas", "pyarrow") if m in sys.modules))
"""


def test_pandas_apis_name_the_pandas_extra(wheel):
    python = ensure_venv("venv-web-bare", [str(wheel)], PINS, reinstall=[wheel])
    result = subprocess.run(
        [str(python), "-c", SCRIPT], capture_output=True, text=True, timeout=120, cwd="/"
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout + result.stderr
    for line, api in zip(lines, ("toPandas()", "toArrow()", "pandas_api()")):
        name, condition, note = [part.strip() for part in line.split("|")]
        assert name == api and condition == "PACKAGE_NOT_INSTALLED"
        assert "pip install 'pyspark-web[pandas]'" in note
        # micropip drops the extra of a package from the lockfile: the note names the packages.
        assert (
            "await micropip.install(['pandas', 'pyarrow'])" in note
            or "await micropip.install(['pyarrow'])" in note
        )
    assert lines[3] == "loaded: []"
