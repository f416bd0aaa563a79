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

Where several wheels of one package are given (pyspark-web's release lines), the newest
version takes the lock entry; the others are files of dist/ all the same. Every wheel of
dist/ is also listed in a simple repository (PEP 503 HTML and PEP 691 JSON) under
dist/simple/, so that an installer can pick a version offline:
``micropip.install("pyspark-web==4.1.*", index_urls=["<site>/simple"])``.

``--official NAME`` (repeatable) keeps the official entry of a package that a wheel here
would replace: a site with internet access can take the official compiled protobuf (upb)
instead of the pure-Python wheel (see README, "Start-up and protobuf").

Usage: python tools/assemble_dist.py [--official NAME ...] CORE_DIR DIST_DIR WHEEL [WHEEL ...]
"""

import argparse
import hashlib
import html
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
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide.d.ts",
    "ffi.d.ts",
    "package.json",
)
# Emscripten's loader of pyodide.asm.wasm: an ES module since Pyodide 314, a classic script
# up to 0.29 (the second index, dist-pyodide-0.29/). The core has exactly one of them.
ASM_LOADERS = ("pyodide.asm.mjs", "pyodide.asm.js")

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
  <li><a href="simple/">simple/</a>: every wheel here, every release line of pyspark-web
    among them, as a package index: <code>micropip.install("pyspark-web==4.1.*",
    index_urls=["&lt;this site&gt;/simple"])</code></li>
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
    loaders = [name for name in ASM_LOADERS if (core_dir / name).is_file()]
    if not loaders:
        raise SystemExit(f"error: neither of {', '.join(ASM_LOADERS)} is in {core_dir}")
    for name in (*CORE_FILES, *loaders):
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
    # Oldest first, so that the newest version of each package writes its lock entry last.
    for wheel in sorted(wheels, key=lambda wheel: parse_wheel_filename(wheel.name)[1]):
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

    write_simple_index(dist)
    lock["packages"] = dict(sorted(packages.items()))
    (dist / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    (dist / "index.html").write_text(
        INDEX_PAGE.format(pyodide=version, version=packages.get("pyspark-web", {}).get("version"))
    )


SIMPLE_HTML = """<!doctype html>
<meta charset="utf-8">
<meta name="pypi:repository-version" content="1.0">
<title>{title}</title>
{links}
"""


def requires_python(wheel: Path) -> str | None:
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(metadata).decode()).get("Requires-Python")


def write_simple_index(dist: Path) -> None:
    """dist/simple/: the root and one page per project (PEP 503 index.html and PEP 691
    index.json; the static host answers with the JSON form when it is asked for), linking
    to the wheels at the top of dist/ with their sha256 and Requires-Python."""
    projects: dict[str, list[dict]] = {}
    for wheel in sorted(dist.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        projects.setdefault(canonicalize_name(name), []).append(
            {
                "filename": wheel.name,
                "url": f"../../{wheel.name}",
                "hashes": {"sha256": sha256_of(wheel)},
                "requires-python": requires_python(wheel),
                "version": version,
            }
        )
    simple = dist / "simple"
    simple.mkdir()
    meta = {"api-version": "1.0"}
    for name, files in projects.items():
        files.sort(key=lambda file: file.pop("version"))
        (simple / name).mkdir(parents=True)
        links = []
        for file in files:
            attribute = ""
            if file["requires-python"]:
                attribute = f' data-requires-python="{html.escape(file["requires-python"])}"'
            else:
                del file["requires-python"]
            links.append(
                f'<a href="{file["url"]}#sha256={file["hashes"]["sha256"]}"{attribute}>'
                f"{file['filename']}</a><br>"
            )
        (simple / name / "index.html").write_text(
            SIMPLE_HTML.format(title=f"Links for {name}", links="\n".join(links))
        )
        (simple / name / "index.json").write_text(
            json.dumps({"meta": meta, "name": name, "files": files}, indent=1) + "\n"
        )
    links = [f'<a href="{name}/">{name}</a><br>' for name in sorted(projects)]
    (simple / "index.html").write_text(
        SIMPLE_HTML.format(title="Simple index", links="\n".join(links))
    )
    listing = {"meta": meta, "projects": [{"name": name} for name in sorted(projects)]}
    (simple / "index.json").write_text(json.dumps(listing, indent=1) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__.strip().splitlines()[-1])
    parser.add_argument("--official", action="append", default=[])
    parser.add_argument("core_dir", type=Path)
    parser.add_argument("dist", type=Path)
    parser.add_argument("wheels", type=Path, nargs="+")
    args = parser.parse_args()
    official = frozenset(canonicalize_name(name) for name in args.official)
    assemble(args.core_dir, args.dist, args.wheels, official)
