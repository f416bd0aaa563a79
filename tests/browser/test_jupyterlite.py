"""The JupyterLite site (dist/lite, served by the stack at /lite/) runs the demo notebook
end to end in the real JupyterLab UI in headless Chromium, offline."""

import json

import pytest
from helpers import BUILD, DIST, restart_stack, run_demo_check

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
    assert (
        "cross-origin-embedder-policy" not in headers
        and "cross-origin-opener-policy" not in headers
    )
    settings = json.loads(body)["jupyter-config-data"]["litePluginSettings"][
        "@jupyterlite/pyodide-kernel-extension:kernel"
    ]
    assert (
        settings["pyodideUrl"] == "./static/pyodide/pyodide.mjs"
        and settings["disablePyPIFallback"] is True
    )
    # The kernel's Pyodide is ours: same lockfile as dist/.
    _, _, lock = get("/lite/static/pyodide/pyodide-lock.json")
    assert json.loads(lock) == json.loads((DIST / "pyodide-lock.json").read_text())
    # The rest of the static host keeps its isolation headers.
    assert get("/pyodide.mjs")[1]["cross-origin-embedder-policy"] == "require-corp"


def run_demo(screenshot, report_file):
    """tools/demo_check.py: every cell of the demo notebook in the JupyterLab UI; its report."""
    return run_demo_check(report_file, "--screenshot", str(screenshot))


def test_demo_notebook_runs_in_the_jupyterlite_ui():
    screenshot, report_file = BUILD / "demo.png", BUILD / "demo-check.json"
    report = run_demo(screenshot, report_file)
    texts = [cell["text"] for cell in report["cells"]]
    joined = "\n".join(texts)
    assert report["foreign_requests"] == []
    assert "Connected to Spark 4.3.0" in joined
    assert "hello from Spark 4.3.0" in joined
    assert all(name in joined for name in ("Ada", "Grace", "Linus")) and "rank" in joined
    # Eager evaluation: the bare DataFrame expression renders as an HTML table.
    tables = [
        "".join(output["data"]["text/html"])
        for cell in report["cells"]
        for output in cell["outputs"]
        if output.get("output_type") == "execute_result" and "text/html" in output.get("data", {})
    ]
    assert any(
        "<table" in table and "<th>revenue</th>" in table and "<th>rank</th>" in table
        for table in tables
    ), tables
    assert "error class: TABLE_OR_VIEW_NOT_FOUND" in joined and "SQL state:   42P01" in joined
    # The long query's live progress bar ended as a one-line summary of its 16 tasks.
    summaries = [
        "".join(output["data"]["text/html"])
        for cell in report["cells"]
        for output in cell["outputs"]
        if output.get("output_type") == "display_data"
        and "pyspark-web-progress-done" in "".join(output["data"].get("text/html", ""))
    ]
    assert any("1 stage · 16 tasks" in summary for summary in summaries), summaries
    assert "rows: 16" in joined
    # Python functions from the browser (Python 3.14) ran on 3.11 workers.
    assert "Spark's workers run Python 3.11" in joined
    assert all(band in joined for band in ("small", "medium", "large"))
    assert "|browser|     7|" in joined
    assert "PYTHON_VERSION_MISMATCH" not in joined
    assert "demo_revenue" in joined
    assert screenshot.stat().st_size > 10_000


def test_demo_notebook_runs_again_after_a_restart(tmp_path):
    # The notebook writes the table demo_revenue (mode overwrite); the catalog keeps it
    # across down/up, and the second run overwrites it.
    run_demo(tmp_path / "first.png", tmp_path / "first.json")
    restart_stack()
    report = run_demo(tmp_path / "second.png", tmp_path / "second.json")
    joined = "\n".join(cell["text"] for cell in report["cells"])
    assert "demo_revenue" in joined and "LOCATION_ALREADY_EXISTS" not in joined


def test_pip_in_the_lite_site_installs_an_older_release_line_by_version():
    """`%pip install "pyspark-web==X.Y.*"` in the JupyterLite site picks that line from the
    site's own wheels (piplite, with PyPI disabled), and its client talks to the stack. The
    install has a cell of its own: the kernel loads what a cell's imports name from the
    lockfile (the newest line) before it runs the cell (README, "Release lines")."""
    from helpers import release_lines
    from lite_ui import LiteNotebook, text_of

    line, (version, upstream) = list(release_lines().items())[-1]
    query = """from importlib.metadata import version
import pyspark
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
print("installed", version("pyspark-web"), pyspark.__version__)
print("rows", spark.range(3).count())"""
    with LiteNotebook() as notebook:
        installing = text_of(notebook.run(f'%pip install "pyspark-web=={line}.*"'))
        text = text_of(notebook.run(query))
    assert f"installed {version} {upstream}" in text, installing + text
    assert "rows 3" in text, text
