"""Compressed hostile streams against the real zstandard library (issue 11).

Runs in build/venv-native with the other checks here (tests/unit/test_arrow_ipc.py starts
them); the test venv has no codec library, and tests/unit/test_arrow_hostile.py covers the
same paths there with stand-ins. lz4 is in neither venv: its path (LZ4FrameDecompressor
with max_length) is covered by the stand-in only.
"""

import struct
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

import pyspark_web.arrow as arrow
from pyspark_web.arrow import metadata, writer
from pyspark_web.arrow.flatbuf import Scalar, Structs
from pyspark_web.arrow.flatbuf import Table as FbTable

GIB = 1 << 30
INT64 = arrow.DataType("int", (("bits", 64), ("signed", True)))


def compressed_stream(values, compress):
    """A one-batch zstd stream of an int64 column whose buffers are compressed by
    ``compress`` (as test_arrow_hostile.compressed_stream, which this venv cannot import)."""
    schema = arrow.Schema([arrow.Field("i", INT64)])
    plain, body = writer._Body(), writer._Body()
    writer._write_array(INT64, values, plain)
    for offset, size in plain.buffers:
        raw = bytes(plain.data[offset : offset + size])
        body.add(struct.pack("<q", size) + compress(raw) if size else b"")
    header = FbTable(
        [
            Scalar("q", len(values)),
            Structs("qq", plain.nodes),
            Structs("qq", body.buffers),
            FbTable([Scalar("b", 1), Scalar("b", 0)]),
        ]
    )
    message = writer._message(metadata.HEADER_RECORD_BATCH, header, len(body.data))
    return writer.schema_message(schema) + message + bytes(body.data) + metadata.END_OF_STREAM


def zstd_zeros(size):
    """A zstd frame of ``size`` zero bytes whose header declares that size (a few tens of
    KB for a GiB), made without holding the GiB."""
    compressor = zstandard.ZstdCompressor().compressobj(size=size)
    chunk = bytes(1 << 20)
    out = [compressor.compress(chunk) for _ in range(size >> 20)]
    return b"".join(out) + compressor.flush()


def check_a_zstd_bomb_stops_at_its_declared_size():
    # A 24-byte buffer whose zstd frame holds (and declares in its header) 1 GiB. Before:
    # ZstdDecompressor().decompress allocated the GiB and the column read [0, 0, 0].
    bomb = zstd_zeros(GIB)
    data = compressed_stream([1, 2, 3], lambda raw: bomb)
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with pytest.raises(arrow.ArrowError, match="more than its declared 24 bytes"):
            arrow.read_stream(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - began < 1 and peak < len(data) + (1 << 20), peak


def check_a_zstd_frame_shorter_than_declared_is_refused():
    data = compressed_stream([1, 2, 3], lambda raw: zstandard.compress(raw[:16]))
    with pytest.raises(arrow.ArrowError, match="16 bytes, not its declared 24"):
        arrow.read_stream(data)


def check_a_corrupt_zstd_frame_is_an_arrow_error():
    data = compressed_stream([1, 2, 3], lambda raw: b"not a zstd frame")
    with pytest.raises(arrow.ArrowError, match="zstd buffer does not decompress"):
        arrow.read_stream(data)


def check_zstd_streams_of_pyarrow_and_of_the_test_helper_read():
    data = compressed_stream([1, None, 3], zstandard.compress)
    assert arrow.read_stream(data)[1][0].columns[0].values == [1, None, 3]
    seeds = Path(__file__).resolve().parent.parent / "fuzz_seeds"
    for path in sorted(seeds.glob("*-zstd.arrows")):
        ours = [c.values for b in arrow.read_stream(path.read_bytes())[1] for c in b.columns]
        theirs = [c.to_pylist() for b in pa.ipc.open_stream(path.read_bytes()) for c in b.columns]
        assert repr(ours) == repr(theirs), path.name
