"""Web Workers without JSPI, and the plain-page example, in headless Chromium driven
directly with selenium (pytest-pyodide cannot hide JSPI from its workers).

- worker, no JSPI, page not isolated: urllib3 blocks with synchronous XHR (whole responses);
- worker, no JSPI, page cross-origin isolated (COOP + COEP): urllib3 streams through its
  helper worker and SharedArrayBuffer;
- examples/pyspark.html as served by the stack's static host (README's plain page).
Every request that leaves 127.0.0.1 is blocked, as in the other browser tests.
"""

import pytest
from pages_server import fresh_chromium, serve_pages, wait_for

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "isolated"])
def pages(request):
    yield from serve_pages(request.param)


@pytest.fixture(scope="module")
def chrome():
    yield from fresh_chromium()


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
