"""Add Pyodide-compiled bytecode for the first query's modules to the pyspark-web wheel.

Pyodide runs with sys.dont_write_bytecode, so every page load compiles every module it
imports: about half of ``import pyspark.sql.connect.session`` in Pyodide (BENCHMARKS.md).
The wheel keeps its .py files, for tracebacks and inspect. The modules that a first query
imports get ``__pycache__/NAME.cpython-3XX.pyc``, compiled by Pyodide's own Python
(tools/compile_in_pyodide.mjs); the rest stay source only, since every .pyc adds to the
download. CPython of another version ignores them. RECORD is written anew. A wheel that
already has bytecode is left as it is.

usage: python tools/add_bytecode.py WHEEL DEPENDENCY_WHEEL...
"""

import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def add_bytecode(wheel: Path, dependencies: list) -> int:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    if any(name.endswith(".pyc") for name in names):
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch)
        for dependency in dependencies:
            with zipfile.ZipFile(dependency) as archive:
                archive.extractall(tree)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tree)
        script = ROOT / "tools/compile_in_pyodide.mjs"
        subprocess.run(["node", str(script), str(tree)], check=True)
        ours = {name.split("/", 1)[0] for name in names if "/" in name}
        pycs = sorted(
            str(p.relative_to(tree))
            for p in tree.rglob("*.pyc")
            if p.relative_to(tree).parts[0] in ours
        )
        record = next(name for name in names if name.endswith(".dist-info/RECORD"))
        files = [name for name in names if name != record and not name.endswith("/")] + pycs
        lines = [record_line(name, (tree / name).read_bytes()) for name in files]
        lines.append(f"{record},,")
        partial = wheel.with_name(wheel.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for name in files:
                out.write(tree / name, name)
            out.writestr(record, "\n".join(lines) + "\n")
        partial.replace(wheel)
        return len(pycs)


if __name__ == "__main__":
    wheel = Path(sys.argv[1])
    before = wheel.stat().st_size
    count = add_bytecode(wheel, [Path(p) for p in sys.argv[2:]])
    if count:
        print(f"{wheel.name}: {count} .pyc added, {before} -> {wheel.stat().st_size} bytes")
    else:
        print(f"{wheel.name}: has its bytecode ({before} bytes)")
