"""Paths and helpers shared by the test suites (imported as `helpers`)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUILD = ROOT / "build"
BUILD_SH = str(ROOT / "build.sh")


def run_python(python, code, check=True):
    """Run code in another interpreter; return the completed process (text mode)."""
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd="/"
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{python} exited {result.returncode}\nstdout:\n{result.stdout}\n"
            f"stderr:\n{result.stderr}"
        )
    return result


def ensure_venv(name, requirements, constraints, reinstall=()):
    """build/<name>: a virtualenv (the machine's python3) with ``requirements`` installed
    under ``constraints``; rebuilt when they change. ``reinstall`` (wheels) is installed
    again on every call, so the venv always has the freshly built one."""
    import sys

    venv = BUILD / name
    python = venv / "bin/python"
    wanted = "\n".join([*map(str, requirements), Path(constraints).read_text()])
    stamp = venv / ".stamp"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if not stamp.is_file() or stamp.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(pip + [*map(str, requirements), "-c", str(constraints)], check=True)
        stamp.write_text(wanted)
    if reinstall:
        subprocess.run(pip + ["--force-reinstall", "--no-deps", *map(str, reinstall)], check=True)
    return python


def native_venv(wheel):
    """build/venv-native: pyspark-web with its pandas and grpc extras (grpcio, numpy, pandas,
    pyarrow), and pytest + Hypothesis for the checks that run there against pyarrow."""
    return ensure_venv(
        "venv-native",
        [f"{wheel}[pandas,grpc]", "pytest==8.4.2", "hypothesis==6.170.17"],
        ROOT / "tests/requirements-native.txt",
        reinstall=[wheel],
    )
