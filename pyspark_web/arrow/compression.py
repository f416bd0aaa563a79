"""Compressed record batch bodies (Message.fbs BodyCompression): each buffer is its
uncompressed length (8 bytes, -1: stored as is), then an lz4 frame or zstd frame.

The codecs come from the optional lz4 and zstandard packages. A buffer may decompress to
its declared length and no further: a few bytes of zstd can declare and produce
gigabytes, so the codecs are asked for one byte more than declared, never for all the
frame holds, and the stream's total is counted against the reader's limit.
"""

import struct
from collections.abc import Callable

from pyspark_web.arrow.flatbuf import Reader
from pyspark_web.arrow.types import ArrowError

CODECS = {0: "lz4", 1: "zstd"}


def decompress_buffers(
    buffers: list[memoryview], compression: Reader, count: Callable[[int], None]
) -> list[memoryview]:
    """The buffers of a batch whose BodyCompression table is ``compression``. ``count``
    is told each buffer's declared size before it is decompressed (and raises ArrowError
    past the stream's limit)."""
    codec = CODECS.get(compression.scalar(0, "b"))
    if codec is None:
        raise ArrowError(
            f"Arrow compression codec {compression.scalar(0, 'b')} is unknown "
            "(Arrow has 0: lz4, 1: zstd)"
        )
    if compression.scalar(1, "b") != 0:
        raise ArrowError(
            f"Arrow body compression method {compression.scalar(1, 'b')} is unknown "
            "(Arrow has 0: per buffer)"
        )
    decompress = decompressor(codec)
    return [_decompressed(buffer, codec, decompress, count) for buffer in buffers]


def decompressor(codec: str) -> Callable[[bytes, int], bytes]:
    """The codec as ``f(payload, size)``, which returns at most size + 1 bytes: a bomb
    stops one byte past its declared size instead of filling memory."""
    if codec == "lz4":
        try:
            import lz4.frame
        except ImportError as error:
            raise ArrowError(
                "the Arrow stream is compressed with lz4; install the lz4 package, or disable "
                "compression on the server (spark.sql.execution.arrow.compression.codec=none)"
            ) from error

        def lz4_frame(payload: bytes, size: int) -> bytes:
            return lz4.frame.LZ4FrameDecompressor().decompress(payload, max_length=size + 1)

        return lz4_frame
    try:
        import zstandard
    except ImportError as error:
        raise ArrowError(
            "the Arrow stream is compressed with zstd; install the zstandard package, or "
            "disable compression on the server (spark.sql.execution.arrow.compression.codec=none)"
        ) from error

    def zstd(payload: bytes, size: int) -> bytes:
        # ZstdDecompressor.decompress would allocate what the frame header claims.
        chunks, total = [], 0
        with zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True) as reader:
            while total <= size:
                chunk = reader.read(size + 1 - total)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    return zstd


def _decompressed(
    raw: memoryview,
    codec: str,
    decompress: Callable[[bytes, int], bytes],
    count: Callable[[int], None],
) -> memoryview:
    if len(raw) == 0:
        return raw
    if len(raw) < 8:
        raise ArrowError(f"Arrow {codec} buffer of {len(raw)} bytes lacks its 8-byte length")
    (size,) = struct.unpack_from("<q", raw, 0)
    if size == -1:  # stored uncompressed
        return raw[8:]
    if size < 0:
        raise ArrowError(f"Arrow {codec} buffer declares a negative length ({size})")
    count(size)
    if size == 0:
        return raw[8:8]
    try:
        out = decompress(bytes(raw[8:]), size)
    except MemoryError:
        raise
    except Exception as error:  # the codec libraries' own errors (RuntimeError, ZstdError)
        raise ArrowError(f"Arrow {codec} buffer does not decompress: {error}") from error
    if len(out) != size:
        got = "more than" if len(out) > size else f"{len(out)} bytes, not"
        raise ArrowError(f"Arrow {codec} buffer decompresses to {got} its declared {size} bytes")
    return memoryview(out)
