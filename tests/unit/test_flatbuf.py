"""pyspark_web.arrow.flatbuf: the FlatBuffers writer (``build``) and bounds-checked reader
(``Reader``) under the Arrow IPC metadata.

Round trips of scalars, strings, nested tables and vectors; then forged buffers, each a
valid one with one number patched: every malformed read must raise FlatbufferError (which
the IPC reader turns into ArrowError), never struct.error, IndexError or
UnicodeDecodeError."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyspark_web.arrow.flatbuf import FlatbufferError, Reader, Scalar, Structs, Table, build

pytestmark = pytest.mark.unit


def root(data):
    return Reader.root(memoryview(bytes(data)))


def slot(reader, field_id):
    """Where a table field's value (or its offset) lies in the buffer."""
    offset = reader._offset(field_id)
    assert offset, f"field {field_id} is absent"
    return reader.pos + offset


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "fmt, value",
    [
        ("b", -128),
        ("B", 255),
        ("h", -32768),
        ("H", 65535),
        ("i", -(2**31)),
        ("I", 2**32 - 1),
        ("q", -(2**63)),
        ("Q", 2**64 - 1),
        ("?", True),
        ("?", False),
        ("f", 1.5),
        ("d", -0.1),
    ],
)
def test_a_scalar_reads_back(fmt, value):
    data = build(Table([Scalar("B", 7), Scalar(fmt, value)]))
    table = root(data)
    assert table.scalar(1, fmt) == value and table.scalar(0, "B") == 7
    # aligned to its own size inside the buffer, as FlatBuffers requires
    assert slot(table, 1) % struct.calcsize(fmt) == 0


def test_absent_fields_read_their_defaults():
    table = root(build(Table([None, Scalar("i", 5), None])))
    assert (
        table.scalar(0, "i", 7) == 7
        and table.scalar(1, "i", 7) == 5
        and table.scalar(2, "h", 9) == 9
    )
    # past the end of the vtable: absent too
    assert table.scalar(40, "q", 3) == 3 and table.scalar(40, "q") == 0
    assert table.string(0) is None and table.table(0) is None and table.vector_id(0) is None
    assert (
        table.tables(2) == [] and table.structs(2, "qq") == [] and list(table.iter_tables(40)) == []
    )


def test_an_empty_table_has_every_field_absent():
    table = root(build(Table([])))
    assert table._vtable_size == 4 and table.scalar(0, "q", -1) == -1 and table.table(0) is None


@pytest.mark.parametrize("text", ["", "a", "ü€𝄞", "nul\0inside", "x" * 1000])
def test_a_string_reads_back(text):
    table = root(build(Table([text, Scalar("h", 1)])))
    assert table.string(0) == text and table.scalar(1, "h") == 1
    # length-prefixed and NUL-terminated, as FlatBuffers lays strings out
    target = table._target(0)
    raw = table.buf[target : target + 4 + len(text.encode()) + 1].tobytes()
    assert raw == struct.pack("<I", len(text.encode())) + text.encode() + b"\0"


def test_nested_tables_read_back():
    leaf = Table([Scalar("q", -5), "leaf"])
    middle = Table(["middle", leaf, None, Scalar("?", True)])
    table = root(build(Table([middle, Scalar("i", 3), Table([])])))
    m = table.table(0)
    assert m.string(0) == "middle" and m.scalar(3, "?") is True and m.table(2) is None
    assert m.table(1).scalar(0, "q") == -5 and m.table(1).string(1) == "leaf"
    assert (
        table.scalar(1, "i") == 3
        and table.table(2) is not None
        and table.table(2).string(0) is None
    )


def test_a_vector_of_tables_reads_back_in_order():
    items = [Table([Scalar("i", i), f"item{i}"]) for i in range(5)]
    table = root(build(Table([Scalar("b", 1), items])))
    read = table.tables(1)
    assert [(t.scalar(0, "i"), t.string(1)) for t in read] == [(i, f"item{i}") for i in range(5)]
    assert [t.pos for t in table.iter_tables(1)] == [t.pos for t in read]


def test_an_empty_vector_is_present_but_empty():
    table = root(build(Table([[]])))
    assert table.vector_id(0) is not None and table.tables(0) == [] and table.structs(0, "qq") == []


def test_a_struct_vector_reads_back_aligned_for_int64():
    items = [(1, 2), (-(2**63), 2**63 - 1), (0, 0)]
    table = root(build(Table([Scalar("b", 1), Structs("qq", items), Structs("qq", [])])))
    assert table.structs(1, "qq") == items and table.structs(2, "qq") == []
    assert (table.vector_id(1) + 4) % 8 == 0  # the elements, after the 4-byte count


def test_the_built_buffer_is_padded_and_rooted():
    data = build(Table([Scalar("q", 1), "s", [Table([])]]))
    assert len(data) % 8 == 0
    (position,) = struct.unpack_from("<I", data, 0)
    assert root(data).pos == position and position % 8 == 0


@pytest.mark.parametrize("value", [3, 1.5, b"bytes", object()])
def test_build_refuses_what_it_cannot_place(value):
    with pytest.raises(TypeError, match="cannot place"):
        build(Table([value]))


def test_a_string_shared_by_tables_is_decoded_once():
    # Forged tables may point many fields at one string: one str, however many readers.
    data = bytearray(build(Table([[Table(["first"]), Table(["shared"])]])))
    first, second = root(data).tables(0)
    target = second._target(0)  # offsets point forward: the first points at the second's
    at = slot(first, 0)
    struct.pack_into("<I", data, at, target - at)
    first, second = root(data).tables(0)
    assert first.string(0) == "shared" and second.string(0) is first.string(0)


def test_vector_id_tells_shared_vectors_apart():
    data = bytearray(build(Table([[Table([])], [Table([])]])))
    table = root(data)
    assert table.vector_id(0) != table.vector_id(1)
    target, at = table._target(0), slot(table, 1)
    struct.pack_into("<I", data, at, target - at)
    assert root(data).vector_id(0) == root(data).vector_id(1)


# ---------------------------------------------------------------- Hypothesis: any tree


SCALARS = st.one_of(
    st.integers(-128, 127).map(lambda v: Scalar("b", v)),
    st.integers(0, 65535).map(lambda v: Scalar("H", v)),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: Scalar("i", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: Scalar("q", v)),
    st.booleans().map(lambda v: Scalar("?", v)),
    st.floats(allow_nan=False).map(lambda v: Scalar("d", v)),
)
LEAVES = st.one_of(
    st.none(),
    SCALARS,
    st.text(max_size=8),
    st.lists(
        st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1)), max_size=3
    ).map(lambda items: Structs("qq", items)),
)
TABLES = st.recursive(
    st.lists(LEAVES, max_size=5).map(Table),
    lambda children: st.lists(
        st.one_of(LEAVES, children, st.lists(children, max_size=3)), max_size=5
    ).map(Table),
    max_leaves=12,
)


def same(reader, table):
    """Read ``reader`` with ``table``'s layout and compare."""
    for field_id, value in enumerate(table.fields):
        if value is None:
            assert reader._offset(field_id) == 0
        elif isinstance(value, Scalar):
            assert reader.scalar(field_id, value.fmt) == value.value
        elif isinstance(value, str):
            assert reader.string(field_id) == value
        elif isinstance(value, Structs):
            assert reader.structs(field_id, value.fmt) == [tuple(item) for item in value.items]
        elif isinstance(value, Table):
            same(reader.table(field_id), value)
        else:
            read = reader.tables(field_id)
            assert len(read) == len(value)
            for child_reader, child in zip(read, value):
                same(child_reader, child)
    assert reader._offset(len(table.fields)) == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TABLES)
def test_any_tree_of_tables_reads_back(table):
    data = build(table)
    assert len(data) % 8 == 0
    same(root(data), table)


def walk(reader, table):
    """Every read ``same`` makes, without comparing (for cut-off buffers)."""
    for field_id, value in enumerate(table.fields):
        if isinstance(value, Scalar):
            reader.scalar(field_id, value.fmt)
        elif isinstance(value, str):
            reader.string(field_id)
        elif isinstance(value, Structs):
            reader.structs(field_id, value.fmt)
        elif isinstance(value, Table):
            child = reader.table(field_id)
            if child is not None:
                walk(child, value)
        elif value is not None:
            for child_reader, child in zip(reader.iter_tables(field_id), value):
                walk(child_reader, child)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TABLES, st.data())
def test_a_cut_off_buffer_reads_or_raises_flatbuffer_error(table, data):
    full = build(table)
    cut = data.draw(st.integers(0, len(full) - 1))
    try:
        walk(root(full[:cut]), table)
    except FlatbufferError:
        pass


# ---------------------------------------------------------------- forged buffers


def refused(read, match):
    with pytest.raises(FlatbufferError, match=match):
        read()


@pytest.mark.parametrize("data", [b"", b"\0\0\0", b"\xff\xff\xff\x7f", b"\x08\0\0\0\0\0\0\0"])
def test_a_root_outside_the_buffer(data):
    refused(lambda: root(data), "outside")


def test_a_table_position_outside_the_buffer():
    buf = memoryview(build(Table([Scalar("i", 1)])))
    for position in (-1, len(buf) - 3, len(buf), 1 << 40):
        refused(lambda position=position: Reader(buf, position), "outside the")


@pytest.mark.parametrize("soffset", [2**31 - 1, -(2**31), 1 << 20])
def test_a_vtable_outside_the_buffer(soffset):
    data = bytearray(build(Table([Scalar("i", 1)])))
    struct.pack_into("<i", data, root(data).pos, soffset)
    refused(lambda: root(data), "vtable outside the buffer")


def test_a_vtable_that_runs_past_the_end():
    data = bytearray(build(Table([Scalar("i", 1)])))
    struct.pack_into("<H", data, root(data)._vtable, 0xFFFF)
    refused(lambda: root(data), "vtable runs past the end")


def test_a_vtable_shorter_than_its_fields_hides_them():
    # A vtable may be shorter than the schema: later fields are absent, not read past it.
    data = bytearray(build(Table([Scalar("i", 1), Scalar("i", 2)])))
    struct.pack_into("<H", data, root(data)._vtable, 6)  # 4 bytes of header, field 0 only
    table = root(data)
    assert table.scalar(0, "i") == 1 and table.scalar(1, "i", -1) == -1


def test_a_scalar_past_the_end():
    data = bytearray(build(Table([Scalar("q", 1)])))
    table = root(data)
    struct.pack_into("<H", data, table._vtable + 4, len(data) - table.pos - 4)
    refused(lambda: root(data).scalar(0, "q"), "8-byte value at .* lies outside")


@pytest.mark.parametrize(
    "field_id, read",
    [
        (0, lambda t: t.string(0)),
        (1, lambda t: t.table(1)),
        (2, lambda t: t.tables(2)),
        (3, lambda t: t.structs(3, "qq")),
    ],
)
def test_an_offset_that_points_outside_the_buffer(field_id, read):
    data = bytearray(build(Table(["s", Table([]), [Table([])], Structs("qq", [(1, 2)])])))
    struct.pack_into("<I", data, slot(root(data), field_id), 1 << 31)
    refused(lambda: read(root(data)), "outside")


def test_a_string_longer_than_the_buffer():
    data = bytearray(build(Table(["abc"])))
    struct.pack_into("<I", data, root(data)._target(0), len(data))
    refused(lambda: root(data).string(0), "string runs past the end")


def test_a_string_that_is_not_utf8():
    data = bytearray(build(Table(["abc"])))
    data[root(data)._target(0) + 4] = 0xFF
    refused(lambda: root(data).string(0), "not UTF-8")


@pytest.mark.parametrize("read", [lambda t: t.tables(0), lambda t: list(t.iter_tables(0))])
def test_a_vector_of_tables_longer_than_the_buffer(read):
    data = bytearray(build(Table([[Table([]), Table([])]])))
    struct.pack_into("<I", data, root(data)._target(0), 1 << 30)
    refused(lambda: read(root(data)), "vector of 1073741824 items runs past")


def test_a_struct_vector_longer_than_the_buffer():
    data = bytearray(build(Table([Structs("qq", [(1, 2)])])))
    target = root(data)._target(0)
    # 16 bytes an item: two more items than the buffer holds after the count
    struct.pack_into("<I", data, target, (len(data) - target - 4) // 16 + 2)
    refused(lambda: root(data).structs(0, "qq"), "runs past the end")


def test_iter_tables_reads_one_entry_at_a_time():
    # A caller that stops early (at a limit) never reads the entries after it.
    data = bytearray(build(Table([[Table([Scalar("i", i)]) for i in range(3)]])))
    vector = root(data)._target(0)
    struct.pack_into("<I", data, vector + 4 + 8, 1 << 31)  # the third entry points outside
    entries = root(data).iter_tables(0)
    assert next(entries).scalar(0, "i") == 0 and next(entries).scalar(0, "i") == 1
    refused(lambda: next(entries), "outside")
    refused(lambda: root(data).tables(0), "outside")


def test_a_sub_table_may_not_point_back_at_garbage():
    # An offset into the middle of the parent: whatever it finds must be checked.
    data = bytearray(build(Table([Table([Scalar("q", 1)]), Scalar("q", 2)])))
    table = root(data)
    at = slot(table, 0)
    struct.pack_into("<I", data, at, len(data) - 2 - at)  # two bytes before the end
    refused(lambda: root(data).table(0), "outside the")
