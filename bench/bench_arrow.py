"""Decoding Arrow IPC into Python values: pyspark-web's pure-Python reader versus
pyarrow's ``to_pylist``.

    build/venv-native/bin/python bench/bench_arrow.py          (CPython, with pyarrow)

Two tables, each written once by pyarrow as an IPC stream of 64k-row batches (what
Spark sends): 1,000,000 rows of (int64, string), and 200,000 rows of a mixed table
(int32, double, decimal(18,2), string, date, timestamp[us, UTC], list<int32>, nulls).
Prints rows/s for each reader and the ratio. Without pyarrow (e.g. inside Pyodide) it
decodes a stream written by pyspark-web's own writer and prints only its own numbers.
"""

import datetime
import decimal
import platform
import sys
import time

import pyspark_web.arrow as arrow
from pyspark_web.arrow.table import Table

BATCH = 65536


def tables():
    n = 1_000_000
    ints = list(range(n))
    strings = [f"row-{i % 9973}-value" for i in range(n)]
    m = 200_000
    mixed = {
        "i": [i if i % 10 else None for i in range(m)],
        "d": [i * 0.5 for i in range(m)],
        "dec": [decimal.Decimal(i).scaleb(-2) for i in range(m)],
        "s": [None if i % 7 == 0 else f"s{i}" for i in range(m)],
        "dt": [datetime.date(2020, 1, 1) + datetime.timedelta(days=i % 1000) for i in range(m)],
        "ts": [
            datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(seconds=i)
            for i in range(m)
        ],
        "l": [[i, i + 1] if i % 3 else [] for i in range(m)],
    }
    return {
        "int64 + string, 1,000,000 rows": ({"id": ints, "s": strings}, n),
        "mixed, 200,000 rows": (mixed, m),
    }


def ours_schema(name):
    t = arrow.DataType
    if name.startswith("int64"):
        return arrow.Schema(
            [
                arrow.Field("id", t("int", (("bits", 64), ("signed", True)))),
                arrow.Field("s", t("utf8")),
            ]
        )
    return arrow.Schema(
        [
            arrow.Field("i", t("int", (("bits", 32), ("signed", True)))),
            arrow.Field("d", t("float", (("bits", 64),))),
            arrow.Field("dec", t("decimal", (("precision", 18), ("scale", 2), ("bits", 128)))),
            arrow.Field("s", t("utf8")),
            arrow.Field("dt", t("date", (("unit", "day"),))),
            arrow.Field("ts", t("timestamp", (("unit", "us"), ("tz", "UTC")))),
            arrow.Field(
                "l",
                t("list", (), (arrow.Field("item", t("int", (("bits", 32), ("signed", True)))),)),
            ),
        ]
    )


def stream(name, columns, rows):
    try:
        import pyarrow as pa
    except ImportError:
        schema = ours_schema(name)
        values = [columns[f.name] for f in schema.fields]
        return arrow.write_stream(
            schema,
            [
                ([v[a : a + BATCH] for v in values], min(BATCH, rows - a))
                for a in range(0, rows, BATCH)
            ],
        ), None
    schema = pa.schema(
        [
            pa.field(
                f.name,
                {
                    "id": pa.int64(),
                    "s": pa.string(),
                    "i": pa.int32(),
                    "d": pa.float64(),
                    "dec": pa.decimal128(18, 2),
                    "dt": pa.date32(),
                    "ts": pa.timestamp("us", tz="UTC"),
                    "l": pa.list_(pa.int32()),
                }[f.name],
            )
            for f in ours_schema(name).fields
        ]
    )
    table = pa.table(columns, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in table.to_batches(max_chunksize=BATCH):
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes(), pa


def best(fn, runs=3):
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times)


def main():
    print(
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{sys.platform}/{platform.machine()}"
    )
    print("| table | pyspark-web rows/s | pyarrow to_pylist rows/s | ratio |")
    print("| --- | --- | --- | --- |")
    for name, (columns, rows) in tables().items():
        data, pa = stream(name, columns, rows)
        ours = best(lambda data=data: [c.to_pylist() for c in Table.read_stream(data).columns])
        if pa is None:
            print(f"| {name} | {rows / ours:,.0f} | (no pyarrow here) | |")
            continue
        theirs = best(
            lambda pa=pa, data=data: [
                c.to_pylist() for c in pa.ipc.open_stream(data).read_all().columns
            ]
        )
        print(f"| {name} | {rows / ours:,.0f} | {rows / theirs:,.0f} | {theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
