"""One load client: a session that runs a mix of queries and checks every result.

    python tests/load_client.py URL QUERIES SEED OUTPUT.json

The mix, in turn: a small SQL query, an aggregate over a range, a createDataFrame of 50
rows summed on the server, and a 5,000-row collect. Each result is compared with what
Python computes itself. OUTPUT gets the latency of each query (seconds, in order) and the
failures (wrong results and errors, with the query's number). Runs under any client: the
stock one (sc:// URLs) or pyspark-web (http:// URLs), on CPython or in Pyodide (the
browser tests run main() with the same arguments).
"""

import json
import subprocess
import sys
import time
import traceback


def small_sql(spark, n):
    value = spark.sql(f"SELECT {n} AS v, 'x{n}' AS s").collect()
    return [tuple(r) for r in value], [(n, f"x{n}")]


def aggregate(spark, n):
    from pyspark.sql import functions as F

    size = 10_000 + n
    rows = spark.range(size).groupBy((F.col("id") % 7).alias("k")).count().collect()
    expected = {}
    for i in range(size):
        expected[i % 7] = expected.get(i % 7, 0) + 1
    return sorted((r.k, r["count"]) for r in rows), sorted(expected.items())


def create_dataframe(spark, n):
    data = [(j, f"s{n}-{j}") for j in range(50)]
    df = spark.createDataFrame(data, "j long, s string")
    row = df.selectExpr("sum(j) AS total", "count(DISTINCT s) AS names").collect()[0]
    return (row.total, row.names), (sum(range(50)), 50)


def collect_5k(spark, n):
    ids = [r.id for r in spark.range(n, n + 5000).collect()]
    return ids, list(range(n, n + 5000))


MIX = [small_sql, aggregate, create_dataframe, collect_5k]


def run(url, queries, seed):
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).getOrCreate()
    latencies, failures = [], []
    try:
        for number in range(queries):
            query = MIX[(seed + number) % len(MIX)]
            began = time.perf_counter()
            try:
                got, expected = query(spark, seed * 1000 + number)
            except Exception:
                failures.append(
                    {
                        "query": number,
                        "kind": query.__name__,
                        "error": traceback.format_exc()[-2000:],
                    }
                )
                continue
            finally:
                latencies.append(time.perf_counter() - began)
            if got != expected:
                failures.append(
                    {
                        "query": number,
                        "kind": query.__name__,
                        "error": f"wrong result: {str(got)[:200]}",
                    }
                )
    finally:
        spark.stop()
    return {"latencies": latencies, "failures": failures}


def run_clients(python, url, clients, queries, directory):
    """Run this script as ``clients`` processes of ``python`` at once (seeds 0..clients-1),
    outputs in ``directory`` (a pathlib.Path); their outcomes and the wall time."""
    began = time.monotonic()
    running = [
        subprocess.Popen(
            [
                str(python),
                __file__,
                url,
                str(queries),
                str(seed),
                str(directory / f"{seed}.json"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(clients)
    ]
    errors = []
    for process in running:
        try:
            _, err = process.communicate(timeout=1200)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        if process.returncode != 0:
            errors.append(err[-2000:])
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed:\n{errors[0]}")
    wall = time.monotonic() - began
    return [json.loads((directory / f"{seed}.json").read_text()) for seed in range(clients)], wall


def percentile(values, p):
    """The p-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


def main(argv):
    url, queries, seed, output = argv[1], int(argv[2]), int(argv[3]), argv[4]
    with open(output, "w") as f:
        json.dump(run(url, queries, seed), f)


if __name__ == "__main__":
    main(sys.argv)
