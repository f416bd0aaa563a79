"""tools/assemble_dist.py and tools/pyodide_root.py, on small inputs."""

import importlib.util
import json
import os
import subprocess
import zipfile

import pytest

from helpers import ROOT


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


assemble_dist = load("assemble_dist")
pyodide_root = load("pyodide_root")
CORE = ROOT / "node_modules/pyodide"


def make_wheel(path, name, version, requires, files):
    wheel = path / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
        archive.writestr(f"{info}/METADATA", meta)
        for file in files:
            archive.writestr(file, "")
    return wheel


def test_wheel_entry_evaluates_markers_for_pyodide(tmp_path):
    wheel = make_wheel(
        tmp_path,
        "demo-pkg",
        "1.0",
        [
            "alpha>=1",
            'colorama; sys_platform == "win32"',
            'tomli; python_version < "3.11"',
            'beta; sys_platform == "emscripten"',
            'gamma; extra == "dev"',
        ],
        ["demo_pkg/__init__.py", "demo_extra.py"],
    )
    env = assemble_dist.pyodide_environment({"python": "3.14.2"})
    entry = assemble_dist.wheel_entry(wheel, env)
    assert entry["name"] == "demo-pkg" and entry["version"] == "1.0"
    assert entry["depends"] == ["alpha", "beta"]
    assert entry["imports"] == ["demo_extra", "demo_pkg"]


def test_official_base_url_comes_from_pyodide_mjs(tmp_path):
    url = assemble_dist.official_base_url(CORE, "314.0.7")
    assert url.startswith("https://") and url.endswith("/v314.0.7/full/")
    (tmp_path / "pyodide.mjs").write_text("no default URL here")
    with pytest.raises(SystemExit, match="no default package URL"):
        assemble_dist.official_base_url(tmp_path, "314.0.7")


def test_unknown_dependency_stops_assembly(tmp_path):
    wheel = make_wheel(tmp_path, "lonely", "1.0", ["does-not-exist-anywhere"], ["lonely.py"])
    with pytest.raises(SystemExit, match="lonely -> does-not-exist-anywhere"):
        assemble_dist.assemble(CORE, tmp_path / "dist", [wheel])


def test_offline_root_reports_the_npm_release(tmp_path):
    pyodide_root.write_root(CORE, tmp_path / "root")
    out = subprocess.run(
        ["make", "-s", "-f", str(tmp_path / "root/Makefile.envs"), ".output_vars"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYODIDE_ROOT": str(tmp_path / "root")},
    ).stdout
    values = dict(line.split("=", 1) for line in out.splitlines())
    lock_info = json.loads((CORE / "pyodide-lock.json").read_text())["info"]
    assert values["PYVERSION"] == lock_info["python"]
    assert values["PYODIDE_ABI_VERSION"] == lock_info["abi_version"]
    assert "emscripten_" + values["PYODIDE_EMSCRIPTEN_VERSION"].replace(".", "_") == lock_info["platform"]
    assert values["PYODIDE_VERSION"] == "314.0.7"
    sysconfig = tmp_path / "root/cpython/installs" / f"python-{values['PYVERSION']}" / "sysconfigdata"
    assert (sysconfig / f"{pyodide_root.SYSCONFIG_NAME}.py").stat().st_size > 1000
