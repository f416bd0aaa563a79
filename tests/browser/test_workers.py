"""Web Workers without JSPI, and the plain-page example, in headless Chromium driven
directly with selenium (pytest-pyodide cannot hide JSPI from its workers).

- worker, no JSPI, page not isolated: urllib3 blocks with synchronous XHR (whole responses);
- worker, no JSPI, page cross-origin isolated (COOP + COEP): urllib3 streams through its
  helper worker and SharedArrayBuffer;
- examples/pyspark.html as served by the stack's static host (README's plain page).
Every request that leaves 127.0.0.1 is blocked, as in the other browser tests.
"""

import http.server
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers import CHROME_FLAGS, CONTENT_TYPES, DIST
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

pytestmark = pytest.mark.usefixtures("stack")
PAGES = Path(__file__).resolve().parent / "pages"


class Handler(http.server.SimpleHTTPRequestHandler):
    """/dist/... from dist/, /pages/... from tests/browser/pages, optional isolation."""

    isolated = False

    def translate_path(self, path):
        path = path.split("?", 1)[0]
        for prefix, root in (("/dist/", DIST), ("/pages/", PAGES)):
            if path.startswith(prefix):
                return str(root / path[len(prefix) :])
        return str(PAGES / "missing")

    def guess_type(self, path):
        return CONTENT_TYPES.get(Path(str(path)).suffix, "application/octet-stream")

    def end_headers(self):
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
        super().end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "isolated"])
def pages(request):
    handler = type(
        "IsolatedHandler" if request.param else "PlainHandler",
        (Handler,),
        {"isolated": request.param},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield request.param, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def chrome():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new",
        "--no-sandbox",
        *CHROME_FLAGS,
        f"--user-data-dir={tempfile.mkdtemp()}",
    ]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    yield driver
    driver.quit()


def wait_for(driver, script, seconds=240):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(
        f"no result after {seconds} s; console: "
        f"{driver.get_log('browser')[-5:] if hasattr(driver, 'get_log') else ''}"
    )


def test_worker_without_jspi(chrome, pages):
    isolated, base = pages
    chrome.get(f"{base}/pages/worker.html?jspi=0&url=http://127.0.0.1:8081")
    assert chrome.execute_script("return self.crossOriginIsolated") is isolated
    result = wait_for(chrome, "return window.result")
    assert "error" not in result, result["error"]
    assert result["mode"] == ("worker-streaming" if isolated else "worker-sync-xhr")
    assert (result["rows"], result["last"]) == (70000, 69999)
    assert result["show"] == "+---+---+\n|  x|  y|\n+---+---+\n|  1|  a|\n+---+---+\n"


def test_plain_page_example(chrome):
    chrome.get("http://127.0.0.1:8000/examples/pyspark.html")
    title = wait_for(chrome, "return ['done', 'failed'].includes(document.title) && document.title")
    output = chrome.execute_script("return document.getElementById('output').textContent")
    assert title == "done", output
    assert "|  1|     1|" in output and "| 10|   100|" in output
    assert "sum of squares: 385" in output
    # A UDF from the page (Python 3.14) on the 3.11 workers.
    assert "by parity: [Row(p='even', count=5), Row(p='odd', count=5)]" in output


def test_custom_lockfile_page(chrome, pages):
    _, base = pages
    chrome.get(f"{base}/pages/lockfile.html")
    assert wait_for(chrome, "return window.result") == "2"
