"""Shared paths and fixtures. Tests are marked by their folder (unit/, browser/)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUILD = ROOT / "build"


def pytest_collection_modifyitems(items):
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in ("unit", "browser"):
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def meta():
    return yaml.safe_load((ROOT / "meta.yaml").read_text())


@pytest.fixture(scope="session")
def lock():
    path = DIST / "pyodide-lock.json"
    assert path.is_file(), "dist/pyodide-lock.json is missing; run ./build.sh first"
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def wheel(lock):
    """The pyspark-web wheel in dist/."""
    return DIST / lock["packages"]["pyspark-web"]["file_name"]


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


@pytest.fixture(scope="session")
def tools_python():
    return Path(sys.executable)
