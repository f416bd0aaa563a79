"""The native side of bench/bench_browser.py: the client on CPython over native gRPC runs
the same measurements (bench/pages/measure.py) as the browser, and prints them as JSON.

    build/venv-native/bin/python bench/native_client.py [--url sc://127.0.0.1:15002]

bench_browser.py runs it in a subprocess, never beside a browser (the machine has 2 cores).
"""

import argparse
import importlib.metadata
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "pages"))
import measure  # noqa: E402

# Released executions leave from a thread pool after the collect has returned.
SETTLE_SECONDS = 1.0


def client_distribution() -> str:
    """Which PySpark client this is: stock pyspark-client, or pyspark-web's wheel."""
    for name in ("pyspark-client", "pyspark-web", "pyspark"):
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def requests_per_collect(spark, collects: int) -> dict[str, float]:
    time.sleep(SETTLE_SECONDS)  # nothing of earlier queries still on its way
    measure.start_counting()
    measure.collect_small(spark, collects)
    time.sleep(SETTLE_SECONDS)
    return measure.counts_per(collects)


def main() -> None:
    parser = argparse.ArgumentParser(description="the native side of bench_browser.py")
    parser.add_argument("--url", default="sc://127.0.0.1:15002")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmups", type=int, default=5)
    parser.add_argument("--counted", type=int, default=10)
    parser.add_argument("--bulk-repeats", type=int, default=3)
    args = parser.parse_args()

    measure.count_native_requests()
    spark = measure.connect(args.url)
    small = measure.small_query_ms(spark, args.runs, args.warmups)
    requests = requests_per_collect(spark, args.counted)
    measure.bulk_collect_ms(spark)  # warm-up
    bulk = [measure.bulk_collect_ms(spark) for _ in range(args.bulk_repeats)]
    result = {
        "python": platform.python_version(),
        "client": client_distribution(),
        "spark": spark.version,
        "small_ms": small,
        "requests": requests,
        "bulk_ms": bulk,
    }
    spark.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
