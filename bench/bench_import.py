"""The client's import in Pyodide, with and without the wheel's bytecode (build step
"bytecode", tools/add_bytecode.py). Pyodide runs with sys.dont_write_bytecode, so without
it every page load compiles what it imports.

    node --experimental-wasm-stack-switching bench/pyodide_node.mjs bench/bench_import.py
    node ... bench/pyodide_node.mjs bench/bench_import.py --no-bytecode

--no-bytecode deletes the installed pycs of pyspark and pyspark_web first (one Pyodide
per run: a module imports once per interpreter).
"""

import pathlib
import shutil
import sys
import time

site = next(pathlib.Path(p) for p in sys.path if p.endswith("site-packages"))
removed = 0
if "--no-bytecode" in sys.argv:
    for package in ("pyspark", "pyspark_web"):
        for cache in (site / package).rglob("__pycache__"):
            removed += len(list(cache.glob("*.pyc")))
            shutil.rmtree(cache)

began = time.perf_counter()
import pyspark.sql.connect.session  # noqa: E402, F401  (what is measured)
from pyspark.sql.connect import functions  # noqa: E402, F401

import pyspark_web.channel  # noqa: E402, F401

seconds = time.perf_counter() - began
with_pyc = sum(1 for _ in (site / "pyspark").rglob("*.pyc")) + sum(
    1 for _ in (site / "pyspark_web").rglob("*.pyc")
)
label = f"without bytecode ({removed} pycs removed)" if removed else f"with {with_pyc} pycs"
print(f"import of the Connect session, functions and channel {label}: {seconds:.3f} s")
