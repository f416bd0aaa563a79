"""Fuzzing what a user, a server or a proxy hands the client (issue 11): connection strings,
response headers and bodies, grpc-web frames. Each input ends in the documented error or
in success, within a time bound; nothing else escapes, and no secret is echoed.

Each property runs twice: bounded for CI (derandomized, 1,500 examples, seconds), and at
length with ``-m fuzz_long`` (PYSPARK_WEB_FUZZ_EXAMPLES examples each, default 50,000).
"""

import io
import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.errors import PySparkValueError
from pyspark.sql.connect.client import DefaultChannelBuilder
from test_arrow_hostile import deadline  # a BaseException when over: no except hides it

from pyspark_web import grpcweb
from pyspark_web.channel import GrpcWebChannel, GrpcWebError, ServerUnreachableError
from pyspark_web.transport import Response

pytestmark = pytest.mark.unit

CI = settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LONG = settings(
    CI, max_examples=int(os.environ.get("PYSPARK_WEB_FUZZ_EXAMPLES", 50_000)), derandomize=False
)
SECONDS_PER_EXAMPLE = 2


def ci_and_long(*strategies):
    """The property as two tests: bounded for CI, and at length under -m fuzz_long."""

    def tests(prop):
        def test(example):
            prop(*example)  # the outcome is for counting by hand; a test returns None

        inputs = st.tuples(*strategies)
        return CI(given(inputs)(test)), pytest.mark.fuzz_long(LONG(given(inputs)(test)))

    return tests


# --- connection strings ------------------------------------------------------------------

# Characters that mean something to urllib or to HTTP, and some that must never reach a
# header.
AWKWARD = ";=/?#@:[]%\r\n\t\x00 é\x7f"
SECRET = "Zq8SECRETvalue"
secret_values = st.builds(
    lambda a, b: f"{a}{SECRET}{b}",
    st.text(AWKWARD + "ab=+/", max_size=4),
    st.text(AWKWARD + "ab=+/", max_size=4),
)
words = st.text(st.sampled_from("abcxyz-_.09" + AWKWARD), max_size=12)
plain_words = st.text(st.sampled_from("abcxyz-_.09"), min_size=1, max_size=8)


def mostly(usual, hostile):
    """usual nine times in ten: a hostile part is worth most inside an otherwise valid
    input. (st.one_of would pick each half of the time, whatever its repeats.)"""
    return st.integers(0, 9).flatmap(lambda roll: hostile if roll == 0 else usual)


hosts = mostly(
    st.sampled_from(["127.0.0.1", "localhost", "[::1]", "spark.example"]),
    st.one_of(
        st.sampled_from(
            ["", "[::1", "::1", "[fe80::1%25eth0]", "ex ample", "é.example", "a@b", "[]"]
        ),
        words,
    ),
)
ports = mostly(
    st.one_of(st.none(), st.integers(1, 65535).map(str)),
    st.one_of(st.integers(-1, 70000).map(str), words),
)
keys = mostly(
    st.sampled_from(
        ["token", "user_id", "user_agent", "transport", "use_ssl", "x-tenant", "X-Trace"]
    ),
    st.one_of(st.sampled_from(["session_id", "grpc-x", "content-type", ""]), words),
)
values = mostly(
    st.one_of(st.sampled_from(["grpcweb", "grpc", "true", "false"]), plain_words),
    st.one_of(st.sampled_from(["1", "yes"]), words),
)
# Secrets go where secrets live: the token, a header, the password.
secret_params = st.tuples(
    st.sampled_from(["token", "x-api-key"]),
    mostly(st.just("="), st.just("==")),
    mostly(plain_words.map(lambda w: w + SECRET), secret_values),
)
params = st.lists(
    st.tuples(keys, mostly(st.just("="), st.sampled_from(["", "=="])), values), max_size=3
)


@st.composite
def connection_strings(draw):
    scheme = draw(
        mostly(
            st.sampled_from(["sc://", "http://", "https://"]),
            st.sampled_from(["HTTP://", "ftp://", "", "sc:/"]),
        )
    )
    userinfo = draw(mostly(st.just(""), st.sampled_from(["user@", f"user:{SECRET}@"])))
    host, port = draw(hosts), draw(ports)
    netloc = userinfo + host + ("" if port is None else f":{port}")
    slash = draw(mostly(st.just("/"), st.sampled_from(["", "//", "/path", "?", "#"])))
    pairs = draw(params)
    if draw(st.booleans()):
        pairs.insert(draw(st.integers(0, len(pairs))), draw(secret_params))
    tail = "".join(f";{k}{eq}{v}" for k, eq, v in pairs)
    return scheme + netloc + slash + tail


def check_connection_string(url):
    """DefaultChannelBuilder(url), and its channel for grpc-web: INVALID_CONNECT_URL or a
    channel whose headers are all valid; the secret never appears in an error."""
    with deadline(SECONDS_PER_EXAMPLE):
        try:
            builder = DefaultChannelBuilder(url)
            if builder.transport != "grpcweb":
                return "native"
            channel = builder.toChannel()
        except PySparkValueError as error:
            assert error.getCondition() in ("INVALID_CONNECT_URL", "INVALID_SESSION_UUID_ID"), error
            assert SECRET not in str(error), f"{url!r} -> {error}"
            return "refused"
    headers = channel.request_headers(None, None)
    for name, value in headers.items():
        assert all(0x20 <= ord(c) < 0x7F or c == "\t" for c in name + value), (url, name, value)
    channel.close()
    return "channel"


test_connection_strings_end_in_a_channel_or_invalid_connect_url, test_long_connection_strings = (
    ci_and_long(connection_strings())(check_connection_string)
)
test_any_text_as_a_connection_string, test_long_any_text_as_a_connection_string = ci_and_long(
    st.text(max_size=60)
)(check_connection_string)


# --- response headers and bodies ----------------------------------------------------------


class _Raw:
    """A urllib3 response stand-in: the body in reads of any size."""

    def __init__(self, body: bytes, piece: int) -> None:
        self._body, self._piece = io.BytesIO(body), piece

    def read(self, n: int = -1) -> bytes:
        return self._body.read(min(n, self._piece) if n and n > 0 else self._piece)

    def drain_conn(self) -> None:
        self._body.read()

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class ScriptedTransport:
    """Answers every post with one scripted response, so the channel meets it as it would
    meet a server or proxy."""

    def __init__(self, status, headers, body, piece):
        self.reply = (status, headers, body, piece)

    def post(self, url, headers, body, timeout, connect_timeout=None):
        status, reply_headers, reply_body, piece = self.reply
        return Response(status, reply_headers, _Raw(reply_body, piece))

    def close(self):
        pass


OK_TRAILER = struct.pack(">BI", 0x80, 16) + b"grpc-status: 0\r\n"
header_names = st.sampled_from(
    [
        "content-type",
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "trace-bin",
        "x-other",
        "grpc-encoding",
    ]
)
header_values = st.one_of(
    st.sampled_from(
        [
            "application/grpc-web+proto",
            "application/grpc-web",
            "text/plain",
            "text/html",
            "0",
            "13",
            "14",
            "16",
            "99",
            "100",
            "-1",
            "1_3",
            " 3",
            "3 ",
            "x",
            "",
            "%zz%",
            "caf%C3%A9",
            "CAUSBWdvbmUh",
            "not*base64",
            "a",
            "=",
            "9" * 5000,
        ]
    ),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=30),
)
frames = st.one_of(
    st.binary(max_size=40).map(grpcweb.encode_message),
    st.binary(max_size=60).map(lambda b: struct.pack(">BI", 0x80, len(b)) + b),
    st.builds(
        lambda flags, length, b: struct.pack(">BI", flags, length) + b,
        st.integers(0, 255),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=20),
    ),
    st.just(struct.pack(">BI", 0x80, 16) + b"grpc-status: 0\r\n"),
)


@st.composite
def responses(draw):
    status = draw(mostly(st.just(200), st.sampled_from([401, 403, 404, 500, 502, 503, 204, 302])))
    headers = {
        name: value
        for name, value in draw(st.lists(st.tuples(header_names, header_values), max_size=5))
    }
    headers = draw(
        mostly(st.just({"content-type": "application/grpc-web+proto", **headers}), st.just(headers))
    )
    body = b"".join(
        draw(
            st.lists(mostly(st.binary(max_size=40).map(grpcweb.encode_message), frames), max_size=4)
        )
    )
    body = draw(
        mostly(st.just(body + draw(mostly(st.just(OK_TRAILER), frames))), st.binary(max_size=80))
    )
    return status, headers, body, draw(st.integers(1, 64))


def call_against(reply, contacted):
    channel = GrpcWebChannel("http://127.0.0.1:9", transport=ScriptedTransport(*reply))
    channel.contacted = contacted  # both sides of the first-contact rule
    with deadline(SECONDS_PER_EXAMPLE):
        try:
            list(
                channel.unary_stream("/spark.connect.SparkConnectService/ExecutePlan")(
                    b"request", timeout=5
                )
            )
            return "ok"
        except GrpcWebError as error:
            assert isinstance(error.details(), str)
            return error.code()
        except ServerUnreachableError:
            assert not contacted
            return "unreachable"


test_any_response_ends_in_an_rpc_error_or_success, test_long_responses = ci_and_long(
    responses(), st.booleans()
)(call_against)


# --- grpc-web frames ------------------------------------------------------------------------

valid_bodies = st.lists(st.binary(max_size=50), max_size=4).map(
    lambda payloads: (
        grpcweb.encode_messages(payloads) + struct.pack(">BI", 0x80, 16) + b"grpc-status: 0\r\n"
    )
)


@st.composite
def mutated_bodies(draw):
    body = bytearray(draw(valid_bodies))
    for _ in range(draw(st.integers(1, 4))):
        if not body:
            break
        at = draw(st.integers(0, len(body) - 1))
        action = draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        if action == "flip":
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            body[at] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0x81, 0xFF]))
        elif action == "cut":
            del body[at:]
        else:
            body[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(body)


def decode_body(body, cuts):
    decoder = grpcweb.FrameDecoder(max_frame_size=1 << 16)
    previous = 0
    with deadline(SECONDS_PER_EXAMPLE):
        try:
            for cut in sorted({c for c in cuts if c <= len(body)}) + [len(body)]:
                for event in decoder.feed(body[previous:cut]):
                    if isinstance(event, grpcweb.Trailers):
                        grpcweb.status_from_metadata(event.metadata)
                previous = cut
            decoder.close()
        except grpcweb.ProtocolError:
            pass


test_frames_decode_or_raise_protocol_error, test_long_frames = ci_and_long(
    st.one_of(mutated_bodies(), st.binary(max_size=120)), st.lists(st.integers(0, 200), max_size=6)
)(decode_body)
