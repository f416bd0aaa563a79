"""Assemble dist/: the Pyodide core files, our wheels, and a pyodide-lock.json for them.

The npm ``pyodide`` package carries the core runtime and a lockfile that names about 360
packages, but none of their wheels. The lockfile written here keeps every entry of that
lockfile and rewrites it in one of two ways:

- the package has a wheel in dist/ (ours, or a dependency fetched by name and checked
  by sha256): the entry names that file, with its sha256, version, imports and the
  dependencies from its own metadata;
- otherwise: ``file_name`` becomes the absolute URL of the same file in the official
  Pyodide distribution of the same version, so a real browser can still load
  pandas or pyarrow, while tests with the network blocked never depend on it.

The base URL of the official distribution is read from the npm package's ``pyodide.mjs``
(its built-in default), never written down here.

``--official NAME`` (repeatable) keeps the official entry of a package that a wheel here
would replace: a site with internet access can take the official compiled protobuf (upb)
instead of the pure-Python wheel (see README, "Start-up and protobuf").

Usage: python tools/assemble_dist.py [--official NAME ...] CORE_DIR DIST_DIR WHEEL [WHEEL ...]
"""

import argparse
import hashlib
import json
import re
import shutil
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

# The files a page or Node needs to boot Pyodide (the npm package also has a console page
# and source maps, which are copied for debugging).
CORE_FILES = (
    "pyodide.js",
    "pyodide.js.map",
    "pyodide.mjs",
    "pyodide.mjs.map",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide.d.ts",
    "ffi.d.ts",
    "package.json",
)

# What the static host answers at "/": the ways in, with relative links, so that it works
# wherever dist/ is served.
INDEX_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>pyspark-web</title>
<h1>pyspark-web</h1>
<p>PySpark's Spark Connect client in the browser: pyspark-web {version} on Pyodide {pyodide}.</p>
<ul>
  <li><a href="./lite/lab/index.html?path=demo.ipynb">The demo notebook</a> (JupyterLite)</li>
  <li><a href="examples/pyspark.html">A plain page</a> that loads Pyodide and PySpark with a
    <code>&lt;script&gt;</code></li>
  <li><a href="pyodide-lock.json">pyodide-lock.json</a>: this site as a package index, from
    any origin: <code>loadPyodide({{ lockFileURL: "&lt;this site&gt;/pyodide-lock.json" }})</code>,
    then <code>loadPackage("pyspark-web")</code></li>
</ul>
"""


def official_base_url(core_dir: Path, version: str) -> str:
    """The package base URL that pyodide.mjs falls back to, for this version."""
    source = (core_dir / "pyodide.mjs").read_text()
    match = re.search(r"`(https://[^`]+/v)\$\{\w+\}(/full/)`", source)
    if not match:
        raise SystemExit(
            f"error: no default package URL found in {core_dir / 'pyodide.mjs'}; "
            "the npm package layout changed, update tools/assemble_dist.py"
        )
    return f"{match.group(1)}{version}{match.group(2)}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pyodide_environment(lock_info: dict) -> dict[str, str]:
    """PEP 508 marker values of the Pyodide runtime, for evaluating Requires-Dist."""
    version = lock_info["python"]
    return {
        "python_version": ".".join(version.split(".")[:2]),
        "python_full_version": version,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "emscripten",
        "platform_system": "Emscripten",
        "platform_machine": "wasm32",
        "os_name": "posix",
        "extra": "",
    }


def wheel_entry(wheel: Path, environment: dict[str, str]) -> dict:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        top_level = f"{dist_info}/top_level.txt"
        if top_level in names:
            imports = archive.read(top_level).decode().split()
        else:
            imports = sorted(
                {
                    n.split("/")[0].removesuffix(".py")
                    for n in names
                    if not n.split("/")[0].endswith((".dist-info", ".data"))
                }
            )
    depends = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            depends.append(canonicalize_name(requirement.name))
    return {
        "name": str(name),
        "version": str(version),
        "file_name": wheel.name,
        "install_dir": "site",
        "sha256": sha256_of(wheel),
        "package_type": "package",
        "imports": imports,
        "depends": sorted(set(depends)),
        "unvendored_tests": False,
    }


def assemble(
    core_dir: Path, dist: Path, wheels: list[Path], official: frozenset[str] = frozenset()
) -> None:
    if dist.exists():
        shutil.rmtree(dist)
    dist.mkdir(parents=True)
    for name in CORE_FILES:
        shutil.copyfile(core_dir / name, dist / name)

    lock = json.loads((core_dir / "pyodide-lock.json").read_text())
    version = json.loads((core_dir / "package.json").read_text())["version"]
    base_url = official_base_url(core_dir, version)
    environment = pyodide_environment(lock["info"])
    packages = lock["packages"]

    for entry in packages.values():
        if "://" not in entry["file_name"]:
            entry["file_name"] = base_url + entry["file_name"]

    unknown = sorted(name for name in official if name not in packages)
    if unknown:
        raise SystemExit(f"error: --official {', '.join(unknown)}: not in Pyodide's lockfile")
    for wheel in wheels:
        if canonicalize_name(parse_wheel_filename(wheel.name)[0]) in official:
            continue
        shutil.copyfile(wheel, dist / wheel.name)
        entry = wheel_entry(dist / wheel.name, environment)
        key = canonicalize_name(entry["name"])
        previous = packages.get(key, {})
        # Keep fields Pyodide added that a wheel cannot tell (e.g. "tool").
        packages[key] = {**previous, **entry, "name": key}

    missing = sorted(
        f"{key} -> {dep}"
        for key, entry in packages.items()
        if "://" not in entry["file_name"]
        for dep in entry["depends"]
        if dep not in packages
    )
    if missing:
        raise SystemExit(f"error: lock entries depend on unknown packages: {', '.join(missing)}")

    examples = Path(__file__).resolve().parent.parent / "examples"
    if examples.is_dir():
        # Plain pages that use this index (README: "a plain <script> page").
        shutil.copytree(examples, dist / "examples")

    lock["packages"] = dict(sorted(packages.items()))
    (dist / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    (dist / "index.html").write_text(
        INDEX_PAGE.format(pyodide=version, version=packages.get("pyspark-web", {}).get("version"))
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__.strip().splitlines()[-1])
    parser.add_argument("--official", action="append", default=[])
    parser.add_argument("core_dir", type=Path)
    parser.add_argument("dist", type=Path)
    parser.add_argument("wheels", type=Path, nargs="+")
    args = parser.parse_args()
    official = frozenset(canonicalize_name(name) for name in args.official)
    assemble(args.core_dir, args.dist, args.wheels, official)
