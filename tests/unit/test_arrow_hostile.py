"""pyspark_web.arrow against hostile streams (issue 11): what a server or proxy could send
must end in ArrowError, quickly, never in a loop or an exponential build."""

import contextlib
import signal
import struct

import pytest

from pyspark_web.arrow import ipc
from pyspark_web.arrow.flatbuf import Reader

pytestmark = pytest.mark.unit

INT64 = ipc.DataType("int", (("bits", 64), ("signed", True)))


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging: SIGALRM interrupts a reader that does not stop."""
    def expired(signum, frame):
        raise TimeoutError(f"the reader ran longer than {seconds} s")

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


def test_a_negative_body_length_is_refused():
    data = bytearray(ipc.write_stream(ipc.Schema([ipc.Field("i", INT64)]), [([[1, 2, 3]], 3), ([[4]], 1)]))
    start, size, body = messages(data)[1]
    root = struct.unpack_from("<I", data, start)[0]
    struct.pack_into("<q", data, field_at(start, data, root, 3), -(size + 8 + body))
    with deadline(2), pytest.raises(ipc.ArrowError, match="negative body length"):
        ipc.read_stream(bytes(data))


def chain(depth):
    """A struct per level with two children: the next level and an int leaf."""
    field = ipc.Field("leaf", INT64)
    for level in range(depth):
        field = ipc.Field(f"s{level}", ipc.DataType("struct", (), (field, ipc.Field(f"x{level}", INT64))))
    return field


def test_children_that_point_twice_at_one_table_do_not_multiply():
    data = bytearray(ipc.write_stream(ipc.Schema([chain(40)]), []))
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
    with deadline(2), pytest.raises(ipc.ArrowError, match="more than 10000 fields"):
        ipc.read_stream(bytes(data))


def test_nesting_deeper_than_the_limit_is_refused():
    field = ipc.Field("leaf", INT64)
    for level in range(ipc.MAX_NESTING):
        field = ipc.Field(f"l{level}", ipc.DataType("list", (), (field,)))
    with deadline(2), pytest.raises(ipc.ArrowError, match="nests more than 64 levels"):
        ipc.read_stream(ipc.write_stream(ipc.Schema([field]), []))


def test_the_limits_leave_real_schemas_alone():
    # 64 levels and a few thousand fields: what Spark could send, read as before.
    field = ipc.Field("leaf", INT64)
    for level in range(ipc.MAX_NESTING - 1):
        field = ipc.Field(f"l{level}", ipc.DataType("list", (), (field,)))
    wide = [ipc.Field(f"c{i}", INT64) for i in range(5000)]
    schema, _ = ipc.read_stream(ipc.write_stream(ipc.Schema([field, *wide]), []))
    assert len(schema.fields) == 5001
