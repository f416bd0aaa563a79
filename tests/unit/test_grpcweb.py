"""pyspark_web.grpcweb: the wire format, fed in every possible split."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyspark_web import grpcweb

TRAILER = b"grpc-status: 0\r\ngrpc-message: ok%20then\r\n"


def trailer_frame(block=TRAILER):
    return struct.pack(">BI", 0x80, len(block)) + block


def decode_in_pieces(body, cuts):
    decoder, events = grpcweb.FrameDecoder(), []
    previous = 0
    for cut in sorted(set(cuts)) + [len(body)]:
        events += decoder.feed(body[previous:cut])
        previous = cut
    decoder.close()
    return events


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6), st.lists(st.integers(0, 2000), max_size=12))
def test_any_split_gives_the_same_events(payloads, cuts):
    body = grpcweb.encode_messages(payloads) + trailer_frame()
    cuts = [c for c in cuts if c <= len(body)]
    events = decode_in_pieces(body, cuts)
    assert [e.payload for e in events[:-1]] == payloads
    assert events[-1] == grpcweb.Trailers([("grpc-status", "0"), ("grpc-message", "ok%20then")])


def test_one_byte_at_a_time():
    body = grpcweb.encode_message(b"abc") + grpcweb.encode_message(b"") + trailer_frame()
    assert len(decode_in_pieces(body, range(len(body)))) == 3


def test_frame_header_layout():
    assert grpcweb.encode_message(b"xyz") == b"\x00\x00\x00\x00\x03xyz"


@pytest.mark.parametrize("cut", [1, 4, 5, 7])
def test_truncated_body_is_an_error(cut):
    decoder = grpcweb.FrameDecoder()
    decoder.feed(grpcweb.encode_message(b"abcdef")[:cut])
    with pytest.raises(grpcweb.ProtocolError, match="ended inside a frame"):
        decoder.close()


def test_oversized_frame_is_refused_before_buffering():
    decoder = grpcweb.FrameDecoder(max_frame_size=1024)
    with pytest.raises(grpcweb.ProtocolError, match="declares 2147483648 bytes; the limit is 1024"):
        decoder.feed(struct.pack(">BI", 0, 2**31))


def test_compressed_frame_is_refused_clearly():
    with pytest.raises(grpcweb.ProtocolError, match="compressed grpc-web frame"):
        grpcweb.FrameDecoder().feed(struct.pack(">BI", 1, 3) + b"abc")


def test_data_after_trailers_is_refused():
    decoder = grpcweb.FrameDecoder()
    decoder.feed(trailer_frame())
    with pytest.raises(grpcweb.ProtocolError, match="after the trailer"):
        decoder.feed(grpcweb.encode_message(b"late"))


def test_trailers_decode_status_message_and_binary_details():
    block = b"grpc-status: 13\r\ngrpc-message: caf%C3%A9%20%25\r\ngrpc-status-details-bin: AAEC\r\n"
    [event] = grpcweb.FrameDecoder().feed(trailer_frame(block))
    assert ("grpc-status-details-bin", b"\x00\x01\x02") in event.metadata
    assert grpcweb.status_from_metadata(event.metadata) == (13, "café %")


def test_unpadded_binary_metadata():
    assert grpcweb.normalize_metadata("x-bin", "AAE") == ("x-bin", b"\x00\x01")


def test_malformed_trailer_line():
    with pytest.raises(grpcweb.ProtocolError, match="malformed trailer line"):
        grpcweb.parse_trailer_block(b"no colon here\r\n")


@pytest.mark.parametrize(
    "http, code",
    [
        (401, 16),
        (403, 7),
        (404, 12),
        (429, 14),
        (502, 14),
        (503, 14),
        (504, 14),
        (500, 2),
        (400, 2),
        (200, 2),
    ],
)
def test_http_status_mapping(http, code):
    assert grpcweb.status_for_http(http) == code


def test_grpc_timeout_header():
    assert grpcweb.grpc_timeout(1.5) == "1500m"
    assert grpcweb.grpc_timeout(0) == "1m"
    assert grpcweb.grpc_timeout(10**6) == "1000000S"


@pytest.mark.parametrize("status", ["1_3", "-1", " 13", "+1", "١٣", "13a", "9" * 5000, ""])
def test_grpc_status_is_a_small_decimal_number(status):
    # int() accepts the first five; the last but one used to be copied whole into the message.
    with pytest.raises(grpcweb.ProtocolError) as error:
        grpcweb.status_from_metadata([("grpc-status", status)])
    assert "is not a status code" in str(error.value) and len(str(error.value)) < 80
