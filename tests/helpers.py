"""Paths and helpers shared by the test suites (imported as `helpers`)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUILD = ROOT / "build"
BUILD_SH = str(ROOT / "build.sh")


def _upstream_version():
    """The pyspark-client release that meta.yaml builds on: the version of its source.url."""
    import re

    return re.search(
        r"^  url: \S*/pyspark_client-(\S+)\.tar\.gz$", (ROOT / "meta.yaml").read_text(), re.M
    )[1]


# The stock client that the differential suites compare with: upstream's same release.
STOCK_CLIENT = f"pyspark-client=={_upstream_version()}"


def line_recipes():
    """pyspark-web's release lines, newest first: {X.Y: its recipe directory}, the top level
    (meta.yaml, patches/) for the newest, recipes/pyspark-web-X.Y/ for the others."""
    import yaml

    found = {}
    for recipe in [ROOT / "meta.yaml", *ROOT.glob("recipes/pyspark-web-*/meta.yaml")]:
        version = yaml.safe_load(recipe.read_text())["package"]["version"]
        found[".".join(version.split(".")[:2])] = recipe.parent
    return dict(
        sorted(found.items(), key=lambda item: [int(p) for p in item[0].split(".")], reverse=True)
    )


def release_lines():
    """{X.Y: (the line's version, the pyspark-client release it is built on)}, newest first."""
    import re

    import yaml

    lines = {}
    for line, directory in line_recipes().items():
        meta = yaml.safe_load((directory / "meta.yaml").read_text())
        upstream = re.search(r"pyspark_client-(\S+)\.tar\.gz$", meta["source"]["url"])[1]
        lines[line] = (meta["package"]["version"], upstream)
    return lines


def stack_venv() -> Path:
    """build/venv-stack-X.Y of the running stack (its Spark, Envoy and workers' Python);
    the machine's python3 (which runs the tests) picks X.Y when none runs."""
    import json
    import sys

    try:
        return Path(json.loads((BUILD / "run/python.json").read_text())["python"]).parent.parent
    except FileNotFoundError:
        return BUILD / "venv-stack-{}.{}".format(*sys.version_info[:2])


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


def tool(name):
    """A module of tools/ (no package: each file runs as a script), loaded by its path."""
    import importlib.util
    import sys

    key = f"tools.{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "tools" / f"{name}.py")
        sys.modules[key] = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(sys.modules[key])
        except BaseException:
            del sys.modules[key]
            raise
    return sys.modules[key]


def ensure_venv(name, requirements, constraints, reinstall=(), base_python=None):
    """build/<name>: a virtualenv (of ``base_python``, else the Python running the tests)
    with ``requirements`` installed under ``constraints``, made by tools/ensure_venv.py as
    build.sh makes its own: rebuilt when they change. ``reinstall`` (wheels) is installed
    again on every call, so the venv always has the freshly built one."""
    import sys

    venv = BUILD / name
    command = [
        str(base_python or sys.executable),
        str(ROOT / "tools/ensure_venv.py"),
        str(venv),
        *map(str, requirements),
        "-c",
        str(constraints),
    ]
    for wheel in reinstall:
        command += ["--reinstall", str(wheel)]
    subprocess.run(command, check=True)
    return venv / "bin/python"


def native_venv(wheel):
    """build/venv-native: pyspark-web with its pandas and grpc extras (grpcio, numpy, pandas,
    pyarrow), and pytest + Hypothesis for the checks that run there against pyarrow."""
    return ensure_venv(
        "venv-native",
        [f"{wheel}[pandas,grpc]", "pytest==8.4.2", "hypothesis==6.170.17"],
        ROOT / "tests/requirements-native.txt",
        reinstall=[wheel],
    )


DIFFERENTIAL = ROOT / "tests/differential"
UDF_CASES = DIFFERENTIAL / "udf_cases.py"


def pyenv_python(version):
    """The pyenv CPython of a minor version (e.g. "3.13"), or None."""
    found = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    return found[-1] if found else None


def run_differential(python, url, output, tz, cases_file=None):
    """Run tests/differential/runner.py (on cases.py, or on ``cases_file``) in another venv;
    its JSON results."""
    import json
    import os

    env = dict(os.environ, TZ=tz)
    extra = [str(cases_file)] if cases_file else []
    result = subprocess.run(
        [str(python), str(DIFFERENTIAL / "runner.py"), url, str(output), *extra],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    if result.returncode != 0:
        raise AssertionError(f"runner failed on {url}:\n{result.stderr[-4000:]}")
    return json.loads(Path(output).read_text())


def stock_results(output, tz, cases_file=None):
    """The reference: the stock native client (pyspark-client with grpcio, pyarrow and pandas
    in build/venv-stock) over native gRPC to the same server."""
    stock = ensure_venv("venv-stock", [STOCK_CLIENT], ROOT / "tests/requirements-native.txt")
    return run_differential(stock, "sc://127.0.0.1:15002", output, tz, cases_file)


def assert_same(name, native, other, label):
    """Fail with a readable diff when a case's results differ."""
    import difflib
    import json

    import pytest

    assert name in native and name in other, f"{name}: the case did not run"
    if other[name] != native[name]:
        expected = json.dumps(
            native[name], indent=1, sort_keys=True, ensure_ascii=False
        ).splitlines()
        actual = json.dumps(other[name], indent=1, sort_keys=True, ensure_ascii=False).splitlines()
        diff = "\n".join(
            difflib.unified_diff(expected, actual, "native gRPC", label, lineterm="", n=2)
        )
        pytest.fail(f"{name}: {label} differs from the native client\n{diff}", pytrace=False)


def case_names(cases_file="cases.py"):
    """The differential cases, in order, read from a cases file without importing it."""
    import ast

    return [
        node.name
        for node in ast.parse((DIFFERENTIAL / cases_file).read_text()).body
        if isinstance(node, ast.FunctionDef)
        and any(getattr(d, "id", None) == "case" for d in node.decorator_list)
    ]


# The IPython of Pyodide's lock (build/wheels, dist/); tests/requirements.txt pins the same
# for Python 3.12+. The notebook tests run it on pyenv's 3.13 (conftest.ipython_313).
PYODIDE_IPYTHON = "ipython==9.12.0"

# What the pages' local static servers send as Content-Type (wasm must be application/wasm).
CONTENT_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html",
    ".whl": "application/zip",
    ".zip": "application/zip",
}

# Headless Chromium as root, offline: every host name but 127.0.0.1 resolves to nothing.
CHROME_FLAGS = [
    "--js-flags=--expose-gc",  # pytest-pyodide's default, which set_flags replaces
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # One argv entry, so no shell quoting.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def restart_stack():
    """./build.sh down, then up with the same workers' Python, as a person would."""
    import json

    version = json.loads((BUILD / "run/python.json").read_text())["version"]
    subprocess.run([BUILD_SH, "down"], check=True, capture_output=True)
    subprocess.run([BUILD_SH, "up", "--python", version], check=True, capture_output=True)


def run_demo_check(report_file, *options):
    """tools/demo_check.py with ``options``: every cell of the demo notebook in the
    JupyterLab UI, in headless Chromium; its JSON report (written to report_file)."""
    import json
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/demo_check.py"), *options, "--json", str(report_file)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return json.loads(Path(report_file).read_text())


def restart_part(part, down_seconds=0.5):
    """Stop one part of the stack ("envoy" or "spark") with tools/stack.py's own code (which
    signals the recorded process group only while it is still the one that up started),
    then start it again with ./build.sh up, which returns once the stack is ready."""
    import time

    stack = tool("stack")
    if not stack.stop(stack.Paths(BUILD / "run"), part):
        raise AssertionError(
            f"the stack's {part} is not running (build/run/{part}.pid); nothing was restarted"
        )
    time.sleep(down_seconds)  # clients now see connections refused, and retry
    subprocess.run([BUILD_SH, "up"], check=True, capture_output=True)


def restart_envoy(down_seconds=0.5):
    restart_part("envoy", down_seconds)
