"""The grpc-web wire format, without I/O: request frames, response frames, trailers.

Protocol: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md (binary mode,
``application/grpc-web+proto``). Every message is a frame of one flag byte, a 4-byte
big-endian length and the payload. Flag bit 0x80 marks the trailer frame, whose payload is
HTTP/1-style header lines; bit 0x01 marks a compressed payload.

``FrameDecoder`` is fed bytes as they arrive (any split, down to one byte at a time) and
returns complete events; it never trusts a length beyond ``max_frame_size`` and reports a
frame cut short at the end of the body. Only the standard library is used here.

Whatever the peer sends, the decoding functions here (``FrameDecoder.feed`` and ``close``,
``parse_trailer_block``, ``normalize_metadata``, ``status_from_metadata``) raise no error
but ``ProtocolError``; tests/unit/test_fuzz_inputs.py holds them to it.
"""

import base64
import re
import struct
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

CONTENT_TYPE = "application/grpc-web+proto"
FRAME_HEADER = struct.Struct(">BI")
TRAILER_FLAG = 0x80
COMPRESSED_FLAG = 0x01
# Spark Connect's own limit for one message (ChannelBuilder.GRPC_MAX_MESSAGE_LENGTH_DEFAULT).
DEFAULT_MAX_FRAME_SIZE = 128 * 1024 * 1024

# gRPC status codes by number (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED = 0, 1, 2, 3, 4
PERMISSION_DENIED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 7, 12, 13, 14, 16

Metadata = list[tuple[str, str | bytes]]


class ProtocolError(Exception):
    """The peer broke the grpc-web protocol (a bad frame, an oversized or cut message)."""


@dataclass(frozen=True)
class Message:
    """A data frame's payload: one serialized protobuf message."""

    payload: bytes


@dataclass(frozen=True)
class Trailers:
    """The trailer frame, as metadata (keys lower-case, in order)."""

    metadata: Metadata


def encode_message(payload: bytes) -> bytes:
    """One uncompressed data frame."""
    return FRAME_HEADER.pack(0, len(payload)) + payload


def encode_messages(payloads: Iterable[bytes]) -> bytes:
    """A request body of several frames (client streaming, e.g. AddArtifacts)."""
    return b"".join(encode_message(p) for p in payloads)


class FrameDecoder:
    """Incremental decoder of a grpc-web response body.

    >>> decoder = FrameDecoder()
    >>> decoder.feed(encode_message(b"hi")[:3])
    []
    >>> decoder.feed(encode_message(b"hi")[3:])
    [Message(payload=b'hi')]
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size
        self._trailers_seen = False

    def feed(self, data: bytes) -> list[Message | Trailers]:
        self._buffer += data
        events: list[Message | Trailers] = []
        view = memoryview(self._buffer)
        offset = 0
        try:
            while len(view) - offset >= FRAME_HEADER.size:
                flags, length = FRAME_HEADER.unpack_from(view, offset)
                self._check_header(flags, length)
                end = offset + FRAME_HEADER.size + length
                if end > len(view):
                    break
                payload = bytes(view[offset + FRAME_HEADER.size : end])
                offset = end
                if flags & TRAILER_FLAG:
                    self._trailers_seen = True
                    events.append(Trailers(parse_trailer_block(payload)))
                else:
                    events.append(Message(payload))
        finally:
            view.release()
        del self._buffer[:offset]
        return events

    def _check_header(self, flags: int, length: int) -> None:
        if self._trailers_seen:
            raise ProtocolError("data after the trailer frame")
        if flags & COMPRESSED_FLAG:
            raise ProtocolError(
                "the server sent a compressed grpc-web frame; pyspark-web does not request "
                "compression, so a proxy or server setting enabled it (grpc-encoding); "
                "disable response compression for this route"
            )
        if flags & ~(TRAILER_FLAG | COMPRESSED_FLAG):
            raise ProtocolError(f"unknown grpc-web frame flags 0x{flags:02x}")
        if length > self._max_frame_size:
            raise ProtocolError(
                f"grpc-web frame declares {length} bytes; the limit is {self._max_frame_size}"
            )

    def close(self) -> None:
        """The body ended: anything left over is a frame cut short."""
        if self._buffer:
            raise ProtocolError(
                f"the response body ended inside a frame ({len(self._buffer)} bytes left over)"
            )

    @property
    def trailers_seen(self) -> bool:
        return self._trailers_seen


def parse_trailer_block(block: bytes) -> Metadata:
    """'key: value' lines separated by CRLF (HTTP/1 header syntax), keys lower-cased."""
    metadata: Metadata = []
    for line in block.decode("latin-1").split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"malformed trailer line {line[:80]!r}")
        metadata.append(normalize_metadata(key.strip().lower(), value.strip()))
    return metadata


def normalize_metadata(key: str, value: str) -> tuple[str, str | bytes]:
    """Binary metadata ("-bin" keys) travels base64-encoded; hand it on as bytes."""
    if key.endswith("-bin"):
        padded = value + "=" * (-len(value) % 4)
        try:
            return key, base64.b64decode(
                padded, altchars=b"-_" if "-" in value or "_" in value else None
            )
        except ValueError as error:
            raise ProtocolError(f"metadata {key} is not valid base64") from error
    return key, value


def encode_metadata_value(key: str, value: str | bytes) -> str:
    if key.endswith("-bin"):
        raw = value if isinstance(value, bytes) else value.encode()
        return base64.b64encode(raw).decode()
    return value if isinstance(value, str) else value.decode("latin-1")


_STATUS = re.compile(r"[0-9]{1,2}\Z")


def status_from_metadata(metadata: Metadata) -> tuple[int | None, str]:
    """grpc-status (None if absent) and the percent-decoded grpc-message."""
    values: dict[str, str | bytes] = {}
    for key, value in metadata:
        values.setdefault(key, value)
    status = values.get("grpc-status")
    message = values.get("grpc-message", "")
    if status is None:
        return None, ""
    # Decimal digits only: int() would also take "1_3", "-1", " 13" and thousands of digits.
    if not isinstance(status, str) or not _STATUS.match(status):
        raise ProtocolError(f"grpc-status {str(status)[:20]!r} is not a status code (0-99)")
    return int(status), urllib.parse.unquote(str(message), errors="replace")


def status_for_http(http_status: int) -> int:
    """The gRPC status of an HTTP response that carries none (grpc-web spec mapping)."""
    if http_status == 401:
        return UNAUTHENTICATED
    if http_status == 403:
        return PERMISSION_DENIED
    if http_status == 404:
        return UNIMPLEMENTED
    if http_status in (429, 502, 503, 504):
        return UNAVAILABLE
    return UNKNOWN


def grpc_timeout(seconds: float) -> str:
    """The grpc-timeout header value: at most 8 digits and a unit."""
    millis = max(int(seconds * 1000), 1)
    if millis < 10**8:
        return f"{millis}m"
    return f"{min(int(seconds), 10**8 - 1)}S"
