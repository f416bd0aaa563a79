"""README's second way from another origin: a page on a second loopback origin loads
Pyodide and the packages from the dev stack's static host (http://127.0.0.1:8000/, its
lockfile with lockFileURL) and runs a query through http://127.0.0.1:8081.

This needs the package files served with Access-Control-Allow-Origin (module scripts,
fetch() of the wasm, the stdlib, the lockfile and the wheels are all CORS requests from
another origin) and, on an isolated page, Cross-Origin-Resource-Policy. Chromium only: Node
has no origins and does no CORS checks. Every request stays on 127.0.0.1.
"""

import pytest
from pages_server import fresh_chromium, serve_pages, wait_for

pytestmark = pytest.mark.usefixtures("stack")
STATIC_HOST = "http://127.0.0.1:8000/"
GRPC_WEB = "http://127.0.0.1:8081"


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "isolated"])
def second_origin(request):
    yield from serve_pages(request.param)


@pytest.fixture(scope="module")
def chrome():
    yield from fresh_chromium()


# Pyodide itself from the static host too, or from the page's own origin (README: "Pyodide
# from anywhere"); the packages come from the static host's lockfile either way.
@pytest.mark.parametrize("pyodide", [STATIC_HOST, "/dist/"], ids=["index", "own-pyodide"])
def test_packages_load_from_the_static_host(chrome, second_origin, pyodide):
    isolated, base = second_origin
    chrome.get(
        f"{base}/pages/cross_origin.html?index={STATIC_HOST}&pyodide={pyodide}&url={GRPC_WEB}"
    )
    assert chrome.execute_script("return self.crossOriginIsolated") is isolated
    result = wait_for(chrome, "return window.result || null")
    console = [e["message"][:300] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    assert "error" not in result, (
        f"{result['error']}; console: {console[-5:]} (does the stack's Envoy run the "
        "committed deploy/envoy.dev.yaml? ./build.sh down && ./build.sh up)"
    )
    assert result["value"] == "1"
    # The wheels came from the static host, across origins.
    assert any(name.endswith(".whl") and "pyspark_web-" in name for name in result["wheels"])
    assert all(name.startswith(STATIC_HOST) for name in result["wheels"]), result["wheels"]
