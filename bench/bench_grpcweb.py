"""Native gRPC versus pyspark-web (grpc-web through Envoy) on CPython, side by side.

    ./build.sh bench grpcweb   (needs ./build.sh up)

Runs the same two measurements in both virtualenvs of the differential suite, one after
the other, against the same server:
- the median of 30 runs of spark.sql("select 1").collect() (after 3 warm-up runs);
- the best of 3 runs of spark.range(1_000_000).collect().
Prints a Markdown table with the ratios (pyspark-web / native).
"""

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURE = """
import json, statistics, sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
for _ in range(3):
    spark.sql("select 1").collect()
small = []
for _ in range(30):
    began = time.perf_counter(); spark.sql("select 1").collect(); \
small.append(time.perf_counter() - began)
big = []
for _ in range(3):
    began = time.perf_counter(); rows = spark.range(1_000_000).collect(); \
big.append(time.perf_counter() - began)
    assert len(rows) == 1_000_000
print(json.dumps({"select1_ms": statistics.median(small) * 1000, "range1m_s": min(big)}))
"""


def measure(venv: str, url: str) -> dict:
    python = ROOT / "build" / venv / "bin/python"
    # A script file, not "python -c": the stock client exits under -c (see patches/0001).
    with tempfile.NamedTemporaryFile("w", suffix=".py") as script:
        script.write(MEASURE)
        script.flush()
        out = subprocess.run(
            [str(python), script.name, url], capture_output=True, text=True, check=True
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    native = measure("venv-stock", "sc://127.0.0.1:15002")
    web = measure("venv-web", "http://127.0.0.1:8081")
    print(
        f"machine: {platform.machine()}, "
        f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, "
        f"Python {platform.python_version()}; "
        "server: Spark Connect 4.3.0 local[2] on the same machine"
    )
    print("| measurement | native gRPC | pyspark-web (grpc-web via Envoy) | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        "| `spark.sql('select 1').collect()`, median of 30 | "
        f"{native['select1_ms']:.1f} ms | {web['select1_ms']:.1f} ms | "
        f"{web['select1_ms'] / native['select1_ms']:.2f} |"
    )
    print(
        "| `spark.range(1_000_000).collect()`, best of 3 | "
        f"{native['range1m_s']:.2f} s | {web['range1m_s']:.2f} s | "
        f"{web['range1m_s'] / native['range1m_s']:.2f} |"
    )


if __name__ == "__main__":
    sys.exit(main())
