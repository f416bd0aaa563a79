"""PySpark in headless Chromium against the native client: the goals of issue 14, each
phase and each ratio measured in one run on one machine.

    build/venv-test/bin/python bench/bench_browser.py [--rounds 3]   (./build.sh bench browser)

Needs the stack (./build.sh up) and dist/ (./build.sh build). Serves dist/ and bench/pages/
from a loopback server and, in rounds, opens in a fresh Chromium profile each (empty cache)
bare_boot.html (loadPyodide alone, the reference) and cold_start.html (boot, package load,
import, session, first collect). The last cold-start page then measures the main thread
(JSPI): the median of 30 small collects after 5 warm-ups, the requests per collect (Envoy's
counter and pyspark-web's own, by method) and a range(1e6) (id, string) collect (median of
3 after a warm-up); worker.html does the same in a Web Worker with JSPI and with synchronous
XHR, and bench/native_client.py on CPython over native gRPC. One browser or client at a
time: the machine has 2 cores. Prints markdown tables for BENCHMARKS.md; progress, and the
pages' console errors, go to stderr.
"""

import argparse
import contextlib
import datetime
import http.server
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "bench/pages"
DIST = ROOT / "dist"
sys.path.insert(0, str(ROOT / "tests"))
from helpers import CHROME_FLAGS, CONTENT_TYPES, STOCK_CLIENT, ensure_venv  # noqa: E402

GRPC_WEB = "http://127.0.0.1:8081"
ENVOY_ADMIN = "http://127.0.0.1:9901"
NATIVE = "sc://127.0.0.1:15002"
MEASURE_SOURCE = (PAGES / "measure.py").read_text()

SMALL_RUNS, WARMUPS = 30, 5
COUNTED_COLLECTS = 10
BULK_REPEATS = 3
# Background requests (ReleaseExecute) may still be in flight when a collect returns.
SETTLE_SECONDS = 1.0
PAGE_SECONDS = 180  # for a page to boot
SMALL_SECONDS = 300  # for the 35 small collects
BULK_SECONDS = 300  # for one bulk collect
BULK_BUDGET_SECONDS = 60  # a slower warm-up leaves out the timed runs

GOAL_COLD_START = 1.3  # x a bare Pyodide boot
GOAL_FIRST_ROW_S = 0.8  # from the package load to the first row
GOAL_SMALL = 1.4  # x native
GOAL_BULK = 1.3  # x native


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- serving and checks


class Handler(http.server.SimpleHTTPRequestHandler):
    """/dist/... from dist/, anything else from bench/pages/."""

    def translate_path(self, path):
        path = path.split("?", 1)[0]
        if path.startswith("/dist/"):
            return str(DIST / path[len("/dist/") :])
        return str(PAGES / path.lstrip("/"))

    def guess_type(self, path):
        return CONTENT_TYPES.get(Path(str(path)).suffix, "application/octet-stream")

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving():
    """The pages and dist/ on 127.0.0.1 (a free port); yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def listening(port):
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2):
        return True
    return False


def check_prerequisites(native_python):
    if not (DIST / "pyodide-lock.json").is_file() or not list(DIST.glob("pyspark_web-*.whl")):
        raise SystemExit(f"{DIST} has no Pyodide build with pyspark-web: run ./build.sh build")
    try:
        ready = urllib.request.urlopen(f"{ENVOY_ADMIN}/ready", timeout=5).read().strip()
    except OSError:
        ready = b""
    if ready != b"LIVE" or not listening(8081) or not listening(15002):
        raise SystemExit(
            "the stack is not up (Envoy's admin on :9901 not LIVE, or nothing on :8081 or "
            ":15002): start it with ./build.sh up"
        )
    if native_python is not None and not Path(native_python).is_file():
        raise SystemExit(f"--native-python {native_python}: no such interpreter")


def envoy_requests():
    """Envoy's count of grpc-web HTTP requests so far (CORS preflights included)."""
    url = f"{ENVOY_ADMIN}/stats?filter=^http.grpc_web.downstream_rq_total$"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return int(text.split(":")[1])


def pyodide_version():
    info = json.loads((DIST / "pyodide-lock.json").read_text())["info"]
    # This lockfile's info has no version; dist/package.json (Pyodide's npm package) has.
    return info.get("version") or json.loads((DIST / "package.json").read_text())["version"]


# ---------------------------------------------------------------- Chromium


@contextlib.contextmanager
def fresh_chromium(logs="browser"):
    """Headless Chromium with a new, empty profile (no HTTP or code cache), keeping the
    ``logs`` log type (bench_network.py reads the DevTools "performance" log)."""
    with tempfile.TemporaryDirectory(prefix="bench-chromium-", ignore_cleanup_errors=True) as d:
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ["--headless=new", "--no-sandbox", *CHROME_FLAGS, f"--user-data-dir={d}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {logs: "ALL"})
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        try:
            yield driver
        finally:
            report_console(driver)
            driver.quit()


def report_console(driver):
    with contextlib.suppress(Exception):
        for entry in driver.get_log("browser"):
            if entry["level"] in ("SEVERE", "WARNING"):
                log(f"  console {entry['level']}: {entry['message'][:300]}")


def open_page(driver, url):
    """Load a page and wait for its window.result (the boot's report)."""
    driver.get(url)
    deadline = time.monotonic() + PAGE_SECONDS
    while time.monotonic() < deadline:
        result = driver.execute_script("return window.result || null")
        if result:
            if "error" in result:
                raise SystemExit(f"{url}: {result['error']}")
            return result
        time.sleep(0.1)
    raise SystemExit(f"{url}: no result within {PAGE_SECONDS} s")


class PagePython:
    """Python in a page's Pyodide (its main thread or its worker), through window.run."""

    def __init__(self, driver):
        self.driver = driver

    def exec(self, code, seconds=60):
        self.driver.set_script_timeout(seconds)
        outcome = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.run(arguments[0]).then((value) => done({ value: value ?? null }),"
            " (error) => done({ error: String(error) }));",
            code,
        )
        if "error" in outcome:
            raise RuntimeError(outcome["error"])
        return outcome["value"]

    def eval(self, expression, seconds=60):
        """The value of a Python expression, through JSON."""
        return json.loads(self.exec(f"import json\njson.dumps({expression})", seconds))


# ---------------------------------------------------------------- measurements


def bare_boot(base):
    with fresh_chromium() as driver:
        return open_page(driver, f"{base}/bare_boot.html")


def cold_start(base, measure_main_thread=False):
    """cold_start.html's marks; then, if asked, the main thread's runtime on that page."""
    with fresh_chromium() as driver:
        marks = open_page(driver, f"{base}/cold_start.html?url={GRPC_WEB}")
        marks["chromium"] = driver.capabilities.get("browserVersion")
        if measure_main_thread:
            marks["runtime"] = web_runtime(PagePython(driver), "jspi", connect=False)
        return marks


def web_requests_per_collect(python):
    """Envoy's count and pyspark-web's own (by method) over COUNTED_COLLECTS collects."""
    python.exec("count_web_requests()")
    time.sleep(SETTLE_SECONDS)
    before = envoy_requests()
    python.exec(f"start_counting()\ncollect_small(spark, {COUNTED_COLLECTS})", SMALL_SECONDS)
    time.sleep(SETTLE_SECONDS)
    envoy = (envoy_requests() - before) / COUNTED_COLLECTS
    return {**python.eval(f"counts_per({COUNTED_COLLECTS})"), "Envoy": envoy}


def bulk_runs(python):
    """One warm-up and BULK_REPEATS timed runs; fewer, with a note, when too slow."""
    try:
        warmup = python.eval("bulk_collect_ms(spark)", BULK_SECONDS)
        if warmup > BULK_BUDGET_SECONDS * 1000:
            return [warmup], f"only the warm-up ran, it took {warmup / 1000:.1f} s"
        timed = [python.eval("bulk_collect_ms(spark)", BULK_SECONDS) for _ in range(BULK_REPEATS)]
        return timed, None
    except TimeoutException:
        return [], f"no result within {BULK_SECONDS} s"
    except RuntimeError as error:
        return [], f"failed: {str(error).strip().splitlines()[-1][:200]}"


def web_runtime(python, expected_mode, connect):
    """Small-query latency, requests per collect and the bulk collect in one Pyodide."""
    python.exec(MEASURE_SOURCE)
    if connect:
        python.exec(f"spark = connect({GRPC_WEB!r})")
    mode = python.eval("blocking_mode()")
    if mode != expected_mode:
        raise SystemExit(f"pyspark-web blocks with {mode!r} here, not {expected_mode!r}")
    log(f"  {mode}: small queries")
    small = python.eval(f"small_query_ms(spark, {SMALL_RUNS}, {WARMUPS})", SMALL_SECONDS)
    log(f"  {mode}: requests per collect")
    requests = web_requests_per_collect(python)
    log(f"  {mode}: bulk collect")
    bulk, note = bulk_runs(python)
    return {"mode": mode, "small_ms": small, "requests": requests, "bulk_ms": bulk, "note": note}


def worker_runtime(base, jspi):
    with fresh_chromium() as driver:
        open_page(driver, f"{base}/worker.html?jspi={int(jspi)}")
        expected = "jspi" if jspi else "worker-sync-xhr"
        return web_runtime(PagePython(driver), expected, connect=True)


def native_runtime(native_python):
    command = [
        str(native_python),
        str(ROOT / "bench/native_client.py"),
        f"--url={NATIVE}",
        f"--runs={SMALL_RUNS}",
        f"--warmups={WARMUPS}",
        f"--counted={COUNTED_COLLECTS}",
        f"--bulk-repeats={BULK_REPEATS}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"bench/native_client.py failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout), "mode": "sockets (native gRPC)", "note": None}


# ---------------------------------------------------------------- report


def median(values):
    return statistics.median(values) if values else None


def ms(value):
    return "—" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def ratio_row(measure, web, reference, goal_ratio, goal_text, reference_text=None):
    if web is None or reference is None:
        return f"| {measure} | {ms(web)} | {ms(reference)} | — | {goal_text} | no |"
    ratio = web / reference
    met = "yes" if ratio <= goal_ratio else "no"
    ref = f"{ms(reference)} ({reference_text})" if reference_text else ms(reference)
    return f"| {measure} | {ms(web)} | {ref} | {ratio:.2f}x | {goal_text} | {met} |"


def phases(rounds):
    """Each phase of each cold-start round, in ms from the previous mark."""
    return {
        "boot": [r["boot"] for r in rounds],
        "packages": [r["packages"] - r["boot"] for r in rounds],
        "import": [r["import"] - r["packages"] for r in rounds],
        "session": [r["session"] - r["import"] for r in rounds],
        "first collect": [r["first_collect"] - r["session"] for r in rounds],
        "cold start": [r["first_collect"] for r in rounds],
        "first row": [r["first_collect"] - r["packages"] for r in rounds],
    }


def print_machine(full, native):
    print(
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Chromium {full['chromium']} (headless), Pyodide {pyodide_version()} "
        f"(Python {full['python']}); native: CPython {native['python']}, {native['client']}; "
        f"Spark Connect {native['spark']}, Envoy and the pages on 127.0.0.1."
    )
    print()


def print_goals(bare, spans, main, native):
    first_row = median(spans["first row"]) / 1000
    print("| measure | pyspark-web | reference | ratio | goal | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        ratio_row(
            "cold start (boot + packages + import + session + first collect)",
            median(spans["cold start"]),
            median([b["boot"] for b in bare]),
            GOAL_COLD_START,
            f"<= {GOAL_COLD_START}x a bare Pyodide boot",
            "bare boot",
        )
    )
    met = "yes" if first_row <= GOAL_FIRST_ROW_S else "no"
    print(
        f"| time after the packages load to the first row | {first_row:.2f} s | — | — "
        f"| <= {GOAL_FIRST_ROW_S} s | {met} |"
    )
    against_native = [
        (f"median small-query latency ({SMALL_RUNS} × `SELECT 1` collect)", "small_ms", GOAL_SMALL),
        (f"range(1e6) (id, string) collect (median of {BULK_REPEATS})", "bulk_ms", GOAL_BULK),
    ]
    for measure, key, goal in against_native:
        web, reference = median(main[key]), median(native[key])
        print(ratio_row(measure, web, reference, goal, f"<= {goal}x native", "native"))
    print()


def print_phases(bare, full, spans):
    def row(name, values, fmt=lambda v: f"{v:,.0f}"):
        print(f"| {name} | {fmt(median(values))} | {', '.join(fmt(v) for v in values)} |")

    rounds = f"{len(full)} round{'s' if len(full) != 1 else ''}"
    print(f"Cold start, median of {rounds} (a fresh profile for each page), in ms: the boots")
    print("and the cold start from navigation start, each other phase from the end of the last:")
    print()
    print("| phase | median | rounds |")
    print("| --- | --- | --- |")
    row("bare Pyodide boot (`bare_boot.html`: `loadPyodide` alone)", [b["boot"] for b in bare])
    row("boot (`loadPyodide`)", spans["boot"])
    row('package load (`loadPackage("pyspark-web")`)', spans["packages"])
    row("import (`from pyspark.sql import SparkSession`)", spans["import"])
    row("session (`builder.remote(...).getOrCreate()`)", spans["session"])
    row('first collect (`spark.sql("SELECT 1 AS a").collect()`)', spans["first collect"])
    row("cold start: navigation to the first row", spans["cold start"])
    row("after the package load to the first row", spans["first row"])
    row("modules imported (import + session + first collect)", [r["modules"] for r in full])
    row("bytes downloaded, bare boot (page + dist/)", [b["bytes"] for b in bare])
    row("bytes downloaded, cold start (page + dist/)", [r["bytes"] for r in full])
    print()


def print_requests(runtimes):
    """Requests per `SELECT 1` collect, by method, for every runtime."""
    names = list(runtimes)
    methods = sorted({m for r in runtimes.values() for m in r["requests"]} - {"Envoy"})
    print(f'Requests per `spark.sql("SELECT 1").collect()` (over {COUNTED_COLLECTS} collects):')
    print()
    print(f"| method | {' | '.join(names)} |")
    print(f"| --- |{' --- |' * len(names)}")

    def cell(runtime, key):
        value = runtime["requests"].get(key)
        return "—" if value is None else f"{value:g}"

    for method in methods:
        print(f"| {method} | {' | '.join(cell(runtimes[n], method) for n in names)} |")
    totals = [sum(v for k, v in runtimes[n]["requests"].items() if k != "Envoy") for n in names]
    print(f"| total (client's count) | {' | '.join(f'{t:g}' for t in totals)} |")
    envoy = [cell(runtimes[n], "Envoy") for n in names]
    print(f"| Envoy's grpc-web requests | {' | '.join(envoy)} |")
    print()


def print_modes(runtimes):
    print("| runtime | blocking mode | small query (median) | range(1e6) collect (median) |")
    print("| --- | --- | --- | --- |")
    for name, runtime in runtimes.items():
        bulk = ms(median(runtime["bulk_ms"]))
        if runtime["note"]:
            bulk += f" ({runtime['note']})"
        small = ms(median(runtime["small_ms"]))
        print(f"| {name} | `{runtime['mode']}` | {small} | {bulk} |")
    print()


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(
        description="PySpark in headless Chromium against the native client (issue 14's goals)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="cold-start rounds (default 3)")
    parser.add_argument(
        "--native-python",
        help="the native client's interpreter (default: the stock pyspark-client in "
        "build/venv-stock, made here if missing, as the differential tests make it)",
    )
    args = parser.parse_args()
    check_prerequisites(args.native_python)
    began = time.monotonic()
    if args.native_python is None:
        args.native_python = ensure_venv(
            "venv-stock", [STOCK_CLIENT], ROOT / "tests/requirements-native.txt"
        )

    log("native client on CPython")
    native = native_runtime(args.native_python)
    bare, full = [], []
    with serving() as base:
        for number in range(1, args.rounds + 1):
            log(f"round {number}/{args.rounds}: bare boot, cold start")
            bare.append(bare_boot(base))
            full.append(cold_start(base, measure_main_thread=number == args.rounds))
        log("worker with JSPI")
        worker_jspi = worker_runtime(base, jspi=True)
        log("worker with synchronous XHR")
        worker_xhr = worker_runtime(base, jspi=False)

    spans = phases(full)
    runtimes = {
        "native (CPython, gRPC)": native,
        "page main thread (JSPI)": full[-1]["runtime"],
        "worker (JSPI)": worker_jspi,
        "worker (sync XHR)": worker_xhr,
    }
    print_machine(full[-1], native)
    print_goals(bare, spans, full[-1]["runtime"], native)
    print_phases(bare, full, spans)
    print_requests(runtimes)
    print_modes(runtimes)
    print(f"The run took {time.monotonic() - began:.0f} s.")


if __name__ == "__main__":
    main()
