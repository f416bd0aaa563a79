"""pyspark_web.arrow against hostile streams (issue 11): what a server or proxy could send
must end in ArrowError, quickly, never in a loop or an exponential build.

Each hostile stream is a valid one from our own writer with a few numbers patched. The
comment on each test says what the reader did with it before the fix."""

import contextlib
import datetime
import decimal
import signal
import struct
import sys
import types

import pytest

import pyspark_web.arrow as arrow
from pyspark_web.arrow import compression, metadata, reader, writer
from pyspark_web.arrow.flatbuf import Reader, Scalar, Structs
from pyspark_web.arrow.flatbuf import Table as FbTable

pytestmark = pytest.mark.unit

T = arrow.DataType
F = arrow.Field
INT64 = T("int", (("bits", 64), ("signed", True)))
UTF8 = T("utf8")
DEC = T("decimal", (("precision", 10), ("scale", 2), ("bits", 128)))
BILLION = 1_000_000_000


class Overtime(BaseException):
    """A reader that ran past its deadline. A BaseException, like KeyboardInterrupt: the
    reader's safety net turns every Exception into ArrowError, and must not hide a hang."""


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging: SIGALRM interrupts a reader that does not stop."""

    def expired(signum, frame):
        raise Overtime(f"the reader ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def messages(data):
    """(metadata start, metadata size, body length) of each message of a stream."""
    spans, offset = [], 0
    while offset + 8 <= len(data):
        marker, size = struct.unpack_from("<Ii", data, offset)
        assert marker == 0xFFFFFFFF
        if size == 0:
            break
        start = offset + 8
        body = Reader.root(memoryview(data)[start : start + size]).scalar(3, "q")
        spans.append((start, size, body))
        offset = start + size + body
    return spans


def field_at(message_start, data, offset_in_message, field_id):
    """Absolute position of a table field's value, for patching."""
    reader = Reader(memoryview(data)[message_start:], offset_in_message)
    return message_start + reader.pos + reader._offset(field_id)


def stream(fields, *batches):
    """Our writer's stream of ``fields`` and ``(columns, num_rows)`` batches, patchable."""
    return bytearray(arrow.write_stream(arrow.Schema(list(fields)), list(batches)))


def read(data, seconds=2):
    with deadline(seconds):
        return arrow.read_stream(bytes(data))


def refused(data, match):
    with pytest.raises(arrow.ArrowError, match=match):
        read(data)


class Batch:
    """Where a record batch message keeps its numbers, to patch them in place."""

    def __init__(self, data, index=1):
        self.data = data
        start, size, _ = messages(data)[index]
        header = Reader.root(memoryview(bytes(data))[start : start + size]).table(2)
        self.length_at = start + header.pos + header._offset(0)
        count, first = header._vector(1)
        self.nodes_count_at, self.nodes = (
            start + first - 4,
            [start + first + 16 * i for i in range(count)],
        )
        count, first = header._vector(2)
        self.buffers_count_at, self.buffers = (
            start + first - 4,
            [start + first + 16 * i for i in range(count)],
        )
        self.body = start + size

    def length(self, rows):
        struct.pack_into("<q", self.data, self.length_at, rows)

    def node(self, index, length=None, null_count=None):
        if length is not None:
            struct.pack_into("<q", self.data, self.nodes[index], length)
        if null_count is not None:
            struct.pack_into("<q", self.data, self.nodes[index] + 8, null_count)

    def buffer(self, index, offset=None, size=None):
        if offset is not None:
            struct.pack_into("<q", self.data, self.buffers[index], offset)
        if size is not None:
            struct.pack_into("<q", self.data, self.buffers[index] + 8, size)

    def buffer_span(self, index):
        return struct.unpack_from("<qq", self.data, self.buffers[index])

    def put(self, index, fmt, *values, at=0):
        """Overwrite values inside buffer ``index`` (at byte ``at`` of it)."""
        offset, _ = self.buffer_span(index)
        struct.pack_into(fmt, self.data, self.body + offset + at, *values)


def schema_field(data, index=0):
    """The index-th top-level field table of a stream's schema, as a Reader over it."""
    start, size, _ = messages(data)[0]
    fields = Reader.root(memoryview(bytes(data))[start : start + size]).table(2).tables(1)
    return start, fields[index]


# ---------------------------------------------------------------- schema limits (existed)


def test_a_negative_body_length_is_refused():
    data = bytearray(
        arrow.write_stream(arrow.Schema([arrow.Field("i", INT64)]), [([[1, 2, 3]], 3), ([[4]], 1)])
    )
    start, size, body = messages(data)[1]
    root = struct.unpack_from("<I", data, start)[0]
    struct.pack_into("<q", data, field_at(start, data, root, 3), -(size + 8 + body))
    with deadline(2), pytest.raises(arrow.ArrowError, match="negative body length"):
        arrow.read_stream(bytes(data))


def chain(depth):
    """A struct per level with two children: the next level and an int leaf."""
    field = arrow.Field("leaf", INT64)
    for level in range(depth):
        field = arrow.Field(
            f"s{level}", arrow.DataType("struct", (), (field, arrow.Field(f"x{level}", INT64)))
        )
    return field


def test_children_that_point_twice_at_one_table_do_not_multiply():
    data = bytearray(arrow.write_stream(arrow.Schema([chain(40)]), []))
    start, size, _ = messages(data)[0]
    meta = memoryview(data)[start : start + size]
    # Point every struct's second child at its first: 2^40 fields, described in ~2 KB.
    pending = Reader.root(meta).table(2).tables(1)
    patched = 0
    while pending:
        table = pending.pop()
        count, vector = table._vector(5)
        if count == 2:
            first = struct.unpack_from("<I", data, start + vector)[0]
            struct.pack_into("<I", data, start + vector + 4, first - 4)
            patched += 1
            pending.append(table.tables(5)[0])
    assert patched == 40
    with deadline(2), pytest.raises(arrow.ArrowError, match="more than 10000 fields"):
        arrow.read_stream(bytes(data))


def test_nesting_deeper_than_the_limit_is_refused():
    field = arrow.Field("leaf", INT64)
    for level in range(metadata.MAX_NESTING):
        field = arrow.Field(f"l{level}", arrow.DataType("list", (), (field,)))
    with deadline(2), pytest.raises(arrow.ArrowError, match="nests more than 64 levels"):
        arrow.read_stream(arrow.write_stream(arrow.Schema([field]), []))


def test_the_limits_leave_real_schemas_alone():
    # 64 levels and a few thousand fields: what Spark could send, read as before.
    field = arrow.Field("leaf", INT64)
    for level in range(metadata.MAX_NESTING - 1):
        field = arrow.Field(f"l{level}", arrow.DataType("list", (), (field,)))
    wide = [arrow.Field(f"c{i}", INT64) for i in range(5000)]
    schema, _ = arrow.read_stream(arrow.write_stream(arrow.Schema([field, *wide]), []))
    assert len(schema.fields) == 5001


def test_the_writer_refuses_nesting_deeper_than_the_limit():
    # Before: RecursionError from the writer at 1,200 levels.
    field = F("leaf", INT64)
    for level in range(1200):
        field = F(f"l{level}", T("list", (), (field,)))
    with pytest.raises(arrow.ArrowError, match="nests more than 64 levels"):
        arrow.write_stream(arrow.Schema([field]), [])


def test_a_shared_name_is_decoded_once():
    # 5,000 fields whose names all point at one 64 KB string: before, 5,000 copies (0.7 s,
    # 340 MB); now one, shared.
    name = "n" * 65536
    data = stream([F(f"c{i}", INT64) for i in range(4999)] + [F(name, INT64)])
    start, size, _ = messages(data)[0]
    fields = Reader.root(memoryview(bytes(data))[start : start + size]).table(2).tables(1)
    target = fields[-1]._target(0)  # flatbuffer offsets point forward: share the last name
    for table in fields[:-1]:
        slot = table.pos + table._offset(0)
        struct.pack_into("<I", data, start + slot, target - slot)
    schema, _ = read(data)
    assert all(f.name is schema.fields[0].name for f in schema.fields)


# ---------------------------------------------------------------- finding 3: node lengths


def test_a_null_column_cannot_claim_a_billion_rows():
    # Before: [None] * 10^9 from a 280-byte stream: 18 s and 7.6 GB (MemoryError with less).
    data = stream([F("n", T("null"))], ([[None] * 3], 3))
    batch = Batch(data)
    batch.length(BILLION)
    batch.node(0, BILLION, BILLION)
    refused(data, "MAX_ROWS_WITHOUT_DATA")


def test_a_struct_without_fields_cannot_claim_a_billion_rows():
    # Before: 10^9 empty dicts, 22 s and then MemoryError (under a 12 GB limit).
    data = stream([F("s", T("struct"))], ([[{}] * 3], 3))
    batch = Batch(data)
    batch.length(BILLION)
    batch.node(0, BILLION)
    refused(data, "MAX_ROWS_WITHOUT_DATA")


def test_a_column_needs_data_for_every_row():
    # Before: a decimal column with 32 bytes of data read as 1,000,000 values, no error.
    data = stream([F("d", DEC)], ([[decimal.Decimal("1.00"), decimal.Decimal("2.00")]], 2))
    batch = Batch(data)
    batch.length(1_000_000)
    batch.node(0, 1_000_000)
    refused(data, r"'d'.* 32 bytes.* needs 16000000")


@pytest.mark.parametrize("kind", ["int", "bool", "utf8", "interval"])
def test_every_fixed_layout_checks_its_buffer(kind):
    # Before: bool and interval read past their data as short lists (bool) or struct.error.
    dtype, values = {
        "int": (INT64, [1, 2]),
        "bool": (T("bool"), [True, False]),
        "utf8": (UTF8, ["a", "b"]),
        "interval": (T("interval", (("unit", "year_month"),)), None),
    }[kind]
    if values is None:  # our writer has no intervals: an int32 column, retyped
        data = stream([F("c", T("int", (("bits", 32), ("signed", True))))], ([[1, 2]], 2))
        start, field = schema_field(data)
        struct.pack_into(
            "<B", data, start + field.pos + field._offset(2), metadata.TYPE_IDS["interval"]
        )
        type_table = field.table(3)
        struct.pack_into("<h", data, start + type_table.pos + type_table._offset(0), 0)
    else:
        data = stream([F("c", dtype)], ([values], 2))
    batch = Batch(data)
    batch.length(100_000)
    batch.node(0, 100_000)
    refused(data, "'c'.* needs")


def test_every_column_has_its_batch_length():
    # Before: a 2-value column in a 3-row batch, no error.
    data = stream([F("i", INT64)], ([[1, 2, 3]], 3))
    Batch(data).node(0, 2)
    refused(data, "'i' has 2 values.* record batch has 3 rows")


@pytest.mark.parametrize("null_count", [-1, 4])
def test_null_counts_stay_within_the_length(null_count):
    # Before: accepted, the bitmap read anyway.
    data = stream([F("i", INT64)], ([[1, None, 3]], 3))
    Batch(data).node(0, null_count=null_count)
    refused(data, f"null count {null_count}")


def test_a_list_child_holds_what_the_offsets_need():
    # Before: [[1], []] instead of an error.
    data = stream([F("l", T("list", (), (F("item", INT64),)))], ([[[1, 2], [3]]], 2))
    Batch(data).node(1, 1)
    refused(data, r"'l.item' has 1 values.* offsets need 3")


def test_a_list_of_nulls_cannot_claim_two_billion_items():
    # Before: [None] * (2^31 - 1) from a 1-row list: MemoryError (or 16 GB).
    data = stream([F("l", T("list", (), (F("item", T("null")),)))], ([[[None]]], 1))
    batch = Batch(data)
    batch.put(1, "<i", 2**31 - 1, at=4)  # the list's end offset
    batch.node(1, 2**31 - 1, 0)
    refused(data, "MAX_ROWS_WITHOUT_DATA")


def test_rows_without_data_are_limited_across_batches():
    # Before: three batches of 5,000,001 nulls each, 15 million values, no error.
    rows = reader.MAX_ROWS_WITHOUT_DATA // 2 + 1
    data = stream([F("n", T("null"))], *[([[None]], 1)] * 3)
    for index in (1, 2, 3):
        batch = Batch(data, index)
        batch.length(rows)
        batch.node(0, rows, rows)
    refused(data, "MAX_ROWS_WITHOUT_DATA")


def test_a_batch_without_columns_cannot_claim_unbounded_rows():
    # Before: a batch of 2^62 rows and no columns, accepted.
    data = stream([], ([], 5))
    Batch(data).length(2**62)
    refused(data, "MAX_ROWS_WITHOUT_DATA")


def test_buffers_may_not_overlap():
    # Before: the second column read the first one's bytes: [1, 2, 3] twice.
    data = stream([F("a", INT64), F("b", INT64)], ([[1, 2, 3], [4, 5, 6]], 3))
    batch = Batch(data)
    batch.buffer(3, offset=batch.buffer_span(1)[0])
    refused(data, "overlap")


@pytest.mark.parametrize("span", [(0, -8), (-8, 8), (0, 2**62)])
def test_buffers_lie_inside_their_body(span):
    # Before: a negative size was accepted (an empty slice) when the column had no nulls.
    data = stream([F("i", INT64)], ([[1, 2, 3]], 3))
    Batch(data).buffer(0, *span)
    refused(data, "buffer")


def test_a_negative_batch_length_is_refused():
    # Before: accepted for a schema without columns.
    data = stream([], ([], 1))
    Batch(data).length(-1)
    refused(data, "negative")


# ---------------------------------------------------------------- finding 12: validity, offsets


def test_a_validity_bitmap_covers_every_row():
    # Before: a 1-byte bitmap for 100 rows gave a column of 8 values, no error.
    data = stream([F("i", INT64)], ([[None if i % 3 == 0 else i for i in range(100)]], 100))
    Batch(data).buffer(0, size=1)
    refused(data, "'i'.* validity.* 1 bytes.* needs 13")


@pytest.mark.parametrize(
    "offsets, match",
    [((-2, 2, 4), "start at -2"), ((0, 3, 2), "decrease"), ((0, 2, 9), "end at 9.* 4-byte data")],
)
def test_string_offsets_stay_ordered_inside_the_data(offsets, match):
    # Before: -2 wrapped around like a Python slice (["cd", ""]); decreasing offsets gave
    # empty strings; an end past the data was cut short silently.
    data = stream([F("s", UTF8)], ([["ab", "cd"]], 2))
    Batch(data).put(1, "<3i", *offsets)
    refused(data, "'s'.* " + match)


def test_list_offsets_must_not_decrease():
    # Before: [[1, 2, 3], []] from offsets (0, 3, 1).
    data = stream([F("l", T("list", (), (F("item", INT64),)))], ([[[1, 2], [3]]], 2))
    Batch(data).put(1, "<3i", 0, 3, 1)
    refused(data, "'l'.* decrease")


# ---------------------------------------------------------------- finding 4: only ArrowError


def test_too_few_field_nodes_is_an_arrow_error():
    # Before: StopIteration (in the client's generator: RuntimeError).
    data = stream([F("i", INT64)], ([[1]], 1))
    struct.pack_into("<I", data, Batch(data).nodes_count_at, 0)
    refused(data, "field nodes")


def test_too_few_buffers_is_an_arrow_error():
    # Before: StopIteration.
    data = stream([F("i", INT64)], ([[1]], 1))
    struct.pack_into("<I", data, Batch(data).buffers_count_at, 1)
    refused(data, "buffers")


def test_invalid_utf8_in_a_string_column_names_the_column():
    # Before: UnicodeDecodeError.
    data = stream([F("s", UTF8)], ([["ab"]], 1))
    Batch(data).put(2, "<2B", 0xFF, 0xFE)
    refused(data, "'s'.* UTF-8")


def test_invalid_utf8_in_a_field_name_is_an_arrow_error():
    # Before: UnicodeDecodeError from the flatbuffer reader.
    data = stream([F("ab", INT64)], ([[1]], 1))
    start, field = schema_field(data)
    struct.pack_into("<2B", data, start + field._target(0) + 4, 0xFF, 0xFE)
    refused(data, "UTF-8")


@pytest.mark.parametrize(
    "dtype, value, raw",
    [
        (T("date", (("unit", "day"),)), datetime.date(2020, 1, 1), ("<i", 2**31 - 1)),
        (
            T("timestamp", (("unit", "us"), ("tz", None))),
            datetime.datetime(2020, 1, 1),
            ("<q", 2**63 - 1),
        ),
        (
            T("timestamp", (("unit", "us"), ("tz", "UTC"))),
            datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
            ("<q", -(2**63)),
        ),
        (T("duration", (("unit", "s"),)), datetime.timedelta(1), ("<q", 2**63 - 1)),
        (T("time", (("unit", "us"), ("bits", 64))), datetime.time(1, 2, 3), ("<q", -1)),
        (T("time", (("unit", "us"), ("bits", 64))), datetime.time(1, 2, 3), ("<q", 86_400_000_000)),
    ],
    ids=["date32", "timestamp", "timestamp-utc", "duration", "time-negative", "time-24h"],
)
def test_values_outside_pythons_range_name_the_column(dtype, value, raw):
    # Before: ValueError or OverflowError; a time of 24:00 read as 00:00.
    data = stream([F("t", dtype)], ([[value]], 1))
    Batch(data).put(1, *raw)
    refused(data, "'t'.* out of range")


def test_a_field_without_its_type_table_is_an_arrow_error():
    # Before: AttributeError ('NoneType' object has no attribute 'scalar').
    data = stream([F("i", INT64)], ([[1]], 1))
    start, field = schema_field(data)
    struct.pack_into("<H", data, start + field._vtable + 4 + 2 * 3, 0)
    refused(data, "'i'.* type")


@pytest.mark.parametrize("patch", ["unit", "int-bits", "decimal-bits", "width"])
def test_type_parameters_outside_their_range(patch):
    # Before: a time unit of -1 read silently as nanoseconds; int bits of 12 and a width of
    # -3 were KeyError-turned-ArrowError or ValueError; decimal bits of 0, ValueError.
    dtype, value, field_id, fmt, bad = {
        "unit": (
            T("timestamp", (("unit", "us"), ("tz", None))),
            datetime.datetime(2020, 1, 1),
            0,
            "<h",
            -1,
        ),
        "int-bits": (INT64, 1, 0, "<i", 12),
        "decimal-bits": (DEC, decimal.Decimal("1.00"), 2, "<i", 0),
        "width": (T("fixed_binary", (("width", 3),)), b"abc", 0, "<i", -3),
    }[patch]
    if patch == "width":  # our writer has no fixed_binary: a decimal, retyped
        data = stream([F("c", DEC)], ([[decimal.Decimal("1.00")]], 1))
        start, field = schema_field(data)
        struct.pack_into(
            "<B", data, start + field.pos + field._offset(2), metadata.TYPE_IDS["fixed_binary"]
        )
    else:
        data = stream([F("c", dtype)], ([[value]], 1))
        start, field = schema_field(data)
    type_table = field.table(3)
    struct.pack_into(fmt, data, start + type_table.pos + type_table._offset(field_id), bad)
    refused(data, f"'c'.*{bad}")


@pytest.mark.parametrize(
    "patch, match",
    [("null", "null field 'entries' has 2 children"), ("one-field", "'m'.* struct of two fields")],
)
def test_a_map_must_hold_a_struct_of_two_fields(patch, match):
    # Before: entries retyped to null, TypeError (argument of type 'NoneType' is not
    # iterable); entries with one field, "malformed Arrow IPC stream: list index out of range".
    map_type = T(
        "map",
        (("keys_sorted", False),),
        (F("entries", T("struct", (), (F("key", UTF8, False), F("value", INT64))), False),),
    )
    data = stream([F("m", map_type)], ([[[("a", 1)]]], 1))
    start, field = schema_field(data)
    entries = field.tables(5)[0]
    if patch == "null":
        struct.pack_into(
            "<B", data, start + entries.pos + entries._offset(2), metadata.TYPE_IDS["null"]
        )
    else:
        struct.pack_into("<I", data, start + entries._vector(5)[1] - 4, 1)
    refused(data, match)


def test_a_second_schema_is_refused():
    # Before: accepted, the second schema replacing the first.
    data = stream([F("i", INT64)], ([[1]], 1))
    start, size, _ = messages(data)[0]
    data[start + size : start + size] = data[start - 8 : start + size]
    refused(data, "second schema")


def test_the_safety_net_turns_other_errors_into_arrow_errors(monkeypatch):
    # Before: ZeroDivisionError escaped read_stream.
    def broken(*args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(reader, "_read_batch", broken)
    data = stream([F("i", INT64)], ([[1]], 1))
    with pytest.raises(arrow.ArrowError, match="ZeroDivisionError: a bug") as raised:
        read(data)
    assert isinstance(raised.value.__cause__, ZeroDivisionError)


def test_the_safety_net_leaves_memory_errors_alone(monkeypatch):
    def exhausted(*args):
        raise MemoryError

    monkeypatch.setattr(reader, "_read_batch", exhausted)
    with pytest.raises(MemoryError):
        read(stream([F("i", INT64)], ([[1]], 1)))


def test_read_stream_documents_its_only_error_and_the_limits():
    # The package's entry points are the modules' own functions, and the one error class
    # is the one every module raises.
    from pyspark_web.arrow import types as model

    assert arrow.read_stream is reader.read_stream and arrow.write_stream is writer.write_stream
    assert arrow.ArrowError is model.ArrowError is reader.ArrowError is writer.ArrowError
    assert metadata.ArrowError is compression.ArrowError is model.ArrowError
    doc = arrow.read_stream.__doc__
    for name in (
        "ArrowError",
        "MAX_NESTING",
        "MAX_FIELDS",
        "MAX_ROWS_WITHOUT_DATA",
        "MAX_DECOMPRESSED_BYTES",
    ):
        assert name in doc, name
    # and each limit it names is where the docstring says it is, with the value it says
    assert (metadata.MAX_NESTING, metadata.MAX_FIELDS) == (64, 10_000)
    assert (reader.MAX_ROWS_WITHOUT_DATA, reader.MAX_DECOMPRESSED_BYTES) == (10_000_000, 2 << 30)


# ---------------------------------------------------------------- finding 13: float16


def test_float16_decodes_on_every_supported_python():
    # Before (CPython < 3.12): ValueError from memoryview.cast("e").
    values = [1.5, None, -2.0, float("inf"), 65504.0]
    data = stream([F("h", T("float", (("bits", 16),)))], ([values], 5))
    _, batches = read(data)
    assert batches[0].columns[0].to_pylist() == values


# ---------------------------------------------------------------- compressed buffers


def compressed_stream(fields, columns, rows, codec=1, compress=bytes):
    """A one-batch stream whose buffers are 'compressed' by ``compress`` (codec 0: lz4,
    1: zstd), each prefixed by its uncompressed length as Arrow lays it out."""
    schema = arrow.Schema(list(fields))
    plain = writer._Body()
    for f, values in zip(schema.fields, columns):
        writer._write_array(f.type, values, plain)
    body = writer._Body()
    for offset, size in plain.buffers:
        raw = bytes(plain.data[offset : offset + size])
        body.add(struct.pack("<q", size) + compress(raw) if size else b"")
    header = FbTable(
        [
            Scalar("q", rows),
            Structs("qq", plain.nodes),
            Structs("qq", body.buffers),
            FbTable([Scalar("b", codec), Scalar("b", 0)]),
        ]
    )
    message = writer._message(metadata.HEADER_RECORD_BATCH, header, len(body.data))
    return bytearray(
        writer.schema_message(schema) + message + bytes(body.data) + metadata.END_OF_STREAM
    )


class Bomb:
    """A fake decompressor, called as the reader calls one: with a payload and the declared
    size, of which it may return one byte more (so that the reader sees a bomb). This one
    produces 64 MiB, or as much as it may. Records the sizes it was given."""

    def __init__(self, output=None):
        self.asked = []
        self.output = output

    def __call__(self, payload, limit=None):
        self.asked.append(limit)
        if self.output is not None:
            return self.output(payload)
        return b"\0" * (64 << 20 if limit is None else limit + 1)


def with_decompressor(monkeypatch, fake):
    monkeypatch.setattr(compression, "decompressor", lambda codec: fake)
    return fake


def test_a_decompression_bomb_stops_at_the_declared_size(monkeypatch):
    # Before: the fake's 64 MiB were taken whole for a 24-byte buffer, no error.
    bomb = with_decompressor(monkeypatch, Bomb())
    data = compressed_stream([F("i", INT64)], [[1, 2, 3]], 3)
    refused(data, "more than its declared 24 bytes")
    assert bomb.asked == [24]


@pytest.mark.parametrize("declared, match", [(2**40, "MAX_DECOMPRESSED_BYTES"), (-5, "-5")])
def test_a_declared_size_out_of_range_is_refused_before_decompressing(monkeypatch, declared, match):
    # Before: the fake was called (without a size) and its output accepted.
    bomb = with_decompressor(monkeypatch, Bomb(output=lambda payload: payload))
    data = compressed_stream([F("i", INT64)], [[1, 2, 3]], 3)
    batch = Batch(data)
    struct.pack_into("<q", data, batch.body + batch.buffer_span(1)[0], declared)
    refused(data, match)
    assert bomb.asked == []


def test_the_decompressed_limit_spans_the_whole_stream(monkeypatch):
    monkeypatch.setattr(reader, "MAX_DECOMPRESSED_BYTES", 40)
    with_decompressor(monkeypatch, Bomb(output=lambda payload: payload))
    data = compressed_stream([F("a", INT64), F("b", INT64)], [[1, 2, 3], [4, 5, 6]], 3)
    refused(data, r"more than 40 bytes \(MAX_DECOMPRESSED_BYTES")


@pytest.mark.parametrize("change", ["longer", "shorter"])
def test_a_buffer_decompresses_to_exactly_its_declared_size(monkeypatch, change):
    # Before: 8 bytes too many were accepted; 8 too few ended in "data buffer shorter".
    edit = (lambda p: p + bytes(8)) if change == "longer" else (lambda p: p[:-8])
    with_decompressor(monkeypatch, Bomb(output=edit))
    data = compressed_stream([F("i", INT64)], [[1, 2, 3]], 3)
    refused(data, "declared 24 bytes")


def test_an_unknown_codec_is_named(monkeypatch):
    # Before: codec 7 was taken for zstd ("install the zstandard package").
    data = compressed_stream([F("i", INT64)], [[1, 2, 3]], 3, codec=7)
    refused(data, "codec 7")


def test_a_failing_decompressor_is_an_arrow_error(monkeypatch):
    def corrupt(payload, limit=None):
        raise RuntimeError("LZ4F_decompress failed")

    with_decompressor(monkeypatch, corrupt)
    refused(compressed_stream([F("i", INT64)], [[1, 2, 3]], 3), "LZ4F_decompress failed")


def test_compressed_buffers_round_trip(monkeypatch):
    with_decompressor(monkeypatch, Bomb(output=lambda payload: payload))
    columns = [[1, None, 3], ["a", None, "ccc"]]
    data = compressed_stream([F("i", INT64), F("s", UTF8)], columns, 3)
    _, batches = read(data)
    assert [c.to_pylist() for c in batches[0].columns] == columns


class _LimitedOutput:
    """What the codec libraries do with a size cap: never more than asked for."""

    def __init__(self, asked):
        self.asked = asked

    def produce(self, size):
        self.asked.append(size)
        return b"\0" * (64 << 20 if size is None or size < 0 else min(size, 64 << 20))


def fake_codec_modules(monkeypatch, asked):
    out = _LimitedOutput(asked)

    class LZ4FrameDecompressor:
        def decompress(self, data, max_length=-1):
            return out.produce(max_length)

    class Reader:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size=-1):
            return out.produce(size)

    class ZstdDecompressor:
        def stream_reader(self, source, **options):
            return Reader()

    frame = types.ModuleType("lz4.frame")
    frame.LZ4FrameDecompressor = LZ4FrameDecompressor
    lz4 = types.ModuleType("lz4")
    lz4.frame = frame
    zstandard = types.ModuleType("zstandard")
    zstandard.ZstdDecompressor = ZstdDecompressor
    for name, module in (("lz4", lz4), ("lz4.frame", frame), ("zstandard", zstandard)):
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.parametrize("codec", [0, 1], ids=["lz4", "zstd"])
def test_the_codec_libraries_are_asked_for_no_more_than_declared(monkeypatch, codec):
    # The calls pyspark_web makes of lz4.frame and zstandard, against stand-ins that stop
    # where they are told (as the real ones do: pyarrow_checks/check_arrow_hostile_codecs.py
    # runs the real zstandard). Before: lz4.frame.decompress and ZstdDecompressor.decompress,
    # which take no limit.
    asked = []
    fake_codec_modules(monkeypatch, asked)
    data = compressed_stream([F("i", INT64)], [[1, 2, 3]], 3, codec=codec)
    refused(data, "more than its declared 24 bytes")
    assert asked and max(asked) == 25
