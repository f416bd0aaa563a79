"""dist/ is a Pyodide package index that never needs the network for our packages."""

import hashlib
import json
import re

from helpers import DIST, ROOT, release_lines

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
    local = set()
    for key, entry in lock["packages"].items():
        name = entry["file_name"]
        if "://" in name:
            assert name.startswith("https://") and official in name, (key, name)
            continue
        path = DIST / name
        assert path.is_file(), f"{key}: {name} is not in dist/"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], key
        local.add(name)
    # Every wheel has its entry, but the older release lines of pyspark-web (/simple/ only).
    newest = lock["packages"]["pyspark-web"]["file_name"]
    older_lines = {p.name for p in DIST.glob("pyspark_web-*.whl")} - {newest}
    assert len(older_lines) == len(release_lines()) - 1
    assert local == {p.name for p in DIST.glob("*.whl")} - older_lines


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


def test_every_release_line_is_in_dist_and_the_newest_in_the_lock(lock):
    lines = release_lines()
    for version, _ in lines.values():
        assert (DIST / f"pyspark_web-{version}-py3-none-any.whl").is_file(), version
    newest = next(iter(lines.values()))[0]
    assert lock["packages"]["pyspark-web"]["version"] == newest
    assert sorted(DIST.glob("pyspark_web-*.whl")) == sorted(
        DIST / f"pyspark_web-{version}-py3-none-any.whl" for version, _ in lines.values()
    )


def simple_links(page):
    return re.findall(r'<a href="([^"#]+)#sha256=([0-9a-f]{64})"([^>]*)>([^<]+)</a>', page)


def test_simple_index_lists_every_wheel_with_its_sha256():
    """dist/simple/ (PEP 503 HTML, PEP 691 JSON): a page per project of dist/, each linking
    every wheel of it at the top of dist/, with its sha256 and Requires-Python."""
    from email.parser import Parser
    from zipfile import ZipFile

    from packaging.utils import canonicalize_name, parse_wheel_filename

    wheels = sorted(DIST.glob("*.whl"))
    projects = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w in wheels}
    root = json.loads((DIST / "simple/index.json").read_text())
    assert root["meta"] == {"api-version": "1.0"}
    assert {p["name"] for p in root["projects"]} == projects
    root_links = (DIST / "simple/index.html").read_text()
    assert sorted(f'<a href="{name}/">' for name in projects) == sorted(
        f'<a href="{link}">' for link in re.findall(r'<a href="([^"]+)">', root_links)
    )
    listed = {}
    for name in projects:
        page = json.loads((DIST / f"simple/{name}/index.json").read_text())
        assert page["name"] == name
        html = simple_links((DIST / f"simple/{name}/index.html").read_text())
        assert [(f["url"], f["hashes"]["sha256"], f["filename"]) for f in page["files"]] == [
            (url, sha, filename) for url, sha, _, filename in html
        ]
        for file in page["files"]:
            wheel = DIST / "simple" / name / file["url"]
            assert wheel.resolve() == (DIST / file["filename"]).resolve()
            assert hashlib.sha256(wheel.read_bytes()).hexdigest() == file["hashes"]["sha256"]
            with ZipFile(wheel) as archive:
                [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
                wanted = Parser().parsestr(archive.read(metadata).decode()).get("Requires-Python")
            assert file.get("requires-python") == wanted, file["filename"]
            listed[file["filename"]] = name
    assert sorted(listed) == sorted(w.name for w in wheels)
