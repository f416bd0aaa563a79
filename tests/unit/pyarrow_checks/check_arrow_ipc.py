"""pyspark_web.arrow against pyarrow, both directions, with Hypothesis.

Runs inside build/venv-native (which has pyarrow), started by
tests/unit/test_arrow_ipc.py; pyarrow is a test-only dependency.
"""

import datetime
import decimal
import math

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyspark_web.arrow as arrow
from pyspark_web.arrow.table import Table

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# (pyarrow type, our type, strategy of one non-null value)
def _decimal(precision, scale):
    limit = 10**precision - 1
    return st.integers(-limit, limit).map(
        lambda v: decimal.Decimal((0 if v >= 0 else 1, tuple(map(int, str(abs(v)))), -scale))
    )


MICROS = st.integers(-(10**15), 10**15)
LEAVES = [
    (pa.bool_(), arrow.DataType("bool"), st.booleans()),
    (pa.int8(), arrow.DataType("int", (("bits", 8), ("signed", True))), st.integers(-128, 127)),
    (
        pa.int16(),
        arrow.DataType("int", (("bits", 16), ("signed", True))),
        st.integers(-(2**15), 2**15 - 1),
    ),
    (
        pa.int32(),
        arrow.DataType("int", (("bits", 32), ("signed", True))),
        st.integers(-(2**31), 2**31 - 1),
    ),
    (
        pa.int64(),
        arrow.DataType("int", (("bits", 64), ("signed", True))),
        st.integers(-(2**63), 2**63 - 1),
    ),
    (pa.float32(), arrow.DataType("float", (("bits", 32),)), st.floats(width=32)),
    (pa.float64(), arrow.DataType("float", (("bits", 64),)), st.floats()),
    (
        pa.decimal128(38, 18),
        arrow.DataType("decimal", (("precision", 38), ("scale", 18), ("bits", 128))),
        _decimal(38, 18),
    ),
    (
        pa.decimal128(10, 0),
        arrow.DataType("decimal", (("precision", 10), ("scale", 0), ("bits", 128))),
        _decimal(10, 0),
    ),
    (
        pa.decimal128(5, 2),
        arrow.DataType("decimal", (("precision", 5), ("scale", 2), ("bits", 128))),
        _decimal(5, 2),
    ),
    (pa.string(), arrow.DataType("utf8"), st.text()),
    (pa.large_string(), arrow.DataType("large_utf8"), st.text()),
    (pa.binary(), arrow.DataType("binary"), st.binary()),
    (pa.large_binary(), arrow.DataType("large_binary"), st.binary()),
    (pa.date32(), arrow.DataType("date", (("unit", "day"),)), st.dates()),
    (
        pa.timestamp("us"),
        arrow.DataType("timestamp", (("unit", "us"), ("tz", None))),
        st.datetimes(),
    ),
    (
        pa.timestamp("us", tz="UTC"),
        arrow.DataType("timestamp", (("unit", "us"), ("tz", "UTC"))),
        st.datetimes(timezones=st.just(datetime.timezone.utc)),
    ),
    (
        pa.timestamp("us", tz="America/Los_Angeles"),
        arrow.DataType("timestamp", (("unit", "us"), ("tz", "America/Los_Angeles"))),
        # pyarrow's to_pylist shows these in Los Angeles time, which cannot hold the first
        # hours of year 1 UTC (pytz: OverflowError); that is pyarrow's limit, not the format's.
        st.datetimes(
            min_value=datetime.datetime(1, 1, 2), timezones=st.just(datetime.timezone.utc)
        ),
    ),
    (
        pa.duration("us"),
        arrow.DataType("duration", (("unit", "us"),)),
        MICROS.map(lambda m: datetime.timedelta(microseconds=m)),
    ),
    (pa.time64("ns"), arrow.DataType("time", (("unit", "ns"), ("bits", 64))), st.times()),
]


def _field(name, ours, nullable=True):
    return arrow.Field(name, ours, nullable)


def nested(children):
    def as_list(child):
        pa_type, our_type, values = child
        return (
            pa.list_(pa_type),
            arrow.DataType("list", (), (_field("item", our_type),)),
            st.lists(st.none() | values, max_size=4),
        )

    def as_large_list(child):
        pa_type, our_type, values = child
        return (
            pa.large_list(pa_type),
            arrow.DataType("large_list", (), (_field("item", our_type),)),
            st.lists(st.none() | values, max_size=4),
        )

    def as_struct(pair):
        (pa_a, our_a, val_a), (pa_b, our_b, val_b) = pair
        pa_type = pa.struct([("a", pa_a), ("b", pa_b)])
        our_type = arrow.DataType("struct", (), (_field("a", our_a), _field("b", our_b)))
        return (
            pa_type,
            our_type,
            st.fixed_dictionaries({"a": st.none() | val_a, "b": st.none() | val_b}),
        )

    def as_map(child):
        pa_type, our_type, values = child
        entries = arrow.DataType(
            "struct", (), (_field("key", arrow.DataType("utf8"), False), _field("value", our_type))
        )
        return (
            pa.map_(pa.string(), pa_type),
            arrow.DataType("map", (("keys_sorted", False),), (_field("entries", entries, False),)),
            st.dictionaries(st.text(max_size=3), st.none() | values, max_size=3).map(
                lambda d: list(d.items())
            ),
        )

    return st.one_of(
        children.map(as_list),
        children.map(as_large_list),
        st.tuples(children, children).map(as_struct),
        children.map(as_map),
    )


TYPES = st.recursive(st.sampled_from(LEAVES), nested, max_leaves=4)


def columns_and_rows():
    return st.tuples(st.lists(TYPES, min_size=1, max_size=4), st.integers(0, 12)).flatmap(
        lambda spec: st.tuples(
            st.just(spec[0]),
            st.tuples(
                *[st.lists(st.none() | t[2], min_size=spec[1], max_size=spec[1]) for t in spec[0]]
            ),
            st.lists(st.integers(0, spec[1]), max_size=3),
        )
    )


def normalize(value):
    """Equal values compare equal: NaN, -0.0 kept by repr; aware datetimes by instant."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return ("aware", value.astimezone(datetime.timezone.utc).replace(tzinfo=None))
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def pyarrow_stream(schema, table, cuts, **options):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=pa.ipc.IpcWriteOptions(**options)) as writer:
        start = 0
        for cut in sorted(set(cuts)) + [table.num_rows]:
            writer.write_table(table.slice(start, cut - start)) if cut > start else None
            start = max(start, cut)
    return sink.getvalue().to_pybytes()


@SETTINGS
@given(columns_and_rows())
def check_pyarrow_writes_we_read(spec):
    types, columns, cuts = spec
    schema = pa.schema([pa.field(f"c{i}", t[0]) for i, t in enumerate(types)])
    table = pa.table([pa.array(c, type=t[0]) for c, t in zip(columns, types)], schema=schema)
    ours = Table.read_stream(pyarrow_stream(schema, table, cuts))
    assert ours.num_rows == table.num_rows
    for i in range(len(types)):
        assert normalize(ours.columns[i].to_pylist()) == normalize(table.column(i).to_pylist())


@SETTINGS
@given(columns_and_rows())
def check_we_write_pyarrow_reads(spec):
    types, columns, cuts = spec
    our_schema = arrow.Schema([arrow.Field(f"c{i}", t[1]) for i, t in enumerate(types)])
    rows = len(columns[0])
    bounds = [0] + sorted(set(c for c in cuts if 0 < c < rows)) + [rows]
    batches = [([list(c[a:b]) for c in columns], b - a) for a, b in zip(bounds, bounds[1:])]
    read = pa.ipc.open_stream(arrow.write_stream(our_schema, batches)).read_all()
    assert [f.type for f in read.schema] == [t[0] for t in types]
    expected = pa.table(
        [pa.array(c, type=t[0]) for c, t in zip(columns, types)],
        names=[f"c{i}" for i in range(len(types))],
    )
    for i in range(len(types)):
        assert normalize(read.column(i).to_pylist()) == normalize(expected.column(i).to_pylist())


def check_schema_without_batches_and_empty_batches():
    schema = pa.schema([("a", pa.int64()), ("s", pa.string())])
    empty = pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    ours = Table.read_stream(pyarrow_stream(schema, empty, []))
    assert (
        ours.num_rows == 0 and ours.column_names == ["a", "s"] and ours.columns[0].to_pylist() == []
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for _ in range(3):
            writer.write_batch(
                pa.record_batch(
                    [pa.array([], pa.int64()), pa.array([], pa.string())], schema=schema
                )
            )
        writer.write_table(pa.table({"a": [1], "s": ["x"]}, schema=schema))
    ours = Table.read_stream(sink.getvalue().to_pybytes())
    assert ours.columns[1].to_pylist() == ["x"] and len(ours.batches) == 4


def check_zstd_compressed_stream_is_decoded():
    table = pa.table({"a": list(range(1000)), "s": ["x" * (i % 7) for i in range(1000)]})
    data = pyarrow_stream(table.schema, table, [], compression="zstd")
    ours = Table.read_stream(data)
    assert ours.columns[0].to_pylist() == list(range(1000))
    assert ours.columns[1].to_pylist() == table.column(1).to_pylist()


def check_lz4_without_the_codec_names_it():
    table = pa.table({"a": list(range(10))})
    data = pyarrow_stream(table.schema, table, [], compression="lz4")
    with pytest.raises(arrow.ArrowError, match="compressed with lz4; install the lz4 package"):
        Table.read_stream(data)


def check_variant_struct_and_metadata_survive():
    variant = pa.struct(
        [
            pa.field("value", pa.binary(), nullable=False),
            pa.field("metadata", pa.binary(), nullable=False, metadata={b"variant": b"true"}),
        ]
    )
    table = pa.table(
        {"v": pa.array([{"value": b"\x0c\x01", "metadata": b"\x01\x00\x00"}, None], type=variant)}
    )
    ours = Table.read_stream(pyarrow_stream(table.schema, table, []))
    assert ours.columns[0].to_pylist() == table.column(0).to_pylist()
    assert dict(ours.schema.fields[0].type.children[1].metadata) == {"variant": "true"}


def check_truncated_stream_is_an_error():
    table = pa.table({"a": list(range(100))})
    data = pyarrow_stream(table.schema, table, [])
    for cut in (5, 20, len(data) // 2, len(data) - 9):
        with pytest.raises(arrow.ArrowError):
            Table.read_stream(data[:cut])
