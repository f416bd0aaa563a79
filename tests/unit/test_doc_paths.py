"""Every repository path that the docs, docstrings and comments quote exists: a renamed
file must not leave a pointer behind (issue 13)."""

import re

import pytest
from helpers import ROOT

pytestmark = pytest.mark.unit

# Top-level folders whose files are quoted by path. build/ and dist/ are made by the build.
FOLDERS = (
    "tests",
    "pyspark_web",
    "tools",
    "bench",
    "deploy",
    "lite",
    "patches",
    "docs",
    "recipes",
    "packaging",
    "examples",
    ".ci",
)
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./-]*[\w-])" % "|".join(re.escape(f) for f in FOLDERS))
SOURCES = [
    "README.md",
    "BENCHMARKS.md",
    "deploy/README.md",
    "CONTRIBUTING.md",
    "recipes/README.md",
    "meta.yaml",
    "build.sh",
    ".ci/run",
    "packaging/pyproject.toml",
    "pytest.ini",
]
CODE_FOLDERS = ["pyspark_web", "tests", "tools", "bench"]


def quoting_files():
    files = [ROOT / name for name in SOURCES]
    for folder in CODE_FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.name != "test_doc_paths.py"]  # its examples are made up


def quoted_paths(text):
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".")
        if "*" in path or "<" in path or "{" in path:
            continue
        yield path


def exists(path):
    target = ROOT / path
    if target.exists():
        return True
    # "recipes/pyspark-web-X.Y" names one directory per release line (or Pyodide line).
    if "X.Y" in path:
        return any(ROOT.glob(path.replace("X.Y", "*")))
    # "patches/0008" names a patch by its number; "tests/unit/test_x.py::test_y" a test.
    stem = target.name
    return target.parent.is_dir() and any(p.name.startswith(stem) for p in target.parent.iterdir())


def test_quoted_paths_exist():
    missing = []
    for file in quoting_files():
        for path in quoted_paths(file.read_text(errors="replace")):
            if not exists(path):
                missing.append(f"{file.relative_to(ROOT)}: {path}")
    assert not missing, "\n".join(missing)


def test_the_check_finds_paths():
    # A check that finds nothing would pass for ever.
    found = set(quoted_paths((ROOT / "README.md").read_text()))
    assert {"tests/differential", "deploy/README.md", "lite/files/demo.ipynb"} <= found
    assert not exists("tests/unit/test_no_such_file.py")
