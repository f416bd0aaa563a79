"""pyspark_web.channel.GrpcWebChannel end to end, against a scripted HTTP/1.1 server."""

import io
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from helpers import tool
from pyspark.sql.connect.client.retries import DefaultPolicy
from pyspark.sql.connect.grpc_compat import grpc

from pyspark_web import channel as channel_module
from pyspark_web.builder import GrpcWebChannelBuilder
from pyspark_web.channel import GrpcWebChannel, GrpcWebError, ServerUnreachableError
from pyspark_web.grpcweb import encode_message, encode_messages
from pyspark_web.transport import Failure, Response, TransportError

METHOD = "/spark.connect.SparkConnectService/Echo"
GRPC_WEB = "application/grpc-web+proto"
WAIT = 5  # seconds: the most any server-side wait may block


def trailer(status=0, message="", extra=b""):
    block = f"grpc-status: {status}\r\ngrpc-message: {message}\r\n".encode() + extra
    return struct.pack(">BI", 0x80, len(block)) + block


OK = trailer(0)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = WAIT

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append((self.path, headers, body, self.client_address))
        self.server.script(self)

    def log_message(self, *args):
        pass

    def reply(self, chunks=(), status=200, headers=None, chunked=False, length=None, close=False):
        """Status, headers, body chunks (each flushed); length overrides Content-Length,
        chunked leaves out the terminator when close is set (an abrupt end)."""
        headers = {"Content-Type": GRPC_WEB} if headers is None else headers
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header(
                "Content-Length", str(sum(map(len, chunks)) if length is None else length)
            )
        self.end_headers()
        for chunk in chunks:
            if callable(chunk):
                chunk()  # a pause in the script
                continue
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            self.wfile.flush()
        if chunked and not close:
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = close


@pytest.fixture
def start():
    """start(script) -> (server, channel): script(handler) answers every request."""
    opened = []

    def start(script, tls=None, **builder_options):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.requests, server.script, server.stop = [], script, threading.Event()
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        scheme = "https" if tls is not None else "http"
        channel = GrpcWebChannelBuilder(
            f"{scheme}://127.0.0.1:{server.server_port}", **builder_options
        ).toChannel()
        opened.append((server, channel))
        return server, channel

    yield start
    for server, channel in opened:
        server.stop.set()
        channel.close()
        server.shutdown()
        server.server_close()


def unary(channel, request=b"ping", **kwargs):
    return channel.unary_unary(METHOD)(request, timeout=WAIT, **kwargs)


def stream(channel, request=b"ping"):
    return list(channel.unary_stream(METHOD)(request, timeout=WAIT))


def after_contact(script):
    """A server that answers the first call with OK (the session has worked), then follows
    script: failures before any contact end differently (ServerUnreachableError)."""

    def answer(handler):
        if len(handler.server.requests) == 1:
            handler.reply([], headers={"Content-Type": GRPC_WEB, "grpc-status": "0"})
        else:
            script(handler)

    return answer


def contacted(channel):
    assert stream(channel) == [] and channel.contacted
    return channel


def rpc_error(call, *args, **kwargs):
    with pytest.raises(GrpcWebError) as info:
        call(*args, **kwargs)
    return info.value


# --- requests ---------------------------------------------------------------------------


def test_request_is_one_framed_message_with_grpcweb_headers(start):
    server, channel = start(lambda h: h.reply([encode_message(b"pong"), OK]))
    unary(channel, b"\x01payload", metadata=[("X-Call", "yes"), ("trace-bin", b"\x00\x01\xfe")])
    [(path, headers, body, _)] = server.requests
    assert path == METHOD
    assert body == b"\x00\x00\x00\x00\x08\x01payload"
    assert headers["content-type"] == GRPC_WEB
    assert headers["x-grpc-web"] == "1"
    assert headers["x-call"] == "yes"
    assert headers["trace-bin"] == "AAH+"


def test_stream_unary_sends_all_messages_in_one_body(start):
    server, channel = start(lambda h: h.reply([encode_message(b"done"), OK]))
    answer = channel.stream_unary(METHOD)(iter([b"a", b"bc", b""]), timeout=WAIT)
    assert answer == b"done"
    assert server.requests[0][2] == encode_messages([b"a", b"bc", b""])


def test_sequential_calls_reuse_one_connection(start):
    server, channel = start(lambda h: h.reply([encode_message(b"pong"), OK]))
    assert unary(channel) == b"pong" and unary(channel) == b"pong"
    assert len({client for *_, client in server.requests}) == 1


# --- future(): gRPC's asynchronous form (patches/0007 sends ReleaseExecute with it) ---


def test_future_on_cpython_completes_the_call_before_returning(start):
    server, channel = start(lambda h: h.reply([encode_message(b"pong"), OK]))
    call = channel.unary_unary(METHOD, response_deserializer=lambda b: b.decode().upper())
    future = call.future(b"ping", timeout=WAIT, metadata=[("x-call", "yes")])
    assert future.done() and future.exception() is None and future.result() == "PONG"
    seen = []
    future.add_done_callback(seen.append)
    assert seen == [future]
    assert server.requests[0][1]["x-call"] == "yes"


def test_future_of_a_failed_call_holds_the_error(start):
    headers = {"Content-Type": GRPC_WEB, "grpc-status": "7", "grpc-message": "no%20way"}
    _, channel = start(lambda h: h.reply([], headers=headers))
    future = channel.unary_unary(METHOD).future(b"ping", timeout=WAIT)
    assert future.done()
    assert future.exception().code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(GrpcWebError, match="no way"):
        future.result()


class BackgroundFetch:
    """pyspark_web.transport.post_in_background as under Pyodide: the request is recorded,
    and its response arrives when the test says (arrive)."""

    def __init__(self, monkeypatch):
        self.sent = []
        monkeypatch.setattr(channel_module, "can_post_in_background", lambda: True)
        monkeypatch.setattr(channel_module, "post_in_background", self.post)

    def post(self, url, headers, body, timeout, done):
        self.sent.append((url, headers, body, timeout, done))

    def arrive(self, index, outcome):
        self.sent[index][4](outcome)


def response_of(body, headers=None):
    headers = {"content-type": GRPC_WEB} if headers is None else headers
    raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, status=200, preload_content=False
    )
    return Response(200, headers, raw)


def test_a_background_future_settles_when_the_response_arrives(monkeypatch):
    fetch = BackgroundFetch(monkeypatch)
    channel = GrpcWebChannel("http://127.0.0.1:9", headers=[("authorization", "Bearer t")])
    future = channel.unary_unary(METHOD).future(b"ping", timeout=3, metadata=[("x-k", "v")])
    [(url, headers, body, timeout, _)] = fetch.sent
    assert url == "http://127.0.0.1:9" + METHOD and body == encode_message(b"ping")
    assert headers["authorization"] == "Bearer t" and headers["x-k"] == "v"
    assert headers["grpc-timeout"] == "3000m" and timeout == 3
    seen = []
    future.add_done_callback(seen.append)
    assert not future.done() and seen == []
    with pytest.raises(TimeoutError, match="has not arrived yet"):
        future.result()
    fetch.arrive(0, response_of(encode_message(b"pong") + OK))
    assert seen == [future] and future.result() == b"pong" and channel.contacted


def test_a_background_future_holds_the_failure_that_arrives(monkeypatch):
    fetch = BackgroundFetch(monkeypatch)
    channel = GrpcWebChannel("http://127.0.0.1:9")
    channel.contacted = True  # after the session's first contact
    refused = channel.unary_unary(METHOD).future(b"a")
    failed = channel.unary_unary(METHOD).future(b"b")
    fetch.arrive(0, TransportError(Failure.UNAVAILABLE, "HTTP request failed: TypeError"))
    fetch.arrive(1, response_of(b"", {"content-type": GRPC_WEB, "grpc-status": "5"}))
    assert refused.exception().code() == grpc.StatusCode.UNAVAILABLE
    assert "HTTP request failed: TypeError" in refused.exception().details()
    assert failed.exception().code() == grpc.StatusCode.NOT_FOUND


# --- responses --------------------------------------------------------------------------


def test_unary_success_is_deserialized(start):
    _, channel = start(lambda h: h.reply([encode_message(b"pong"), OK]))
    call = channel.unary_unary(METHOD, response_deserializer=lambda b: b.decode().upper())
    assert call(b"ping", timeout=WAIT) == "PONG"


def test_server_stream_delivers_messages_in_order(start):
    frames = [encode_message(b"m%d" % i) for i in range(5)]
    _, channel = start(lambda h: h.reply(frames + [OK], chunked=True))
    assert stream(channel) == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_server_stream_is_delivered_incrementally(start):
    first_seen, server_waited = threading.Event(), []
    pause = lambda: server_waited.append(first_seen.wait(WAIT))  # noqa: E731
    _, channel = start(
        lambda h: h.reply([encode_message(b"one"), pause, encode_message(b"two"), OK], chunked=True)
    )
    received = []
    for message in channel.unary_stream(METHOD)(b"ping", timeout=WAIT + 5):
        received.append(message)
        first_seen.set()
    assert received == [b"one", b"two"]
    assert server_waited == [True], "the client waited for the whole body before yielding"


def test_error_trailer_is_raised_with_code_details_and_metadata(start):
    status_bin = b"grpc-status-details-bin: CAUSBWdvbmUh\r\n"
    _, channel = start(
        lambda h: h.reply([encode_message(b"x"), trailer(5, "caf%C3%A9 gone", status_bin)])
    )
    error = rpc_error(stream, channel)
    assert isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "café gone"
    assert ("grpc-status-details-bin", b"\x08\x05\x12\x05gone!") in error.trailing_metadata()


def test_trailers_only_error(start):
    headers = {"Content-Type": GRPC_WEB, "grpc-status": "7", "grpc-message": "no%20way"}
    _, channel = start(lambda h: h.reply([], headers=headers))
    error = rpc_error(unary, channel)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "no way"


@pytest.mark.parametrize("body", [b"Jwt is expired", b""], ids=["with-body", "empty"])
def test_a_trailers_only_reply_leaves_the_connection_clean(start, body):
    """A proxy's refusal may carry a body next to its grpc-status: the next call on the
    channel must not read it as its response."""
    headers = {"Content-Type": "text/plain", "grpc-status": "16", "grpc-message": "expired"}

    def script(handler):
        if len(handler.server.requests) == 1:
            handler.reply([body], status=401, headers=headers)
        else:
            handler.reply([encode_message(b"pong"), OK])

    server, channel = start(script)
    assert rpc_error(unary, channel).code() == grpc.StatusCode.UNAUTHENTICATED
    assert unary(channel) == b"pong"
    # An empty body lets the connection be reused; a body makes the channel drop it.
    assert len({request[3] for request in server.requests}) == (2 if body else 1)


def test_trailers_only_ok_is_an_empty_stream(start):
    headers = {"Content-Type": GRPC_WEB, "grpc-status": "0"}
    _, channel = start(lambda h: h.reply([], headers=headers))
    assert stream(channel) == []


def test_html_error_page_becomes_unavailable_without_decoding(start):
    page = b"<html><body><h1>502 Bad Gateway</h1>\n<p>upstream connect error</p></body></html>"
    _, channel = start(
        after_contact(lambda h: h.reply([page], status=502, headers={"Content-Type": "text/html"}))
    )
    contacted(channel)
    decoded = []
    call = channel.unary_unary(METHOD, response_deserializer=decoded.append)
    error = rpc_error(call, b"ping", timeout=WAIT)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "HTTP 502" in error.details() and "502 Bad Gateway" in error.details()
    assert decoded == [] and error.__cause__ is None
    assert DefaultPolicy().can_retry(error)


@pytest.mark.parametrize(
    "status, code",
    [
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "UNIMPLEMENTED"),
        (500, "UNKNOWN"),
        (503, "UNAVAILABLE"),
    ],
)
def test_http_status_without_grpc_status_is_mapped(start, status, code):
    _, channel = start(
        after_contact(
            lambda h: h.reply([b"nope"], status=status, headers={"Content-Type": "text/plain"})
        )
    )
    error = rpc_error(unary, contacted(channel))
    assert error.code() == getattr(grpc.StatusCode, code)
    assert f"HTTP {status}" in error.details()


def test_http_200_that_is_not_grpcweb_is_unknown(start):
    _, channel = start(
        lambda h: h.reply([b"<html>login</html>"], headers={"Content-Type": "text/html"})
    )
    error = rpc_error(unary, channel)
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert "text/html" in error.details()


def test_compressed_frame_is_internal(start):
    _, channel = start(lambda h: h.reply([struct.pack(">BI", 1, 3) + b"abc", OK]))
    error = rpc_error(unary, channel)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "compressed" in error.details()


def test_body_without_trailer_is_unavailable(start):
    _, channel = start(lambda h: h.reply([encode_message(b"one")]))
    error = rpc_error(stream, channel)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "without a grpc-status trailer" in error.details()
    assert DefaultPolicy().can_retry(error)


@pytest.mark.parametrize(
    "reply",
    [
        {"chunks": [encode_message(b"0123456789")[:8]], "length": 100, "close": True},
        {
            "chunks": [encode_message(b"one"), encode_message(b"0123456789")[:8]],
            "chunked": True,
            "close": True,
        },
    ],
    ids=["short-content-length", "chunked-without-terminator"],
)
def test_connection_closed_mid_body_is_unavailable(start, reply):
    _, channel = start(lambda h: h.reply(**reply))
    error = rpc_error(stream, channel)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert DefaultPolicy().can_retry(error)


# --- deadlines, connection failures, TLS -------------------------------------------------


def test_timeout_is_sent_and_enforced(start):
    server, channel = start(
        lambda h: (h.server.stop.wait(3), h.reply([encode_message(b"late"), OK]))
    )
    began = time.monotonic()
    with pytest.raises(GrpcWebError) as info:
        channel.unary_unary(METHOD)(b"ping", timeout=0.5)
    assert time.monotonic() - began < 2.5
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert server.requests[0][1]["grpc-timeout"] == "500m"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable(call, *args, **kwargs):
    """The ServerUnreachableError of a call, which upstream's policies must not retry."""
    began = time.monotonic()
    with pytest.raises(ServerUnreachableError) as info:
        call(*args, **kwargs)
    assert time.monotonic() - began < 10
    assert not isinstance(info.value, grpc.RpcError)
    assert not DefaultPolicy().can_retry(info.value)
    assert info.value.getGrpcStatusCode() == grpc.StatusCode.UNAVAILABLE
    return str(info.value)


def test_a_first_contact_that_is_refused_fails_at_once_naming_url_and_cause():
    port = free_port()
    channel = GrpcWebChannelBuilder(f"http://127.0.0.1:{port}").toChannel()
    message = unreachable(unary, channel)
    assert f"Cannot reach the Spark Connect server at http://127.0.0.1:{port} (Echo)" in message
    assert "Connection refused" in message
    assert not channel.contacted


@pytest.mark.parametrize(
    "reply",
    [
        {
            "status": 503,
            "headers": {"Content-Type": "text/plain"},
            "chunks": [b"no healthy upstream"],
        },
        {
            "headers": {
                "Content-Type": GRPC_WEB,
                "grpc-status": "14",
                "grpc-message": "upstream%20connect%20error",
            }
        },
    ],
    ids=["http-503", "grpc-unavailable"],
)
def test_a_first_contact_answered_unavailable_by_a_proxy_fails_at_once(start, reply):
    server, channel = start(lambda h: h.reply(**reply))
    message = unreachable(unary, channel)
    assert "no healthy upstream" in message or "upstream connect error" in message
    assert len(server.requests) == 1


def test_after_contact_a_refused_connection_is_unavailable_and_retried(start):
    server, channel = start(
        lambda h: h.reply([], headers={"Content-Type": GRPC_WEB, "grpc-status": "0"})
    )
    contacted(channel)
    server.shutdown()
    server.server_close()
    channel.transport.close()  # no pooled connection to the closed server
    error = rpc_error(unary, channel)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert f"http://127.0.0.1:{server.server_port}{METHOD}" in error.details()
    assert "cannot connect" in error.details() and "timed out" not in error.details()
    assert DefaultPolicy().can_retry(error)


def test_a_call_that_trickles_is_held_to_its_deadline(start):
    """The timeout is the call's, not each read's: a byte every 0.2 s must not hold a
    1 s call for the 2 s the body takes."""
    body = encode_message(b"0123456789") + OK
    pause = lambda: time.sleep(0.2)  # noqa: E731
    _, channel = start(
        lambda h: h.reply(
            [piece for byte in body for piece in (pause, bytes([byte]))], chunked=True
        )
    )
    began = time.monotonic()
    with pytest.raises(GrpcWebError) as info:
        list(channel.unary_stream(METHOD)(b"ping", timeout=1.0))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 1.5


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": GRPC_WEB, "grpc-status": "x"},
        {"Content-Type": GRPC_WEB, "grpc-status": "3", "grpc-status-details-bin": "not*base64"},
        {"Content-Type": GRPC_WEB, "trace-bin": "a"},
    ],
    ids=["non-numeric-status", "bad-status-details", "bad-bin-metadata"],
)
def test_malformed_response_headers_are_an_rpc_error_and_close_the_response(start, headers):
    server, channel = start(
        after_contact(lambda h: h.reply([encode_message(b"x"), OK], headers=headers))
    )
    contacted(channel)
    error = rpc_error(unary, channel)
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "protocol error in the response headers" in error.details()
    # The connection is not reused: the next call opens another one.
    with pytest.raises(GrpcWebError):
        unary(channel)
    assert len({request[3] for request in server.requests[1:]}) == 2


def test_a_text_body_says_why_when_grpc_message_is_missing(start):
    headers = {"Content-Type": "text/plain", "grpc-status": "16"}
    _, channel = start(lambda h: h.reply([b"Jwt is expired\x00\r\n"], status=401, headers=headers))
    error = rpc_error(unary, channel)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "Jwt is expired"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throw-away CA and a server certificate for 127.0.0.1: (ca.pem, server context)."""
    directory = tmp_path_factory.mktemp("tls")
    ca = tool("prod_keys").write_certificate(directory, names=("127.0.0.1",))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "tls/fullchain.pem", directory / "tls/privkey.pem")
    return str(ca), context


def test_tls_with_the_ca_bundle_succeeds(start, certificates):
    ca, context = certificates
    server, channel = start(
        lambda h: h.reply([encode_message(b"secure"), OK]), tls=context, ca_certs=ca
    )
    assert channel.base_url.startswith("https://")
    assert unary(channel) == b"secure"
    assert len(server.requests) == 1


def test_tls_without_the_ca_bundle_fails_at_once_and_says_how_to_trust(start, certificates):
    server, channel = start(lambda h: h.reply([encode_message(b"secure"), OK]), tls=certificates[1])
    message = unreachable(unary, channel)
    assert (
        f"The TLS certificate of https://127.0.0.1:{server.server_port} failed verification"
        in message
    )
    assert "CERTIFICATE_VERIFY_FAILED" in message and "ca_certs=" in message
    assert server.requests == []


def test_an_untrusted_certificate_is_not_retried_after_contact_either():
    from pyspark_web.transport import _certificate_failure

    assert _certificate_failure(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert not _certificate_failure(ssl.SSLError(1, "wrong version number"))


# --- reattach over grpc-web ---------------------------------------------------------------


def test_stream_ending_without_result_complete_is_reattached(start):
    """A server may end an ExecutePlan stream early (OK, no ResultComplete); upstream's
    reattachable iterator then calls ReattachExecute through this channel and resumes."""
    import pyspark.sql.connect.proto as pb2
    from pyspark.sql.connect.client.reattach import ExecutePlanResponseReattachableIterator
    from pyspark.sql.connect.client.retries import Retrying
    from pyspark.sql.connect.proto.base_pb2_grpc import SparkConnectServiceStub

    def response(response_id, complete=False):
        message = pb2.ExecutePlanResponse(response_id=response_id, operation_id="op")
        if complete:
            message.result_complete.SetInParent()
        return encode_message(message.SerializeToString())

    def script(handler):
        method = handler.path.rsplit("/", 1)[-1]
        if method == "ExecutePlan":
            handler.reply([response("r0"), response("r1"), OK])
        elif method == "ReattachExecute":
            handler.reply([response("r2"), response("done", complete=True), OK])
        else:
            handler.reply([encode_message(pb2.ReleaseExecuteResponse().SerializeToString()), OK])

    server, channel = start(script)
    request = pb2.ExecutePlanRequest(
        session_id="00000000-0000-4000-8000-000000000000", operation_id="op"
    )
    iterator = ExecutePlanResponseReattachableIterator(
        request, SparkConnectServiceStub(channel), lambda: Retrying([DefaultPolicy()]), []
    )
    assert [r.response_id for r in iterator] == ["r0", "r1", "r2", "done"]
    # The releases run on upstream's thread pool: let them finish while the server is up,
    # or they would retry against a closed port at interpreter exit.
    for future in list(iterator.release_futures):
        future.result(timeout=WAIT)
    methods = [path.rsplit("/", 1)[-1] for path, *_ in server.requests]
    assert methods.count("ExecutePlan") == 1 and methods.count("ReattachExecute") == 1
    [reattach] = [body for path, _, body, _ in server.requests if path.endswith("/ReattachExecute")]
    assert pb2.ReattachExecuteRequest.FromString(reattach[5:]).last_response_id == "r1"


def test_a_second_message_in_a_unary_response_fails_at_once(start):
    # A hostile server streams messages into a unary call and never ends the body: the
    # client must not buffer them all (or wait) before it sees the response is wrong.
    def script(handler):
        handler.reply(
            [encode_message(b"one"), encode_message(b"two"), lambda: server.stop.wait(WAIT)]
            + [encode_message(b"more")] * 1000
            + [OK],
            chunked=True,
        )

    server, channel = start(script)
    began = time.monotonic()
    with pytest.raises(GrpcWebError) as error:
        channel.unary_unary(METHOD)(b"ping", timeout=WAIT * 4)
    assert time.monotonic() - began < WAIT / 2
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "expected one response message, got more than one" in error.value.details()


# --- a whole session's first contact ------------------------------------------------------

SESSION = """
import sys, time
from pyspark.sql import SparkSession
began = time.monotonic()
try:
    SparkSession.builder.remote(sys.argv[1]).getOrCreate().range(1).collect()
    print("no error")
except Exception as error:
    print(f"{type(error).__name__} after {time.monotonic() - began:.1f} s: {error}")
"""


def first_contact(url):
    """A real PySpark session against url in a child process: its one line of outcome, and
    how long the process took including its exit (a retry thread would hold it)."""
    import os
    import subprocess
    import sys

    from helpers import ROOT

    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", SESSION, url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip(), time.monotonic() - began


def test_a_session_whose_server_refuses_fails_within_seconds_and_exits():
    port = free_port()
    outcome, took = first_contact(f"http://127.0.0.1:{port}")
    assert outcome.startswith("ServerUnreachableError after ")
    assert float(outcome.split()[2]) < 10
    assert f"http://127.0.0.1:{port}" in outcome and "Connection refused" in outcome
    assert took < 30


def test_a_session_with_an_untrusted_certificate_fails_within_seconds_and_exits(
    start, certificates
):
    server, _ = start(lambda h: h.reply([encode_message(b"secure"), OK]), tls=certificates[1])
    outcome, took = first_contact(f"https://127.0.0.1:{server.server_port}")
    assert outcome.startswith("ServerUnreachableError after ")
    assert float(outcome.split()[2]) < 10
    assert "CERTIFICATE_VERIFY_FAILED" in outcome
    assert took < 30
    assert server.requests == []


def test_a_session_whose_server_never_accepts_fails_within_ten_seconds():
    """A listener whose backlog is full drops the SYN, as a firewall that drops packets
    would: the default connect timeout ends the first contact."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    waiting = []
    try:
        for _ in range(4):  # more than the backlog holds; none is accepted
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
            waiting.append(client)
        outcome, took = first_contact(f"http://127.0.0.1:{port}")
    finally:
        for client in waiting:
            client.close()
        listener.close()
    assert outcome.startswith("ServerUnreachableError after ")
    assert float(outcome.split()[2]) < 10
    assert "timed out" in outcome
    assert took < 30
