"""pyspark-web on Pyodide 0.29 (Python 3.13): the second package index, dist-pyodide-0.29/
(the npm pyodide 0.29 core of packaging/pyodide-0.29/, its lock rewritten by
tools/assemble_dist.py, the same pure-Python wheels as dist/).

Each runtime boots once for the module, from a loopback server of its own that serves
dist-pyodide-0.29/ (the stack's static host serves only dist/):

- headless Chromium (selenium, Debian chromedriver), every host name but 127.0.0.1 resolving
  to nothing; the page's origin is that server, so grpc-web to the stack's Envoy is a CORS
  request (deploy/envoy.dev.yaml allows any port of 127.0.0.1);
- Node (with block_net.cjs, and JSPI behind --experimental-wasm-stack-switching on Node 20),
  driven over stdin/stdout: Pyodide from the index's files, the packages over HTTP.

Then micropip installs pyspark-web from the index's lock, and it connects, collects and
runs a Python UDF on the dev stack's workers (CPython 3.11: the portable source path) and on
a Spark Connect server of this module whose workers run CPython 3.13 (the same minor:
upstream's cloudpickle). Not parametrized by pytest-pyodide's runtime: this module drives
both runtimes itself.
"""

import functools
import http.server
import json
import os
import queue
import subprocess
import threading
import time
from email.parser import Parser
from pathlib import Path
from zipfile import ZipFile

import pytest
from helpers import CONTENT_TYPES, ROOT
from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename
from pages_server import fresh_chromium
from servers import Ports, connect_server
from servers import stack as tools_stack

pytestmark = pytest.mark.usefixtures("stack")

DIST_029 = ROOT / "dist-pyodide-0.29"
BUILD_COMMAND = "./build.sh --pyodide 0.29"
HOST = "127.0.0.1"
DEV_GRPC_WEB = f"http://{HOST}:8081"  # the dev stack: workers on CPython 3.11
SPARK_VERSION = tools_stack.SPARK_VERSION
BLOCK_NET = Path(__file__).resolve().parent / "block_net.cjs"
TIMEOUT = 300  # seconds for one step in a runtime (boot, install, a query)

TIMINGS: dict[str, float] = {}


# ---------------------------------------------------------------- the index


@pytest.fixture(scope="module")
def index():
    """dist-pyodide-0.29/'s lock; the module fails (never skips) when it was not built."""
    lock_file = DIST_029 / "pyodide-lock.json"
    if not lock_file.is_file():
        pytest.fail(
            f"{DIST_029.relative_to(ROOT)}/ is missing (no pyodide-lock.json): build it with "
            f"`{BUILD_COMMAND}`",
            pytrace=False,
        )
    return json.loads(lock_file.read_text())


def test_the_index_is_pyodide_029_with_our_wheels(index):
    info = index["info"]
    version = json.loads((DIST_029 / "package.json").read_text())["version"]
    assert version.startswith("0.29."), version
    assert info["python"].startswith("3.13."), info
    assert info["abi_version"] == "2025_0", info
    assert (DIST_029 / "pyodide.asm.js").is_file(), "0.29's Emscripten loader is a classic script"
    packages = index["packages"]
    # Ours, local files of the index; everything else stays an absolute URL (and so is
    # refused offline).
    for name in ("pyspark-web", "protobuf", "googleapis-common-protos", "urllib3", "micropip"):
        file_name = packages[name]["file_name"]
        assert "://" not in file_name and (DIST_029 / file_name).is_file(), (name, file_name)
    # The compiled protobuf of the 0.29 lock (6.31) is older than the _pb2 files need.
    assert packages["protobuf"]["version"] == "7.34.1"
    assert packages["protobuf"]["file_name"].endswith("-py3-none-any.whl")
    assert sorted(packages["pyspark-web"]["depends"]) == [
        "googleapis-common-protos",
        "protobuf",
        "urllib3",
    ]


def test_every_wheel_of_the_index_admits_its_python(index):
    python = index["info"]["python"]
    wheels = sorted(DIST_029.glob("*.whl"))
    assert any(w.name.startswith("pyspark_web-") for w in wheels)
    refused = []
    for wheel in wheels:
        _, _, _, tags = parse_wheel_filename(wheel.name)
        assert all(tag.abi == "none" and tag.platform == "any" for tag in tags), wheel.name
        with ZipFile(wheel) as archive:
            [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            metadata = Parser().parsestr(archive.read(name).decode())
        requires = metadata.get("Requires-Python") or ""
        if not SpecifierSet(requires).contains(python):
            refused.append(f"{wheel.name} (Requires-Python {requires})")
    assert not refused, f"wheels that Python {python} cannot install: {refused}"


# ---------------------------------------------------------------- serving the index


class _IndexHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str]

    def guess_type(self, path):
        return CONTENT_TYPES.get(Path(str(path)).suffix, "application/octet-stream")

    def log_message(self, *args):
        pass

    def send_response(self, code, message=None):
        self.requested.append(self.path.split("?", 1)[0])
        super().send_response(code, message)


@pytest.fixture(scope="module")
def served(index):
    """(base URL, paths requested) of a loopback server of dist-pyodide-0.29/."""
    requested: list[str] = []
    handler = functools.partial(
        type("Handler", (_IndexHandler,), {"requested": requested}), directory=str(DIST_029)
    )
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- the two runtimes

# Run once in each runtime after boot: micropip installs pyspark-web by name, which it finds
# in the index's lock (the runtime was booted with that lock).
INSTALL = """
import json, sys, time
import micropip
began = time.monotonic()
await micropip.install("pyspark-web")
installed = time.monotonic() - began

import importlib.metadata as md
_sessions = {}


def session(url):
    from pyspark.sql import SparkSession

    if url not in _sessions:
        # Not getOrCreate, which would return the session of another URL made before.
        _sessions[url] = SparkSession.builder.remote(url).create()
    return _sessions[url]


json.dumps({
    "python": list(sys.version_info[:3]),
    "installed": installed,
    "version": md.version("pyspark-web"),
    "requires_python": md.metadata("pyspark-web")["Requires-Python"],
    "versions": {name: md.version(name) for name in
                 ("protobuf", "urllib3", "googleapis-common-protos", "micropip")},
    "listed": {name: pkg.source for name, pkg in micropip.list().items()
               if name in ("pyspark-web", "protobuf", "urllib3")},
})
"""

# A Node process that boots Pyodide 0.29 and then runs each line of stdin ({"code"}) with
# runPythonAsync, answering one "@@029 {...}" line on stdout (Pyodide's own messages and
# Python's output go to stderr).
NODE_DRIVER = r"""
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const dir = process.env.PYODIDE_029_DIR, base = process.env.PYODIDE_029_URL;
const cache = process.env.PYODIDE_029_CACHE;
const answer = (value) => process.stdout.write("@@029 " + JSON.stringify(value) + "\n");
console.log = (...args) => console.error(...args);
let pyodide, count = 0;
try {
  const began = Date.now();
  const { loadPyodide } = await import(pathToFileURL(dir + "/pyodide.mjs").href);
  pyodide = await loadPyodide({
    indexURL: dir + "/",
    // Pyodide 0.29 in Node reads a lockFileURL from the file system: fetch it instead.
    lockFileContents: (await fetch(base + "/pyodide-lock.json")).text(),
    packageBaseUrl: base + "/",
    // Where Node keeps the wheels it fetched (by default: packageBaseUrl as a path).
    packageCacheDir: cache,
    stdout: (line) => process.stderr.write(line + "\n"),
    stderr: (line) => process.stderr.write(line + "\n"),
  });
  await pyodide.loadPackage("micropip");
  answer({ ok: true, value: { version: pyodide.version, ms: Date.now() - began } });
} catch (error) {
  answer({ ok: false, error: String(error && error.stack || error) });
}
for await (const line of createInterface({ input: process.stdin })) {
  const { code } = JSON.parse(line);
  try {
    const value = await pyodide.runPythonAsync(code, { filename: `cell${++count}.py` });
    answer({ ok: true, value, blocked: process.blockedRequests });
  } catch (error) {
    answer({ ok: false, error: String(error), blocked: process.blockedRequests });
  }
}
"""

BROWSER_BOOT = """
const [base, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const began = performance.now();
  const { loadPyodide } = await import(base + "/pyodide.mjs");
  window.pyodide029 = await loadPyodide({ lockFileURL: base + "/pyodide-lock.json" });
  await window.pyodide029.loadPackage("micropip");
  return { ok: true, value: { version: window.pyodide029.version, ms: performance.now() - began } };
})().then(done, (error) => done({ ok: false, error: String(error && error.stack || error) }));
"""

BROWSER_RUN = """
const [code, filename, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
window.pyodide029.runPythonAsync(code, { filename }).then(
  (value) => done({ ok: true, value }),
  (error) => done({ ok: false, error: String(error) }),
);
"""


class Runtime:
    """A booted Pyodide 0.29; ``run(code)`` runs Python (async allowed) whose last
    expression is a JSON string and returns it decoded."""

    name: str
    boot: dict
    install: dict

    def run(self, code: str):
        outcome = self._run(code)
        assert outcome["ok"], f"in Pyodide 0.29 ({self.name}):\n{outcome['error']}"
        return json.loads(outcome["value"])

    def leaked(self) -> list[str]:
        """Requests that tried to leave 127.0.0.1."""
        raise NotImplementedError


class NodeRuntime(Runtime):
    name = "node"

    def __init__(self, base: str, scratch: Path):
        env = dict(
            os.environ,
            PYODIDE_029_DIR=str(DIST_029),
            PYODIDE_029_URL=base,
            PYODIDE_029_CACHE=str(scratch),
        )
        self.process = subprocess.Popen(
            [
                "node",
                "--experimental-wasm-stack-switching",
                f"--require={BLOCK_NET}",
                "--input-type=module",
                "--eval",
                NODE_DRIVER,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(scratch),
        )
        self.lines: queue.Queue = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True).start()
        self.blocked: list[str] = []
        self.boot = self._answer()

    def _read(self, stream, protocol):
        for line in stream:
            if protocol and line.startswith("@@029 "):
                self.lines.put(json.loads(line[6:]))
            else:
                self.errors.append(line.rstrip("\n"))
        if protocol:
            self.lines.put(None)

    def _answer(self):
        try:
            outcome = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            outcome = {"ok": False, "error": f"no answer from Node within {TIMEOUT} s"}
        if outcome is None:
            outcome = {"ok": False, "error": f"Node exited {self.process.wait()}"}
        if not outcome["ok"]:
            outcome["error"] += "\nNode's stderr (end):\n" + "\n".join(self.errors[-20:])
        self.blocked = outcome.get("blocked", self.blocked)
        return outcome

    def _run(self, code):
        self.process.stdin.write(json.dumps({"code": code}) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def leaked(self):
        return list(self.blocked)

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ChromiumRuntime(Runtime):
    name = "chromium"

    def __init__(self, driver, base: str):
        self.driver, self.base, self.count = driver, base, 0
        driver.set_script_timeout(TIMEOUT)
        driver.get(f"{base}/index.html")
        self.boot = driver.execute_async_script(BROWSER_BOOT, base)

    def _run(self, code):
        self.count += 1
        return self.driver.execute_async_script(BROWSER_RUN, code, f"cell{self.count}.py")

    def leaked(self):
        urls = self.driver.execute_script(
            "return performance.getEntriesByType('resource').map((e) => e.name)"
        )
        return [url for url in urls if not url.startswith(f"http://{HOST}:")]


@pytest.fixture(scope="module", params=["chromium", "node"])
def pyodide029(request, served, tmp_path_factory):
    """Pyodide 0.29 booted from the index in one runtime, with pyspark-web installed by
    micropip (the install's outcome is checked by test_micropip_installs_pyspark_web)."""
    base, _ = served
    began = time.monotonic()
    if request.param == "node":
        runtime = NodeRuntime(base, tmp_path_factory.mktemp("node-029"))
        close = runtime.close
    else:
        browsers = fresh_chromium()
        driver = next(browsers)

        def close():
            next(browsers, None)  # fresh_chromium quits the browser after its yield

    try:
        if request.param == "chromium":
            runtime = ChromiumRuntime(driver, base)
        assert runtime.boot["ok"], f"Pyodide 0.29 did not boot in {runtime.name}: {runtime.boot}"
        TIMINGS[f"{runtime.name}: boot + micropip"] = time.monotonic() - began
        began = time.monotonic()
        runtime.install = runtime._run(INSTALL)
        TIMINGS[f"{runtime.name}: micropip.install"] = time.monotonic() - began
        yield runtime
    finally:
        close()


@pytest.fixture(scope="module", autouse=True)
def report_timings():
    yield
    if TIMINGS:
        print("\nPyodide 0.29: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


def timed(label, runtime, code):
    began = time.monotonic()
    try:
        return runtime.run(code)
    finally:
        TIMINGS[f"{runtime.name}: {label}"] = time.monotonic() - began


# ---------------------------------------------------------------- in the runtimes


def test_micropip_installs_pyspark_web(pyodide029, index, served):
    assert pyodide029.boot["value"]["version"].startswith("0.29."), pyodide029.boot
    outcome = pyodide029.install
    assert outcome["ok"], f"micropip.install('pyspark-web') failed:\n{outcome['error']}"
    found = json.loads(outcome["value"])
    assert found["python"][:2] == [3, 13]
    assert ".".join(map(str, found["python"])) == index["info"]["python"]
    assert found["version"] == index["packages"]["pyspark-web"]["version"]
    assert SpecifierSet(found["requires_python"]).contains(index["info"]["python"])
    # Our wheels, not the 0.29 lock's (protobuf 6.31.1 compiled, urllib3 2.5.0).
    assert found["versions"] == {
        name: index["packages"][name]["version"]
        for name in ("protobuf", "urllib3", "googleapis-common-protos", "micropip")
    }
    assert set(found["listed"].values()) == {"pyodide"}, found["listed"]  # from the lock
    _, requested = served
    assert f"/{index['packages']['pyspark-web']['file_name']}" in requested


def test_import(pyodide029):
    found = timed(
        "import",
        pyodide029,
        """
import json, sys
import pyspark_web
import pyspark_web.builder  # the grpc-web transport, as a session's connection loads it
import pyspark.sql.connect.session
from pyspark.sql.functions import col, udf
from google.protobuf.internal import api_implementation
json.dumps({
    "pyspark_web": pyspark_web.__version__,
    "heavy": sorted(m for m in ("numpy", "pandas", "pyarrow", "grpc") if m in sys.modules),
    "protobuf": api_implementation.Type(),
})
""",
    )
    assert found["heavy"] == []
    assert found["protobuf"] == "python"


def test_connect_collect_and_create(pyodide029):
    found = timed(
        "connect + queries",
        pyodide029,
        f"""
import json
from pyspark.sql import SparkSession
spark = _sessions[{DEV_GRPC_WEB!r}] = SparkSession.builder.remote({DEV_GRPC_WEB!r}).getOrCreate()
json.dumps({{
    "version": spark.version,
    "range": [r.id for r in spark.range(5).collect()],
    "created": [[r.id, r.s] for r in
                spark.createDataFrame([(1, "a"), (2, "b")], "id INT, s STRING").collect()],
    "channel": type(spark.client._channel).__name__,
}})
""",
    )
    assert found == {
        "version": "4.3.0",
        "range": [0, 1, 2, 3, 4],
        "created": [[1, "a"], [2, "b"]],
        "channel": "GrpcWebChannel",
    }


# Runs a lambda UDF over range(3) and records which serializer made its command: the
# portable pickler (source text, loaded by builtins.eval on the workers) or upstream's
# cloudpickle (code objects, same minor only).
UDF = """
import json
import pyspark.serializers
import pyspark_web.udf.pickler as pickler
from pyspark.sql.functions import udf
from pyspark_web.udf import worker_python

spark = session({url!r})
made = []
portable, cloudpickled = pickler.dumps, pyspark.serializers.CloudPickleSerializer.dumps


def spy_portable(obj, worker):
    data = portable(obj, worker)
    made.append(["portable", worker, b"pyspark_web_loader" in data])
    return data


def spy_cloudpickle(self, obj):
    data = cloudpickled(self, obj)
    made.append(["cloudpickle", None, b"pyspark_web_loader" in data])
    return data


pickler.dumps, pyspark.serializers.CloudPickleSerializer.dumps = spy_portable, spy_cloudpickle
try:
    rows = spark.range(3).select(udf(lambda x: x + 1, "int")("id").alias("v")).collect()
finally:
    pickler.dumps, pyspark.serializers.CloudPickleSerializer.dumps = portable, cloudpickled
json.dumps({{"rows": [r.v for r in rows], "workers": worker_python(spark), "made": made}})
"""


def test_udf_on_311_workers_travels_as_source(pyodide029):
    found = timed("UDF on 3.11 workers", pyodide029, UDF.format(url=DEV_GRPC_WEB))
    assert found["rows"] == [1, 2, 3]
    assert found["workers"] == "3.11"
    assert found["made"] == [["portable", "3.11", True]], found["made"]


def test_udf_on_313_workers_is_cloudpickled(pyodide029, spark_313):
    found = timed("UDF on 3.13 workers", pyodide029, UDF.format(url=spark_313))
    assert found["rows"] == [1, 2, 3]
    assert found["workers"] == "3.13"
    assert found["made"] == [["cloudpickle", None, False]], found["made"]


def test_nothing_left_loopback(pyodide029):
    # Last in the module: whatever ran before, no request tried to leave 127.0.0.1.
    assert pyodide029.leaked() == []


# ---------------------------------------------------------------- Spark with 3.13 workers


@pytest.fixture(scope="module")
def spark_313(tmp_path_factory):
    """Spark Connect (the dev stack's release) whose Python workers run CPython 3.13, behind
    Envoy, on ports of this module (tests/servers.py); its grpc-web URL."""
    began = time.monotonic()
    ports = Ports(connect=15022, grpc_web=18091, static=18010, admin=19921)
    with connect_server(
        tmp_path_factory.mktemp("spark-313"), SPARK_VERSION, ports, python_version="3.13"
    ) as server:
        TIMINGS["Spark + Envoy (3.13 workers) up"] = time.monotonic() - began
        yield server.grpc_web
