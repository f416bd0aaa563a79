"""The static host for real networks (deploy/README.md, "The static host"), in both configs:
the dev stack's :8000 and deploy/envoy.prod.yaml's static listener on its test port (TLS).

- compression: brotli or gzip for each served content type, smaller than the file and
  decoding to its exact bytes; Vary: Accept-Encoding;
- Cache-Control per file class, and revalidation: a weak ETag (the build stamp) and 304;
- CORS for the package files (any origin), isolation headers outside /lite/;
- the index page at /, and /lite redirected to /lite/;
- the simple repository at /simple/ (PEP 503 HTML; PEP 691 JSON for clients that take no
  HTML), from any origin, and pip installing an older release line from it by version.
"""

import hashlib
import http.client
import json
import re
import ssl
import subprocess
import zlib
from pathlib import Path

import pytest
import yaml
from conftest import PROD_PORTS
from helpers import BUILD, DIST, ROOT, tool

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The newest line's wheel, the one the lockfile names.
WHEEL = json.loads((DIST / "pyodide-lock.json").read_text())["packages"]["pyspark-web"]["file_name"]
# What each served content type is checked on (file extension -> a file of that kind).
COMPRESSED = {
    "wasm": "/pyodide.asm.wasm",
    "mjs": "/pyodide.asm.mjs",
    "js": "/pyodide.js",
    "json": "/pyodide-lock.json",
    "zip": "/python_stdlib.zip",
    "whl": f"/{WHEEL}",
    "html": "/examples/pyspark.html",
}
# Files that may load from any origin (README: "a custom lockfile"; the package files).
PACKAGE_FILES = [
    "/pyodide.mjs",
    "/pyodide.js",
    "/pyodide.asm.mjs",
    "/pyodide.asm.wasm",
    "/python_stdlib.zip",
    "/pyodide-lock.json",
    f"/{WHEEL}",
    "/micropip-0.11.1-py3-none-any.whl",
]


def pinned_wheels():
    """The wheels of dist-wheels.txt, by the sha256 pinned there: only these are served as
    immutable (a wheel built here keeps its name across rebuilds)."""
    hashes = set(
        re.findall(r"--hash=sha256:([0-9a-f]{64})", (ROOT / "dist-wheels.txt").read_text())
    )
    return {
        wheel.name
        for wheel in DIST.glob("*.whl")
        if hashlib.sha256(wheel.read_bytes()).hexdigest() in hashes
    }


class Host:
    """Raw HTTP to one static listener: no decoding, no redirects followed."""

    def __init__(self, name, port, context=None):
        self.name, self.port, self.context = name, port, context

    def get(self, path, headers=None, method="GET"):
        if self.context:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.context, timeout=30
            )
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            # http.client sends Accept-Encoding: identity unless told otherwise.
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def running_dev_config_is_current(scratch):
    """The stack's Envoy runs the config tools/stack.py rendered when it started; these tests
    check deploy/envoy.dev.yaml as it is now."""
    stack = tool("stack")
    running = yaml.safe_load((BUILD / "run/envoy.yaml").read_text())
    paths = stack.Paths(scratch, envoy_config=ROOT / "deploy/envoy.dev.yaml")
    committed = yaml.safe_load(stack.render_envoy_config(paths, ("127.0.0.1", 15002)).read_text())

    def static(config):
        return next(
            listener
            for listener in config["static_resources"]["listeners"]
            if listener["name"] == "static"
        )

    return static(running) == static(committed)


@pytest.fixture(scope="module", params=["dev", "prod"])
def host(request):
    if request.param == "dev":
        request.getfixturevalue("stack")
        scratch = request.getfixturevalue("tmp_path_factory").mktemp("dev-config")
        assert running_dev_config_is_current(scratch), (
            "the stack's Envoy runs an older deploy/envoy.dev.yaml: restart it "
            "(./build.sh down && ./build.sh up) to test the committed one"
        )
        return Host("dev", 8000)
    ca = request.getfixturevalue("prod_envoy")
    return Host("prod", PROD_PORTS["static"], ssl.create_default_context(cafile=str(ca)))


def file_bytes(path):
    return (DIST / path.lstrip("/")).read_bytes()


def brotli_decode(data):
    """CPython has no brotli; Node (which the browser suite runs on) has it in zlib."""
    return subprocess.run(
        [
            "node",
            "-e",
            "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))",
        ],
        input=data,
        capture_output=True,
        check=True,
    ).stdout


DECODE = {"br": brotli_decode, "gzip": lambda data: zlib.decompress(data, 16 + zlib.MAX_WBITS)}


# ---------------------------------------------------------------- compression


@pytest.mark.parametrize("encoding", ["br", "gzip"])
@pytest.mark.parametrize("kind", COMPRESSED)
def test_each_content_type_is_compressed(host, kind, encoding):
    path = COMPRESSED[kind]
    original = file_bytes(path)
    status, headers, body = host.get(path, {"Accept-Encoding": encoding})
    assert status == 200
    assert headers.get("content-encoding") == encoding, headers
    assert len(body) < len(original), f"{encoding}: {len(body)} bytes for {len(original)}"
    assert DECODE[encoding](body) == original
    assert "accept-encoding" in headers.get("vary", "").lower()


def test_brotli_is_preferred_over_gzip(host):
    # What Chromium sends over HTTPS.
    _, headers, body = host.get("/pyodide.asm.wasm", {"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert headers.get("content-encoding") == "br"
    assert brotli_decode(body) == file_bytes("/pyodide.asm.wasm")


def test_identity_when_nothing_is_accepted(host):
    status, headers, body = host.get("/pyodide.asm.mjs")
    assert status == 200 and "content-encoding" not in headers
    assert body == file_bytes("/pyodide.asm.mjs")
    assert int(headers["content-length"]) == len(body)
    # A cache in between must still tell the encodings apart.
    assert "accept-encoding" in headers.get("vary", "").lower()


def test_ranges_are_served_uncompressed(host):
    """A 206's Content-Range counts the file's bytes: compressing it would corrupt it."""
    status, headers, body = host.get(
        "/pyodide.asm.wasm", {"Accept-Encoding": "br, gzip", "Range": "bytes=100-1123"}
    )
    assert status == 206 and "content-encoding" not in headers
    assert body == file_bytes("/pyodide.asm.wasm")[100:1124]


# ---------------------------------------------------------------- cache policy


def cache_cases():
    pinned = pinned_wheels()
    assert pinned and WHEEL not in pinned
    chunk = next(
        path
        for path in sorted((DIST / "lite" / "build").glob("*.js"))
        if re.search(r"\.[0-9a-f]{7,}\.js$", path.name)
    )
    cases = {f"/{name}": IMMUTABLE for name in sorted(pinned)}
    cases.update(
        {
            f"/{WHEEL}": REVALIDATE,
            "/": REVALIDATE,
            "/pyodide.mjs": REVALIDATE,
            "/pyodide.asm.wasm": REVALIDATE,
            "/python_stdlib.zip": REVALIDATE,
            "/pyodide-lock.json": REVALIDATE,
            "/examples/pyspark.html": REVALIDATE,
            "/lite/": REVALIDATE,
            "/lite/lab/index.html": REVALIDATE,
            "/lite/jupyter-lite.json": REVALIDATE,
            "/lite/static/pyodide/pyodide.asm.wasm": REVALIDATE,
            "/lite/static/pyodide/pyodide-lock.json": REVALIDATE,
            f"/lite/pypi/{WHEEL}": REVALIDATE,
            f"/lite/static/pyodide/{WHEEL}": REVALIDATE,
            "/lite/static/pyodide/micropip-0.11.1-py3-none-any.whl": IMMUTABLE,
            "/" + str(chunk.relative_to(DIST)): IMMUTABLE,
        }
    )
    return cases


CACHE_CASES = cache_cases()


@pytest.mark.parametrize("path", CACHE_CASES)
def test_cache_control_by_file_class(host, path):
    status, headers, _ = host.get(path, {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("cache-control") == CACHE_CASES[path]


def test_every_wheel_but_ours_is_immutable(host):
    """Only wheels pinned by sha256 keep their bytes under their name: pyspark-web is rebuilt
    under the same version, and Pyodide checks the lockfile's sha256 (Subresource
    Integrity), so a stale cached copy would fail to load."""
    pinned = pinned_wheels()
    for wheel in sorted(DIST.glob("*.whl")):
        _, headers, _ = host.get(f"/{wheel.name}", method="HEAD")
        expected = IMMUTABLE if wheel.name in pinned else REVALIDATE
        assert headers.get("cache-control") == expected, wheel.name


def test_errors_are_not_stored(host):
    # Even where a wheel of that name would be immutable.
    for path in ("/no-such-file.txt", "/no_such-1.0-py3-none-any.whl", "/lite/no-such.json"):
        status, headers, _ = host.get(path)
        assert status == 404 and headers.get("cache-control") == "no-store", path


# ---------------------------------------------------------------- revalidation


def stamp(tree):
    return (DIST / tree / ".stamp").read_text().strip()


@pytest.mark.parametrize(
    "path, tree",
    [
        ("/pyodide.asm.wasm", "."),
        ("/pyodide-lock.json", "."),
        ("/", "."),
        (f"/{WHEEL}", "."),
        ("/lite/lab/index.html", "lite"),
        ("/lite/jupyter-lite.json", "lite"),
    ],
)
@pytest.mark.parametrize("encoding", ["identity", "gzip", "br"])
def test_revalidation_answers_304(host, path, tree, encoding):
    status, headers, body = host.get(path, {"Accept-Encoding": encoding})
    assert status == 200 and body
    etag = headers.get("etag")
    # The build stamp, weak: every encoding of the file shares it.
    assert etag == f'W/"{stamp(tree)}"', headers
    # file_server sends no Last-Modified, so browsers revalidate with the ETag only.
    assert "last-modified" not in headers

    status, again, body = host.get(path, {"Accept-Encoding": encoding, "If-None-Match": etag})
    assert status == 304 and body == b""
    assert again.get("etag") == etag
    assert again.get("cache-control") == REVALIDATE
    assert "accept-encoding" in again.get("vary", "").lower()
    # The strong form and a list match too (weak comparison).
    strong = etag.removeprefix("W/")
    status, _, _ = host.get(path, {"If-None-Match": f'"other", {strong}'})
    assert status == 304


def test_another_etag_gets_the_file(host):
    status, headers, body = host.get("/pyodide-lock.json", {"If-None-Match": 'W/"0123abcd"'})
    assert status == 200 and body == file_bytes("/pyodide-lock.json")
    assert headers["etag"] == f'W/"{stamp(".")}"'


def test_304_keeps_the_routes_headers(host):
    path = "/pyodide-lock.json"
    _, first, _ = host.get(path)
    _, headers, _ = host.get(path, {"If-None-Match": first["etag"], "Origin": "http://a.test"})
    assert headers["access-control-allow-origin"] == "*"
    assert headers["cross-origin-resource-policy"] == "cross-origin"
    if host.name == "prod":
        assert headers["strict-transport-security"].startswith("max-age=")


# ---------------------------------------------------------------- CORS and isolation


@pytest.mark.parametrize("path", PACKAGE_FILES)
def test_package_files_load_from_any_origin(host, path):
    status, headers, _ = host.get(path, {"Origin": "http://127.0.0.1:5173"})
    assert status == 200
    assert headers.get("access-control-allow-origin") == "*"
    assert headers.get("cross-origin-resource-policy") == "cross-origin"
    # Still isolated, as before (the pages of this origin that load them are).
    assert headers.get("cross-origin-embedder-policy") == "require-corp"


@pytest.mark.parametrize("path", ["/", "/examples/pyspark.html", "/lite/lab/index.html"])
def test_pages_get_no_cors(host, path):
    _, headers, _ = host.get(path, {"Origin": "http://127.0.0.1:5173"})
    assert "access-control-allow-origin" not in headers


def test_lite_is_served_without_isolation(host):
    _, headers, _ = host.get("/lite/lab/index.html")
    assert "cross-origin-opener-policy" not in headers
    assert "cross-origin-embedder-policy" not in headers
    _, headers, _ = host.get("/examples/pyspark.html")
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"


# ---------------------------------------------------------------- index and redirect


def test_index_page_links_the_ways_in(host):
    status, headers, body = host.get("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert body == file_bytes("/index.html")
    links = re.findall(r'href="([^"]+)"', body.decode())
    assert set(links) >= {
        "./lite/lab/index.html?path=demo.ipynb",
        "examples/pyspark.html",
        "pyodide-lock.json",
        "simple/",
    }
    for link in links:
        status, _, _ = host.get("/" + link.removeprefix("./"))
        assert status == 200, link


@pytest.mark.parametrize(
    "path, location",
    [
        ("/lite", "/lite/"),
        ("/lite?path=demo.ipynb", "/lite/?path=demo.ipynb"),
        ("/lite/lab", "/lite/lab/"),
    ],
)
def test_lite_without_slash_redirects(host, path, location):
    status, headers, body = host.get(path)
    assert status == 301
    assert re.sub(r"^https?://[^/]+", "", headers["location"]) == location
    # The page it lands on is JupyterLite's, not an empty one.
    status, _, body = host.get(location)
    assert status == 200 and b"jupyter-config-data" in body


def test_index_html_is_not_copied_into_the_kernels_pyodide():
    """build.sh copies dist/'s top-level files into the JupyterLite site's Pyodide."""
    assert (DIST / "index.html").is_file()
    assert not Path(DIST / "lite" / "static" / "pyodide" / "index.html").exists()


# ---------------------------------------------------------------- the simple repository

MICROPIP_ACCEPT = "application/vnd.pypi.simple.v1+json, */*;q=0.01"  # micropip 0.11
PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)


@pytest.mark.parametrize("accept", [None, MICROPIP_ACCEPT, PIP_ACCEPT, "text/html"])
def test_simple_pages_are_html_for_clients_that_take_html(host, accept):
    """micropip asks for JSON first but resolves no relative URL in it: it, pip and browsers
    get the HTML form, whose links they resolve against the page."""
    for path in ("/simple/", "/simple/pyspark-web/"):
        status, headers, body = host.get(path, {"Accept": accept} if accept else {})
        assert status == 200 and headers["content-type"].startswith("text/html"), path
        assert body == file_bytes(path + "index.html")
        assert "Accept" in headers.get("vary", ""), path
        assert headers.get("access-control-allow-origin") == "*"


def test_simple_pages_are_json_for_json_only_clients(host):
    for path in ("/simple/", "/simple/pyspark-web/"):
        status, headers, body = host.get(path, {"Accept": "application/vnd.pypi.simple.v1+json"})
        assert status == 200, path
        assert headers["content-type"] == "application/vnd.pypi.simple.v1+json"
        assert json.loads(body) == json.loads(file_bytes(path + "index.json"))
        assert "Accept" in headers.get("vary", "")


def test_simple_without_slash_redirects(host):
    status, headers, _ = host.get("/simple")
    assert status == 301 and re.sub(r"^https?://[^/]+", "", headers["location"]) == "/simple/"


def test_simple_links_reach_the_wheels(host):
    """Every link of the project page, resolved against it, answers with the wheel whose
    sha256 the link carries."""
    from urllib.parse import urljoin

    _, _, body = host.get("/simple/pyspark-web/")
    links = re.findall(r'href="([^"#]+)#sha256=([0-9a-f]{64})"', body.decode())
    assert len(links) == len(list(DIST.glob("pyspark_web-*.whl"))) >= 3
    for link, sha256 in links:
        status, _, wheel = host.get(urljoin("/simple/pyspark-web/", link))
        assert status == 200 and hashlib.sha256(wheel).hexdigest() == sha256, link


def test_pip_installs_an_older_line_by_version(stack, tmp_path):
    """pip (the JSON-or-HTML client of record) picks a line by version from the dev host."""
    import sys

    from helpers import release_lines

    line, (version, _) = list(release_lines().items())[-1]  # the oldest line
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--isolated",
            "--no-deps",
            "--index-url",
            "http://127.0.0.1:8000/simple",
            "--dest",
            str(tmp_path),
            f"pyspark-web=={line}.*",
        ],
        check=True,
        timeout=120,
    )
    assert [p.name for p in tmp_path.iterdir()] == [f"pyspark_web-{version}-py3-none-any.whl"]
