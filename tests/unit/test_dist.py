"""dist/ is a Pyodide package index that never needs the network for our packages."""

import hashlib
import json

from helpers import DIST, ROOT

CORE_FILES = [
    "pyodide.mjs",
    "pyodide.js",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
]


def pyodide_version():
    return json.loads((ROOT / "package.json").read_text())["dependencies"]["pyodide"]


def test_core_files_are_the_pinned_npm_release():
    for name in CORE_FILES:
        assert (DIST / name).is_file(), name
    assert json.loads((DIST / "package.json").read_text())["version"] == pyodide_version()


def test_every_entry_is_local_with_its_sha256_or_official_url(lock):
    official = f"/pyodide/v{pyodide_version()}/full/"
    local = 0
    for key, entry in lock["packages"].items():
        name = entry["file_name"]
        if "://" in name:
            assert name.startswith("https://") and official in name, (key, name)
            continue
        path = DIST / name
        assert path.is_file(), f"{key}: {name} is not in dist/"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], key
        local += 1
    assert local == len(list(DIST.glob("*.whl")))


def test_local_entries_resolve_their_dependencies_locally(lock):
    packages = lock["packages"]
    for key, entry in packages.items():
        if "://" in entry["file_name"]:
            continue
        for dep in entry["depends"]:
            assert "://" not in packages[dep]["file_name"], f"{key} needs {dep} from the network"


def test_pyspark_web_entry(lock):
    entry = lock["packages"]["pyspark-web"]
    assert entry["imports"] == ["pyspark", "pyspark_web"]
    assert set(entry["depends"]) == {"protobuf", "googleapis-common-protos", "urllib3"}
    assert entry["package_type"] == "package" and entry["install_dir"] == "site"
    # protobuf must be new enough for the generated _pb2 modules of pyspark 4.2.
    version = tuple(int(x) for x in lock["packages"]["protobuf"]["version"].split(".")[:2])
    assert version >= (6, 33)


def test_heavy_packages_stay_reachable_for_real_browsers(lock):
    for name in ("numpy", "pandas", "pyarrow"):
        assert lock["packages"][name]["file_name"].startswith("https://")
