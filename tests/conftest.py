"""Session fixtures shared by all suites. Tests are marked by their folder (unit/, browser/)."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import BUILD, BUILD_SH, DIST, PYODIDE_IPYTHON, ROOT, ensure_venv, pyenv_python, tool


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in ("unit", "browser", "stack", "differential"):
            item.add_marker(getattr(pytest.mark, folder))
    # Long runs (fuzzing at length, the whole compatibility matrix) take minutes: they run
    # only when asked for by name (-m fuzz_long, -m matrix_full).
    for marker in ("fuzz_long", "matrix_full"):
        if marker not in (config.getoption("markexpr") or ""):
            long_runs = [item for item in items if item.get_closest_marker(marker)]
            if long_runs:
                config.hook.pytest_deselected(items=long_runs)
                items[:] = [item for item in items if not item.get_closest_marker(marker)]


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


@pytest.fixture(scope="session")
def ipython_313(wheel):
    """A venv of pyenv's CPython 3.13 with the wheel and Pyodide's IPython: what
    JupyterLite's kernel runs, short of Pyodide."""
    base = pyenv_python("3.13")
    if base is None:
        pytest.fail(
            "CPython 3.13 is missing: install it with pyenv (JupyterLite's IPython needs 3.12+)"
        )
    return ensure_venv(
        "venv-ipython-3.13",
        [wheel, PYODIDE_IPYTHON],
        ROOT / "tools/constraints.txt",
        reinstall=[wheel],
        base_python=base,
    )


@pytest.fixture(scope="session")
def prod_stack(stack):
    """`./build.sh up --prod`'s Envoy beside the dev stack; started here (and stopped at
    the end, by its recorded PID) unless it already runs. Its directory, build/prod."""
    stack_tool = tool("stack")
    prod = stack_tool.Paths(BUILD / "prod")
    if stack_tool.read_pid(prod, "envoy"):
        yield prod.run
        return
    subprocess.run([BUILD_SH, "up", "--prod"], check=True)
    try:
        yield prod.run
    finally:
        stack_tool.stop(prod, "envoy")


@pytest.fixture(scope="session")
def stack():
    """The dev stack; started here (and stopped at the end) unless it already runs."""
    if subprocess.run([BUILD_SH, "status"], capture_output=True).returncode == 0:
        yield
        return
    subprocess.run([BUILD_SH, "up"], check=True)
    try:
        yield
    finally:
        subprocess.run([BUILD_SH, "down"], check=True)
