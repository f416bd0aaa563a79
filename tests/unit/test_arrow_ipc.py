"""pyspark_web.arrow: the pure-Python Arrow IPC reader/writer.

The differential checks against pyarrow (Hypothesis, both directions, every type Spark
uses, nulls, batch splits, compression) live in pyarrow_checks/check_arrow_ipc.py and run
in build/venv-native, which has pyarrow; this venv deliberately has none. Here: the
behaviour that needs no pyarrow.
"""

import datetime
import decimal
import subprocess

import pytest
from helpers import ROOT, native_venv

import pyspark_web.arrow as arrow
from pyspark_web.arrow.table import Table

CHECKS = ROOT / "tests/unit/pyarrow_checks"


def run_pyarrow_checks(wheel, *args):
    """Run check_*.py of pyarrow_checks/ (``args``: paths, options) in build/venv-native;
    all must pass, none be skipped."""
    python = native_venv(wheel)
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-c",
            "/dev/null",
            "--noconftest",
            "--rootdir",
            str(CHECKS),
            "-p",
            "no:cacheprovider",
            "-o",
            "python_files=check_*.py",
            "-o",
            "python_functions=check_*",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary


def test_differential_checks_against_pyarrow(wheel):
    # check_arrow_spark.py (the type mapping) is test_arrow_spark.py's.
    run_pyarrow_checks(wheel, str(CHECKS), f"--ignore={CHECKS / 'check_arrow_spark.py'}")


SCHEMA = arrow.Schema(
    [
        arrow.Field("i", arrow.DataType("int", (("bits", 64), ("signed", True)))),
        arrow.Field("s", arrow.DataType("utf8")),
        arrow.Field(
            "d", arrow.DataType("decimal", (("precision", 38), ("scale", 2), ("bits", 128)))
        ),
        arrow.Field("t", arrow.DataType("timestamp", (("unit", "us"), ("tz", "UTC")))),
    ]
)
ROWS = [
    [1, None, -(2**63)],
    ["a", "ü", None],
    [decimal.Decimal("-1.25"), None, decimal.Decimal("99999999999999999999999999999999999.99")],
    [
        datetime.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.timezone.utc),
        None,
        datetime.datetime(2038, 1, 19, 3, 14, 8, tzinfo=datetime.timezone.utc),
    ],
]


def test_round_trip_through_our_own_writer_and_reader():
    data = arrow.write_stream(SCHEMA, [(ROWS, 3)])
    table = Table.read_stream(data)
    assert [c.to_pylist() for c in table.columns] == ROWS
    assert (
        table.column_names == ["i", "s", "d", "t"] and table.num_rows == 3 and table.shape == (3, 4)
    )
    assert table[1][1].as_py() == "ü"


def test_many_batches_and_an_empty_one():
    data = arrow.write_stream(
        SCHEMA, [([c[:1] for c in ROWS], 1), ([[] for _ in ROWS], 0), ([c[1:] for c in ROWS], 2)]
    )
    table = Table.read_stream(data)
    assert len(table.batches) == 3 and [c.to_pylist() for c in table.columns] == ROWS


@pytest.mark.parametrize("cut", [0, 3, 8, 100])
def test_truncated_streams_are_errors_not_garbage(cut):
    data = arrow.write_stream(SCHEMA, [(ROWS, 3)])
    with pytest.raises(arrow.ArrowError):
        Table.read_stream(data[:cut])


def test_out_of_range_value_is_a_clear_error():
    schema = arrow.Schema(
        [arrow.Field("b", arrow.DataType("int", (("bits", 8), ("signed", True))))]
    )
    with pytest.raises(
        arrow.ArrowError, match="cannot convert 300 of type int to Arrow .*out of range"
    ):
        arrow.write_stream(schema, [([[1, 300]], 2)])


def test_a_value_of_the_wrong_type_is_named_in_the_error():
    # createDataFrame([("not a number",)], "n INT") writes a str into an int32 column; the
    # stock client's pyarrow says "Could not convert 'not a number' with type str".
    schema = arrow.Schema(
        [arrow.Field("n", arrow.DataType("int", (("bits", 32), ("signed", True))))]
    )
    with pytest.raises(arrow.ArrowError, match="cannot convert 'not a number' of type str"):
        arrow.write_stream(schema, [([[None, "not a number"]], 2)])
