"""The static host over a throttled network: the cold start and a warm reload of PySpark in
headless Chromium, before and after issue 15's compression and cache policy.

    build/venv-test/bin/python bench/bench_network.py [--rounds 3]

Needs the stack (./build.sh up, for Spark behind grpc-web on :8081) and dist/. Runs its own
Envoy for the static host, one config at a time, on spare loopback ports (STATIC_PORT):
"before" is deploy/envoy.dev.yaml as committed at HEAD (`git show`), "after" the working
tree's; both also serve bench/pages/ under /bench/. For each config and round, a fresh
Chromium profile (empty cache) opens bench/pages/network.html with DevTools network
emulation (DOWN_MBIT down, RTT_MS latency), which boots Pyodide from that host, loads
pyspark-web and collects `spark.sql("SELECT 1")` through http://127.0.0.1:8081 (the cold
start); then the same profile navigates to it again (the warm reload: cache hits and
revalidations). Bytes are what Chromium's network log says came over the wire from the
static host (Network.loadingFinished's encodedDataLength: headers and encoded bodies).
Prints markdown tables for BENCHMARKS.md; progress goes to stderr.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
sys.path.insert(0, str(ROOT / "tests"))
from bench_browser import fresh_chromium  # noqa: E402 (bench/ is the script's folder)

GRPC_WEB = "http://127.0.0.1:8081"
# The dev config's ports, and where this benchmark's Envoy puts them (beside the stack's
# and the prod tests').
PORTS = {8000: 38000, 8081: 38081, 9901: 39901}
STATIC = f"http://127.0.0.1:{PORTS[8000]}"
DOWN_MBIT, UP_MBIT, RTT_MS = 20, 5, 40
PAGE_SECONDS = 300


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the static host


def envoy_binary():
    found = sorted(BUILD.glob("venv-stack-*/bin/envoy"))
    if not found:
        raise SystemExit("no Envoy under build/venv-stack-*/: run ./build.sh up once")
    return found[0]


def render(text):
    """A dev config on PORTS, also serving bench/pages/ under /bench/. Envoy runs from the
    repository root, so its relative dist/ paths hold."""
    for old, new in PORTS.items():
        text = text.replace(f"port_value: {old}", f"port_value: {new}")
        text = text.replace(f":{old}", f":{new}")  # the Host names and the RBAC regex
    config = yaml.safe_load(text)
    for listener in config["static_resources"]["listeners"]:
        manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        for http_filter in manager.get("http_filters", []):
            if http_filter["name"] == "envoy.filters.http.file_server":
                http_filter["typed_config"]["path_mappings"].insert(
                    0, {"request_path_prefix": "/bench/", "file_path_prefix": "bench/pages"}
                )
    return yaml.safe_dump(config, sort_keys=False)


@contextlib.contextmanager
def static_host(text, directory):
    config = Path(directory) / "envoy.yaml"
    config.write_text(render(text))
    logfile = config.with_suffix(".log")
    process = subprocess.Popen(
        [str(envoy_binary()), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        cwd=ROOT,
        stdout=logfile.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"Envoy exited: {logfile.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                admin = f"http://127.0.0.1:{PORTS[9901]}/ready"
                if urllib.request.urlopen(admin, timeout=1).status == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"Envoy not ready: {logfile.read_text()[-2000:]}")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def encodings_used():
    """How many responses the static host compressed, by encoding (its admin counters)."""
    url = f"http://127.0.0.1:{PORTS[9901]}/stats?filter=compressor.*response.compressed$"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    counts = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        encoding = "br" if ".brotli." in name else "gzip" if ".gzip." in name else name
        counts[encoding] = counts.get(encoding, 0) + int(value)
    return counts


# ---------------------------------------------------------------- Chromium


@contextlib.contextmanager
def throttled_chromium():
    """bench_browser's fresh Chromium, with DevTools network emulation on."""
    with fresh_chromium(logs="performance") as driver:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": RTT_MS,
                "downloadThroughput": DOWN_MBIT * 1_000_000 / 8,
                "uploadThroughput": UP_MBIT * 1_000_000 / 8,
            },
        )
        yield driver


def wire(driver):
    """The static host's responses since the last call, from the network log: bytes on the
    wire, and how each was answered."""
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    urls, answers, raw_status, sizes = {}, {}, {}, {}
    for event in events:
        params = event.get("params", {})
        method = event.get("method")
        if method == "Network.requestWillBeSent":
            urls[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived":
            response = params["response"]
            cached = response.get("fromDiskCache") or response.get("fromMemoryCache")
            encoding = {k.lower(): v for k, v in response["headers"].items()}.get(
                "content-encoding", "identity"
            )
            answers[params["requestId"]] = "cache" if cached else f"{response['status']} {encoding}"
        elif method == "Network.responseReceivedExtraInfo":
            # What the server sent: a revalidation's 304 (responseReceived shows the cached 200).
            raw_status[params["requestId"]] = params["statusCode"]
        elif method == "Network.requestServedFromCache":
            answers[params["requestId"]] = "cache"
        elif method == "Network.loadingFinished":
            sizes[params["requestId"]] = params["encodedDataLength"]
    ours = [rid for rid, url in urls.items() if url.startswith(STATIC)]
    kinds = {}
    for rid in ours:
        kind = "304" if raw_status.get(rid) == 304 else answers.get(rid, "?")
        kinds[kind] = kinds.get(kind, 0) + 1
    return {"bytes": sum(sizes.get(rid, 0) for rid in ours), "requests": len(ours), "kinds": kinds}


def open_page(driver):
    driver.get(f"{STATIC}/bench/network.html?url={GRPC_WEB}")
    deadline = time.monotonic() + PAGE_SECONDS
    while time.monotonic() < deadline:
        result = driver.execute_script("return window.result || null")
        if result:
            if "error" in result:
                raise SystemExit(f"network.html: {result['error']}")
            return {**result, **wire(driver)}
        time.sleep(0.1)
    raise SystemExit(f"network.html: no result within {PAGE_SECONDS} s")


def measure(text, rounds):
    """Cold and warm runs of one config: a fresh profile per round."""
    runs = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="bench-network-envoy-") as directory:
        with static_host(text, directory):
            for number in range(1, rounds + 1):
                log(f"  round {number}/{rounds}")
                with throttled_chromium() as driver:
                    runs["cold"].append(open_page(driver))
                    runs["warm"].append(open_page(driver))
                    runs["chromium"] = driver.capabilities.get("browserVersion")
            runs["encodings"] = encodings_used()
    return runs


# ---------------------------------------------------------------- report


def median(values):
    return statistics.median(values)


def mb(value):
    return f"{value / 1e6:.2f} MB" if value >= 100_000 else f"{value / 1000:.1f} kB"


def seconds(value):
    return f"{value / 1000:.2f} s"


def answers(run):
    return ", ".join(f"{count} {kind}" for kind, count in sorted(run["kinds"].items()))


def report(before, after, rounds, load):
    print(
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores (load average "
        f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end), "
        f"Chromium {after['chromium']} (headless, a fresh profile per round), DevTools "
        f"network emulation {DOWN_MBIT} Mbit/s down, {UP_MBIT} Mbit/s up, {RTT_MS} ms "
        "latency; Envoy 1.40 and Spark Connect on 127.0.0.1."
    )
    print()
    print(f"Median of {rounds} rounds; bytes from the static host as on the wire (headers")
    print("included), time from navigation start to the first collect's rows:")
    print()
    print("| run | config | bytes | time to first collect | boot | package load |")
    print("| --- | --- | --- | --- | --- | --- |")
    for run in ("cold", "warm"):
        for name, runs in (("before", before), ("after", after)):
            rows = runs[run]
            print(
                f"| {run} | {name} | {mb(median([r['bytes'] for r in rows]))} "
                f"| {seconds(median([r['firstCollect'] for r in rows]))} "
                f"| {seconds(median([r['boot'] for r in rows]))} "
                f"| {seconds(median([r['packages'] - r['boot'] for r in rows]))} |"
            )
    print()
    print("How the static host answered, last round (requests by status and encoding):")
    print()
    print("| run | config | answers |")
    print("| --- | --- | --- |")
    for run in ("cold", "warm"):
        for name, runs in (("before", before), ("after", after)):
            print(f"| {run} | {name} | {answers(runs[run][-1])} |")
    print()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(after["encodings"].items())) or "none"
    print(f"Responses the 'after' host compressed over all rounds: {counts}.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        ready = urllib.request.urlopen("http://127.0.0.1:9901/ready", timeout=5).read().strip()
    except OSError:
        ready = b""
    if ready != b"LIVE":
        raise SystemExit("the stack is not up (Envoy's admin on :9901): ./build.sh up")
    if not (ROOT / "dist/pyodide-lock.json").is_file():
        raise SystemExit("dist/ has no Pyodide build: run ./build.sh build")
    old = subprocess.run(
        ["git", "show", "HEAD:deploy/envoy.dev.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    new = (ROOT / "deploy/envoy.dev.yaml").read_text()
    began, load = time.monotonic(), os.getloadavg()
    log("before: deploy/envoy.dev.yaml at HEAD")
    before = measure(old, args.rounds)
    log("after: deploy/envoy.dev.yaml of the working tree")
    after = measure(new, args.rounds)
    report(before, after, args.rounds, load)
    print()
    print(f"The run took {time.monotonic() - began:.0f} s.")


if __name__ == "__main__":
    main()
