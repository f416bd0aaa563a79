"""Write the pyarrow-made seed streams of tests/unit/test_arrow_fuzz.py.

    build/venv-stack-3.11/bin/python tests/unit/pyarrow_checks/make_fuzz_seeds.py

Needs pyarrow (its own lz4 and zstd codecs write the compressed seeds); the test venv has
none, so the streams are kept in tests/unit/fuzz_seeds/*.arrows. Small on purpose: the
fuzzer's mutations should land in metadata as often as in data. Run again (and commit the
result) to change them; the output is the same for the same pyarrow version.
"""

import datetime
import decimal
import sys
from pathlib import Path

import pyarrow as pa

OUT = Path(__file__).resolve().parent.parent / "fuzz_seeds"
UTC = datetime.timezone.utc


def tables():
    n = [1, None, 3]
    yield (
        "ints",
        pa.table(
            {
                "i8": pa.array([1, None, -128], pa.int8()),
                "i16": pa.array(n, pa.int16()),
                "i32": pa.array(n, pa.int32()),
                "i64": pa.array([2**62, None, -1], pa.int64()),
                "u8": pa.array([255, 0, None], pa.uint8()),
                "u64": pa.array([2**64 - 1, None, 0], pa.uint64()),
            }
        ),
    )
    yield (
        "floats",
        pa.table(
            {
                "f16": pa.array([1.5, None, -2.0], pa.float16()),
                "f32": pa.array([1.5, None, float("inf")], pa.float32()),
                "f64": pa.array([float("nan"), -0.0, None]),
                "b": pa.array([True, None, False]),
            }
        ),
    )
    yield (
        "strings",
        pa.table(
            {
                "s": pa.array(["a", None, "ü€"]),
                "ls": pa.array(["x", "", None], pa.large_string()),
                "bin": pa.array([b"\x00", None, b"ab"]),
                "lbin": pa.array([b"", b"z", None], pa.large_binary()),
                "fbin": pa.array([b"abc", None, b"xyz"], pa.binary(3)),
            }
        ),
    )
    yield (
        "decimals",
        pa.table(
            {
                "d": pa.array(
                    [decimal.Decimal("1.25"), None, decimal.Decimal("-99.99")], pa.decimal128(10, 2)
                ),
                "d38": pa.array(
                    [decimal.Decimal("1" * 38), None, decimal.Decimal(0)], pa.decimal128(38, 0)
                ),
                "d256": pa.array(
                    [decimal.Decimal("-1.5"), None, decimal.Decimal("2" * 40)], pa.decimal256(60, 1)
                ),
            }
        ),
    )
    day, moment = datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 12, 30, 1, 5)
    yield (
        "temporal",
        pa.table(
            {
                "d32": pa.array([day, None, datetime.date(1, 1, 1)], pa.date32()),
                "d64": pa.array([day, None, day], pa.date64()),
                "ts": pa.array([moment, None, moment], pa.timestamp("us")),
                "tsz": pa.array(
                    [moment.replace(tzinfo=UTC), None, moment.replace(tzinfo=UTC)],
                    pa.timestamp("ns", tz="UTC"),
                ),
                "tss": pa.array([moment, None, moment], pa.timestamp("s", tz="Europe/Berlin")),
                "t32": pa.array(
                    [datetime.time(1, 2, 3), None, datetime.time(23, 59, 59)], pa.time32("ms")
                ),
                "t64": pa.array(
                    [datetime.time(1, 2, 3, 4), None, datetime.time(0)], pa.time64("ns")
                ),
                "dur": pa.array(
                    [datetime.timedelta(seconds=5), None, datetime.timedelta(-1)], pa.duration("ms")
                ),
                "mdn": pa.array(
                    [pa.MonthDayNano([1, 2, 3]), None, pa.MonthDayNano([-1, 0, 10**12])],
                    pa.month_day_nano_interval(),
                ),
            }
        ),
    )
    yield (
        "nested",
        pa.table(
            {
                "l": pa.array([[1, None], None, []], pa.list_(pa.int32())),
                "ll": pa.array([["a"], [None, "b"], None], pa.large_list(pa.string())),
                "st": pa.array(
                    [{"a": 1, "b": "x"}, None, {"a": None, "b": None}],
                    pa.struct([("a", pa.int64()), ("b", pa.string())]),
                ),
                "m": pa.array(
                    [[("k", 1)], None, [("a", None), ("b", 2)]], pa.map_(pa.string(), pa.int64())
                ),
                "fl": pa.array([[1, 2], None, [3, None]], pa.list_(pa.int16(), 2)),
                "ls": pa.array(
                    [[{"x": 1.5}], [], None], pa.list_(pa.struct([("x", pa.float64())]))
                ),
            }
        ),
    )
    yield (
        "nulls",
        pa.table(
            {
                "n": pa.nulls(3),
                "e": pa.array([{}, None, {}], pa.struct([])),
                "ln": pa.array([[None], [], None], pa.list_(pa.null())),
            }
        ),
    )


def write(path, table, batches=1, **options):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(**options)) as writer:
        if batches == 1:
            writer.write_table(table)
        else:  # one row a batch, and an empty batch
            for row in range(table.num_rows):
                writer.write_table(table.slice(row, 1))
            writer.write_table(table.slice(0, 0))
    path.write_bytes(sink.getvalue().to_pybytes())


def main():
    OUT.mkdir(exist_ok=True)
    for name, table in tables():
        write(OUT / f"{name}.arrows", table)
    every = dict(tables())
    write(OUT / "strings-batches.arrows", every["strings"], batches=3)
    for codec in ("lz4", "zstd"):
        for name in ("ints", "strings", "nested"):
            write(OUT / f"{name}-{codec}.arrows", every[name], compression=codec)
    print(
        f"pyarrow {pa.__version__}: wrote {len(list(OUT.glob('*.arrows')))} seeds to {OUT}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
