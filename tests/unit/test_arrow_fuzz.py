"""pyspark_web.arrow.read_stream against mutated streams (issue 11): every input either
reads or raises ArrowError, within a time bound, and never through the reader's safety
net (which would mean a failure the reader does not name).

Seeds: streams of our own writer (built here) and of pyarrow (tests/unit/fuzz_seeds/,
written by pyarrow_checks/make_fuzz_seeds.py; some lz4/zstd-compressed). Mutations: bit
flips, bytes and aligned int32/int64 overwritten with edge values, truncation, insertion,
deletion, duplication, and splices of two seeds. Derandomized: CI runs the same few
thousand examples every time. bench/fuzz_arrow.py runs the same strategies for longer.
"""

import datetime
import decimal
import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_arrow_hostile import Overtime, deadline

import pyspark_web.arrow as arrow
from pyspark_web.arrow import reader

pytestmark = pytest.mark.unit

SECONDS_PER_EXAMPLE = 2
SEED_DIR = Path(__file__).resolve().parent / "fuzz_seeds"

T, F = arrow.DataType, arrow.Field


def _int(bits, signed=True):
    return T("int", (("bits", bits), ("signed", signed)))


def _our_seeds():
    utc = datetime.timezone.utc
    entries = T("struct", (), (F("key", T("utf8"), False), F("value", _int(64))))
    schemas = {
        "ints": (
            [F("i8", _int(8)), F("u16", _int(16, False)), F("i32", _int(32)), F("i64", _int(64))],
            [[1, None, -128], [0, 65535, None], [None, 2, 3], [2**63 - 1, None, -(2**63)]],
        ),
        "floats": (
            [
                F("f16", T("float", (("bits", 16),))),
                F("f32", T("float", (("bits", 32),))),
                F("f64", T("float", (("bits", 64),))),
                F("b", T("bool")),
            ],
            [[1.5, None, -2.0], [0.25, None, 1.0], [float("inf"), -0.0, None], [True, None, False]],
        ),
        "strings": (
            [
                F("s", T("utf8")),
                F("ls", T("large_utf8")),
                F("bin", T("binary")),
                F("lbin", T("large_binary")),
            ],
            [["a", None, "ü€"], ["", "x", None], [b"\x00", None, b"ab"], [None, b"", b"z"]],
        ),
        "decimal-dates": (
            [
                F("d", T("decimal", (("precision", 10), ("scale", 2), ("bits", 128)))),
                F("day", T("date", (("unit", "day"),))),
                F("ts", T("timestamp", (("unit", "us"), ("tz", "UTC")))),
                F("t", T("time", (("unit", "ns"), ("bits", 64)))),
                F("dur", T("duration", (("unit", "ms"),))),
            ],
            [
                [decimal.Decimal("1.25"), None, decimal.Decimal("-99.99")],
                [datetime.date(2024, 2, 29), None, datetime.date(1, 1, 1)],
                [
                    datetime.datetime(2024, 2, 29, 12, tzinfo=utc),
                    None,
                    datetime.datetime(1970, 1, 1, tzinfo=utc),
                ],
                [datetime.time(1, 2, 3, 4), None, datetime.time(0)],
                [datetime.timedelta(seconds=5), None, datetime.timedelta(-1)],
            ],
        ),
        "nested": (
            [
                F("l", T("list", (), (F("item", _int(32)),))),
                F("ll", T("large_list", (), (F("item", T("utf8")),))),
                F("st", T("struct", (), (F("a", _int(64)), F("b", T("utf8"))))),
                F("m", T("map", (("keys_sorted", False),), (F("entries", entries, False),))),
            ],
            [
                [[1, None], None, []],
                [["a"], [None, "b"], None],
                [{"a": 1, "b": "x"}, None, {"a": None, "b": None}],
                [{"k": 1}, None, {"a": None, "b": 2}],
            ],
        ),
        "nulls": (
            [
                F("n", T("null")),
                F("e", T("struct")),
                F("ln", T("list", (), (F("item", T("null")),))),
            ],
            [[None, None, None], [{}, None, {}], [[None], [], None]],
        ),
    }
    seeds = {}
    for name, (fields, columns) in schemas.items():
        schema = arrow.Schema(fields)
        seeds[name] = arrow.write_stream(schema, [(columns, 3)])
        batches = [([c[i : i + 1] for c in columns], 1) for i in range(3)] + [
            ([[] for _ in columns], 0)
        ]
        seeds[f"{name}-batches"] = arrow.write_stream(schema, batches)
    return seeds


OUR_SEEDS = _our_seeds()
PYARROW_SEEDS = {path.stem: path.read_bytes() for path in sorted(SEED_DIR.glob("*.arrows"))}
ALL_SEEDS = {
    **{f"ours/{k}": v for k, v in OUR_SEEDS.items()},
    **{f"pyarrow/{k}": v for k, v in PYARROW_SEEDS.items()},
}

BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFF)
INT32 = (0, 1, -1, 2, 8, -8, 255, 2**15, 2**16, 2**31 - 1, -(2**31), 10**9)
INT64 = (0, 1, -1, 8, -8, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, -(2**63), 10**9, 10**15)


def _position(data, draw, align=1):
    # Hypothesis favours edge values (0, the end) in its integers; a Random it controls
    # spreads positions over the whole stream, reproducibly.
    at = draw(st.randoms(use_true_random=True)).randrange(max(len(data), 1))
    return at - at % align


def _flip(draw, data, other):
    at = _position(data, draw)
    if data:
        data[at] ^= 1 << draw(st.integers(0, 7))
    return data


def _byte(draw, data, other):
    at = _position(data, draw)
    if data:
        data[at] = draw(st.sampled_from(BYTES))
    return data


def _word(draw, data, other):
    size = draw(st.sampled_from((4, 8)))
    at = _position(data, draw, size)
    if at + size <= len(data):
        value = draw(
            st.sampled_from(INT32 if size == 4 else INT64)
            | st.integers(-(2 ** (8 * size - 1)), 2 ** (8 * size - 1) - 1)
        )
        data[at : at + size] = value.to_bytes(size, "little", signed=True)
    return data


def _truncate(draw, data, other):
    return data[: _position(data, draw)]


def _insert(draw, data, other):
    at = _position(data, draw)
    data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return data


def _delete(draw, data, other):
    at = _position(data, draw)
    del data[at : at + draw(st.integers(1, 16))]
    return data


def _duplicate(draw, data, other):
    at = _position(data, draw)
    size = draw(st.integers(1, 64))
    data[at:at] = data[at : at + size]
    return data


def _splice(draw, data, other):
    cut, at = _position(data, draw), _position(other, draw)
    return data[:cut] + other[at:]


# In-place changes reach past the framing into metadata and buffers; the ones that shift
# bytes (truncate, insert, delete, duplicate, splice) mostly test the framing. Weighted so.
MUTATIONS = (
    (_flip,) * 4 + (_byte,) * 2 + (_word,) * 4 + (_truncate, _insert, _delete, _duplicate, _splice)
)


@st.composite
def mutated(draw, seeds):
    """(seed name, mutated bytes) from one of ``seeds``, mutated one to four times (mostly
    once)."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.sampled_from((1, 1, 1, 1, 2, 2, 3, 4)))):
        mutation = draw(st.sampled_from(MUTATIONS))
        other = (
            bytearray(seeds[draw(st.sampled_from(sorted(seeds)))]) if mutation is _splice else None
        )
        data = mutation(draw, data, other)
    return name, bytes(data)


def outcome(data, seconds=SECONDS_PER_EXAMPLE):
    """'read', 'ArrowError' or 'safety net'; any other exception (and a timeout) raises."""
    with deadline(seconds):
        try:
            arrow.read_stream(data)
        except arrow.ArrowError as error:
            return "safety net" if str(error).startswith(reader.UNEXPECTED) else "ArrowError"
    return "read"


FUZZ = settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_the_seeds_read():
    # A seed that does not read would make the fuzzing below test only the error paths.
    for name, data in ALL_SEEDS.items():
        if name.endswith(("-lz4", "-zstd")):
            continue  # the test venv has neither codec; bench/fuzz_arrow.py runs them
        schema, batches = arrow.read_stream(data)
        assert batches and schema.fields, name
    assert len(PYARROW_SEEDS) >= 10


@FUZZ
@given(mutated(OUR_SEEDS))
def test_mutated_streams_of_our_writer(example):
    name, data = example
    assert outcome(data) != "safety net", name


@FUZZ
@given(mutated(PYARROW_SEEDS))
def test_mutated_streams_of_pyarrow(example):
    name, data = example
    assert outcome(data) != "safety net", name


# The same at length, only with -m fuzz_long (bench/fuzz_arrow.py counts outcomes instead).
LONG = settings(
    FUZZ, max_examples=int(os.environ.get("PYSPARK_WEB_FUZZ_EXAMPLES", 50_000)), derandomize=False
)


@pytest.mark.fuzz_long
@LONG
@given(mutated({**OUR_SEEDS, **PYARROW_SEEDS}))
def test_long_mutated_streams(example):
    name, data = example
    assert outcome(data) != "safety net", name


def test_the_deadline_catches_a_hang(monkeypatch):
    # The time bound above is real: a reader that hangs fails the example.
    monkeypatch.setattr(reader, "_read_stream", lambda view: time.sleep(5))
    began = time.monotonic()
    with pytest.raises(Overtime):
        outcome(OUR_SEEDS["ints"], seconds=0.2)
    assert time.monotonic() - began < 2 and signal.getitimer(signal.ITIMER_REAL)[0] == 0
