"""pyspark-web loads from dist/ in Pyodide (headless Chromium and Node), offline.

Each test runs once per runtime (--runtime=chrome,node in pytest.ini).
"""

import json

import pytest
from helpers import release_lines
from pytest_pyodide import run_in_pyodide

HEAVY = ["numpy", "pandas", "pyarrow", "grpc", "grpc_status", "zstandard"]


@run_in_pyodide
def import_client(selenium, heavy):
    import sys

    import pyspark.sql.connect.client.core
    import pyspark.sql.connect.session
    from pyspark.sql.connect import grpc_compat
    from pyspark.sql.connect.functions import col, lit

    import pyspark_web

    assert sys.platform == "emscripten"
    assert str(col("x")) == "Column<'x'>" and str(lit(1)) == "Column<'1'>"
    assert pyspark.sql.connect.session.SparkSession.builder is not None
    assert grpc_compat.HAVE_GRPCIO is False
    return {
        "loaded": sorted(m for m in heavy if m in sys.modules),
        "version": pyspark_web.__version__,
        "client": pyspark.sql.connect.client.core.__file__,
    }


def lock_file_name(selenium, name):
    return selenium.run_js(f"return pyodide._api.lockfile_packages[{json.dumps(name)}].file_name")


def test_load_package_from_lockfile(selenium, lock):
    assert lock_file_name(selenium, "pyspark-web") == lock["packages"]["pyspark-web"]["file_name"]
    selenium.run_js('await pyodide.loadPackage("pyspark-web")')
    result = import_client(selenium, HEAVY)
    assert result["loaded"] == []
    assert result["version"] == lock["packages"]["pyspark-web"]["version"]
    assert result["client"].endswith("site-packages/pyspark/sql/connect/client/core.py")


def test_micropip_install_resolves_from_lockfile(selenium, lock):
    selenium.load_package("micropip")

    @run_in_pyodide
    async def install(selenium):
        import micropip

        await micropip.install("pyspark-web")
        # source "pyodide": installed from the lockfile, not from an index.
        return {
            name: [package.version, package.source]
            for name, package in micropip.list().items()
            if name in ("pyspark-web", "protobuf", "googleapis-common-protos", "urllib3")
        }

    installed = install(selenium)
    expected = {
        name: [lock["packages"][name]["version"], "pyodide"]
        for name in ("pyspark-web", "protobuf", "googleapis-common-protos", "urllib3")
    }
    assert installed == expected
    assert import_client(selenium, HEAVY)["loaded"] == []


FETCH = """
const out = [];
for (const url of %s) {
    try { const r = await fetch(url, {cache: "no-store"}); out.push("ok " + r.status); }
    catch (e) { out.push("failed: " + e); }
}
return out;
"""


def test_only_127_0_0_1_is_reachable(selenium, web_server_main):
    """The same loopback server answers as 127.0.0.1 but not under another name."""
    _, port, _ = web_server_main
    urls = [
        f"http://127.0.0.1:{port}/pyodide-lock.json",
        f"http://localhost:{port}/pyodide-lock.json",
    ]
    direct, by_name = selenium.run_js(FETCH % json.dumps(urls))
    assert direct == "ok 200"
    assert by_name.startswith("failed: ")


def test_requests_leaving_loopback_fail(selenium, lock):
    """The official URL of a package not in dist/ cannot be loaded, and says so."""
    url = lock["packages"]["regex"]["file_name"]
    assert url.startswith("https://")
    with pytest.raises(Exception, match="regex|Failed|blocked|fetch"):
        selenium.load_package("regex")
    [outcome] = selenium.run_js(FETCH % json.dumps([url]))
    assert outcome.startswith("failed: ")


OLDER_LINES = list(release_lines())[1:]


@pytest.mark.parametrize("line", OLDER_LINES)
def test_micropip_installs_a_release_line_by_version(selenium_standalone, stack, line):
    """README, "Release lines": another line than the lockfile's, picked by version from the
    static host's simple index (another origin than the page's), offline. It imports with
    none of the heavy packages, and its pyspark is the line's upstream release. A fresh
    runtime per line: micropip keeps the first line it installed."""
    selenium = selenium_standalone
    version, upstream = release_lines()[line]
    selenium.load_package("micropip")

    @run_in_pyodide
    async def install(selenium, spec, index):
        import micropip

        await micropip.install(spec, index_urls=[index])
        import pyspark.version

        package = micropip.list()["pyspark-web"]
        return [package.version, package.source, pyspark.version.__version__]

    installed = install(selenium, f"pyspark-web=={line}.*", "http://127.0.0.1:8000/simple")
    assert installed[0] == version and installed[2] == upstream
    assert installed[1] != "pyodide", "installed from the lockfile, not from the index"
    result = import_client(selenium, HEAVY)
    assert result["loaded"] == [] and result["version"] == version
