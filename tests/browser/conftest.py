"""pytest-pyodide set-up: Pyodide from dist/, offline, on loopback only.

- Chromium (Debian chromium + chromedriver, through selenium) resolves every host name to
  nothing except 127.0.0.1, so a request that leaves the machine fails loudly.
- Node preloads block_net.cjs, which makes fetch and sockets to any other host throw.
- The web server that serves dist/ to Chromium binds 127.0.0.1 (pytest-pyodide's own
  binds every interface).
"""

import functools
import http.server
import os
import tempfile
import threading
from pathlib import Path

import pytest
from helpers import CHROME_FLAGS
from pytest_pyodide import get_global_config
from pytest_pyodide.fixture import selenium_jspi_inner
from pytest_pyodide.server import DefaultHandler

HERE = Path(__file__).resolve().parent

os.environ.setdefault("SE_CHROMEDRIVER", "/usr/bin/chromedriver")
os.environ.setdefault("SE_OFFLINE", "true")

NODE_FLAGS = [f"--require={HERE / 'block_net.cjs'}"]


def pytest_configure(config):
    settings = get_global_config()
    settings.set_flags("chrome", CHROME_FLAGS)
    settings.set_flags("node", NODE_FLAGS)


def _serve_dist(dist_dir):
    log_path = Path(tempfile.mkdtemp()) / "http-server.log"
    handler = functools.partial(DefaultHandler, directory=str(dist_dir), extra_headers={})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1], log_path
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def web_server_main(request):
    yield from _serve_dist(request.config.option.dist_dir)


@pytest.fixture(scope="session")
def web_server_secondary(request):
    yield from _serve_dist(request.config.option.dist_dir)


@pytest.fixture(scope="module")
def selenium_jspi_module(request, runtime, web_server_main, playwright_browsers):
    """One JSPI-enabled runtime for a whole module (pytest-pyodide's is per test)."""
    yield from selenium_jspi_inner(request, runtime, web_server_main, playwright_browsers)


def pytest_collection_modifyitems(config, items):
    # pytest-pyodide runs workers in browsers only (its worker fixtures skip on Node), and
    # DevTools exists only in Chromium: leave those combinations out instead of reporting
    # them as skipped. Tests marked node_only are covered in Chromium in another form.
    selected, deselected = [], []
    for item in items:
        needs_worker = any(name.endswith("_worker") for name in getattr(item, "fixturenames", ()))
        browser_only = needs_worker or item.get_closest_marker("chromium_only") is not None
        callspec = getattr(item, "callspec", None)
        runtime = callspec.params.get("runtime") if callspec else None
        node_only = item.get_closest_marker("node_only") is not None and runtime == "chrome"
        (deselected if (browser_only and "[node" in item.nodeid) or node_only else selected).append(
            item
        )
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
