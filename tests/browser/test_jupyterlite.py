"""The JupyterLite site (dist/lite, served by the stack at /lite/) runs the demo notebook
end to end in the real JupyterLab UI in headless Chromium, offline."""

import json
import subprocess
import sys

import pytest

from helpers import BUILD, DIST, ROOT

pytestmark = pytest.mark.usefixtures("stack")


def get(path):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def test_site_is_served_without_isolation_and_uses_our_pyodide():
    status, headers, body = get("/lite/jupyter-lite.json")
    assert status == 200
    assert "cross-origin-embedder-policy" not in headers and "cross-origin-opener-policy" not in headers
    settings = json.loads(body)["jupyter-config-data"]["litePluginSettings"]["@jupyterlite/pyodide-kernel-extension:kernel"]
    assert settings["pyodideUrl"] == "./static/pyodide/pyodide.mjs" and settings["disablePyPIFallback"] is True
    # The kernel's Pyodide is ours: same lockfile as dist/.
    _, _, lock = get("/lite/static/pyodide/pyodide-lock.json")
    assert json.loads(lock) == json.loads((DIST / "pyodide-lock.json").read_text())
    # The rest of the static host keeps its isolation headers.
    assert get("/pyodide.mjs")[1]["cross-origin-embedder-policy"] == "require-corp"


def test_demo_notebook_runs_in_the_jupyterlite_ui():
    screenshot, report_file = BUILD / "demo.png", BUILD / "demo-check.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/demo_check.py"), "--screenshot", str(screenshot), "--json", str(report_file)],
        capture_output=True, text=True, timeout=900,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = json.loads(report_file.read_text())
    texts = [cell["text"] for cell in report["cells"]]
    joined = "\n".join(texts)
    assert report["foreign_requests"] == []
    assert "Connected to Spark 4.3.0" in joined
    assert "hello from Spark 4.3.0" in joined
    assert all(name in joined for name in ("Ada", "Grace", "Linus")) and "rank" in joined
    # Eager evaluation: the bare DataFrame expression renders its rows.
    assert "| name|orders|revenue|rank|" in joined
    assert "error class: TABLE_OR_VIEW_NOT_FOUND" in joined and "SQL state:   42P01" in joined
    assert "progress:" in joined and "rows: 16" in joined
    assert "demo_revenue" in joined
    assert screenshot.stat().st_size > 10_000
