"""The wheel's metadata, and the places that must agree on it."""

import ast
import zipfile
from email.parser import Parser

import pytest
import tomllib
from helpers import DIST, ROOT, release_lines
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Compiled or unavailable under Pyodide: never a core requirement.
NOT_ON_CORE_PATH = {"grpcio", "grpcio-status", "zstandard", "numpy", "pandas", "pyarrow"}


@pytest.fixture(scope="module")
def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def requirements(metadata):
    return [Requirement(line) for line in metadata.get_all("Requires-Dist")]


def source_version():
    tree = ast.parse((ROOT / "pyspark_web/__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "__version__":
            return node.value.value
    raise AssertionError("pyspark_web/__init__.py has no __version__")


def test_versions_agree(meta, metadata):
    assert metadata["Name"] == "pyspark-web"
    assert meta["package"]["version"] == source_version() == metadata["Version"]


def test_core_requirements_exist_for_pyodide(metadata):
    core = {canonicalize_name(r.name) for r in requirements(metadata) if r.marker is None}
    assert core == {"protobuf", "googleapis-common-protos", "urllib3"}
    assert not core & NOT_ON_CORE_PATH


def test_core_requirements_agree_with_recipe_and_pyproject(meta, metadata):
    pyproject = tomllib.loads((ROOT / "packaging/pyproject.toml").read_text())
    from_pyproject = {
        canonicalize_name(Requirement(r).name) for r in pyproject["project"]["dependencies"]
    }
    from_wheel = {canonicalize_name(r.name) for r in requirements(metadata) if r.marker is None}
    assert set(meta["requirements"]["run"]) == from_pyproject == from_wheel


def test_pandas_extra_brings_numpy_pandas_pyarrow(metadata):
    extra = {
        canonicalize_name(r.name)
        for r in requirements(metadata)
        if r.marker is not None and r.marker.evaluate({"extra": "pandas"})
    }
    assert extra == {"numpy", "pandas", "pyarrow"}
    assert "pandas" in metadata.get_all("Provides-Extra")


def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"pyspark", "pyspark_web"}
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.endswith(".dist-info/licenses/NOTICE") for n in names)
    # Files that only the patchset adds, and upstream's data files.
    assert "pyspark/sql/connect/grpc_compat.py" in names
    assert {"pyspark/errors/error-conditions.json", "pyspark/py.typed"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


LINE_WHEELS = {line: version for line, (version, _) in release_lines().items()}


@pytest.mark.parametrize("line", LINE_WHEELS)
def test_every_line_is_versioned_as_its_recipe_says(line):
    """<upstream>.postN: the recipe's version is the wheel's and pyspark_web.__version__ in
    it; the line's pyspark is its upstream release; the same requirements everywhere."""
    version = LINE_WHEELS[line]
    upstream = release_lines()[line][1]
    assert version.startswith(upstream + ".post")
    wheel = DIST / f"pyspark_web-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
        init = archive.read("pyspark_web/__init__.py").decode()
        spark = archive.read("pyspark/version.py").decode()
    assert metadata["Version"] == version
    assert f'__version__ = "{version}"' in init.splitlines()
    assert f'"{upstream}"' in spark or f"'{upstream}'" in spark
    core = {canonicalize_name(r.name) for r in requirements(metadata) if r.marker is None}
    assert core == {"protobuf", "googleapis-common-protos", "urllib3"}


@pytest.mark.parametrize("line", LINE_WHEELS)
def test_requires_python_admits_every_pyodide_line(line):
    """Pyodide 314 runs Python 3.14, Pyodide 0.29 Python 3.13 (README, "Release lines")."""
    from packaging.specifiers import SpecifierSet

    wheel = DIST / f"pyspark_web-{LINE_WHEELS[line]}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        declared = Parser().parsestr(archive.read(name).decode())["Requires-Python"]
    assert declared == ">=3.10"
    assert all(v in SpecifierSet(declared) for v in ("3.10", "3.13.2", "3.14.2"))
    assert "3.9" not in SpecifierSet(declared)
