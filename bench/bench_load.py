"""Load and soak through the stack, bounded and on loopback (issue 15).

    ./build.sh bench load [--clients 16] [--queries 100]      (needs ./build.sh up)
    ./build.sh bench load --soak 10 [--clients 4]              (a soak of 10 minutes)

Load: the same clients (tests/load_client.py: each a session of mixed queries, every
result checked) run first as pyspark-web over grpc-web through Envoy (build/venv-web),
then as the stock native client over gRPC straight to Spark Connect (build/venv-stock),
each set all at once. Prints wall time, p50 and p99 of the queries' latencies and the
failures of each, side by side.

Soak: rounds of the pyspark-web clients (40 queries each) for the given minutes, with the
RSS of Envoy's and Spark's process groups before and after, and every failure.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from helpers import BUILD, STOCK_CLIENT, ensure_venv, tool  # noqa: E402
from load_client import percentile, run_clients  # noqa: E402

PINS = ROOT / "tests/requirements-native.txt"
WEB_URL, NATIVE_URL = "http://127.0.0.1:8081", "sc://127.0.0.1:15002"
SOAK_QUERIES = 40


def web_python():
    wheel = sorted((ROOT / "dist").glob("pyspark_web-*.whl"))[-1]
    return ensure_venv("venv-web", [f"{wheel}[pandas]"], PINS, reinstall=[wheel])


def summary(outcomes, wall):
    latencies = [s for outcome in outcomes for s in outcome["latencies"]]
    failures = [f for outcome in outcomes for f in outcome["failures"]]
    return {
        "queries": len(latencies),
        "wall": wall,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 99),
        "failures": failures,
    }


def load(clients, queries):
    rows = {}
    for name, python, url in (
        ("pyspark-web (grpc-web through Envoy)", web_python(), WEB_URL),
        ("stock client (native gRPC)", ensure_venv("venv-stock", [STOCK_CLIENT], PINS), NATIVE_URL),
    ):
        print(f"running {clients} x {queries} with {name}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as directory:
            rows[name] = summary(*run_clients(python, url, clients, queries, Path(directory)))
    print(f"{clients} clients at once, each a session of {queries} mixed queries:\n")
    print("| client | queries | wall | p50 | p99 | failures |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        print(
            f"| {name} | {row['queries']} | {row['wall']:.0f} s | {row['p50']:.2f} s "
            f"| {row['p99']:.2f} s | {len(row['failures'])} |"
        )
    return all(not row["failures"] for row in rows.values())


def rss():
    """MiB of Envoy's and Spark's process groups, as `status` reports them."""
    stack = tool("stack")
    paths = stack.Paths(BUILD / "run")
    sizes = {}
    for part in ("envoy", "spark"):
        pid = stack.read_pid(paths, part)
        if pid is None:
            raise SystemExit(f"the stack's {part} is not running: ./build.sh up")
        sizes[part] = stack.rss_mib(pid)
    return sizes


def soak(minutes, clients):
    python = web_python()
    before = rss()
    deadline = time.monotonic() + minutes * 60
    rounds, outcomes = 0, []
    while time.monotonic() < deadline:
        with tempfile.TemporaryDirectory() as directory:
            outcomes += run_clients(python, WEB_URL, clients, SOAK_QUERIES, Path(directory))[0]
        rounds += 1
    after = rss()
    row = summary(outcomes, minutes * 60)
    print(f"Soak: {minutes} min, {clients} pyspark-web clients at once, {rounds} rounds\n")
    print("| | Envoy RSS | Spark RSS | queries | p50 | p99 | failures |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| before | {before['envoy']:.0f} MiB | {before['spark']:.0f} MiB | | | | |")
    print(
        f"| after | {after['envoy']:.0f} MiB | {after['spark']:.0f} MiB | {row['queries']} "
        f"| {row['p50']:.2f} s | {row['p99']:.2f} s | {len(row['failures'])} |"
    )
    for failure in row["failures"][:5]:
        print(failure, file=sys.stderr)
    return not row["failures"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--soak", type=float, metavar="MINUTES")
    args = parser.parse_args()
    print(
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} "
        f"cores, CPython {platform.python_version()}; the stack on 127.0.0.1\n"
    )
    if args.soak:
        ok = soak(args.soak, args.clients or 4)
    else:
        ok = load(args.clients or 16, args.queries)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
