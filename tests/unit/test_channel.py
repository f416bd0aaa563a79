"""pyspark_web.channel.GrpcWebChannel end to end, against a scripted HTTP/1.1 server."""

import datetime
import ipaddress
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pyspark.sql.connect.client.retries import DefaultPolicy
from pyspark.sql.connect.grpc_compat import grpc
from pyspark_web.builder import GrpcWebChannelBuilder
from pyspark_web.channel import GrpcWebChannel, GrpcWebError
from pyspark_web.grpcweb import encode_message, encode_messages

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
            self.send_header("Content-Length", str(sum(map(len, chunks)) if length is None else length))
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
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        scheme = "https" if tls is not None else "http"
        channel = GrpcWebChannelBuilder(f"{scheme}://127.0.0.1:{server.server_port}", **builder_options).toChannel()
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
    _, channel = start(lambda h: h.reply([encode_message(b"one"), pause, encode_message(b"two"), OK], chunked=True))
    received = []
    for message in channel.unary_stream(METHOD)(b"ping", timeout=WAIT + 5):
        received.append(message)
        first_seen.set()
    assert received == [b"one", b"two"]
    assert server_waited == [True], "the client waited for the whole body before yielding"


def test_error_trailer_is_raised_with_code_details_and_metadata(start):
    status_bin = b"grpc-status-details-bin: CAUSBWdvbmUh\r\n"
    _, channel = start(lambda h: h.reply([encode_message(b"x"), trailer(5, "caf%C3%A9 gone", status_bin)]))
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


def test_trailers_only_ok_is_an_empty_stream(start):
    headers = {"Content-Type": GRPC_WEB, "grpc-status": "0"}
    _, channel = start(lambda h: h.reply([], headers=headers))
    assert stream(channel) == []


def test_html_error_page_becomes_unavailable_without_decoding(start):
    page = b"<html><body><h1>502 Bad Gateway</h1>\n<p>upstream connect error</p></body></html>"
    _, channel = start(lambda h: h.reply([page], status=502, headers={"Content-Type": "text/html"}))
    decoded = []
    call = channel.unary_unary(METHOD, response_deserializer=decoded.append)
    error = rpc_error(call, b"ping", timeout=WAIT)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "HTTP 502" in error.details() and "502 Bad Gateway" in error.details()
    assert decoded == [] and error.__cause__ is None
    assert DefaultPolicy().can_retry(error)


@pytest.mark.parametrize(
    "status, code",
    [(401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"), (404, "UNIMPLEMENTED"),
     (500, "UNKNOWN"), (503, "UNAVAILABLE")],
)
def test_http_status_without_grpc_status_is_mapped(start, status, code):
    _, channel = start(lambda h: h.reply([b"nope"], status=status, headers={"Content-Type": "text/plain"}))
    error = rpc_error(unary, channel)
    assert error.code() == getattr(grpc.StatusCode, code)
    assert f"HTTP {status}" in error.details()


def test_http_200_that_is_not_grpcweb_is_unknown(start):
    _, channel = start(lambda h: h.reply([b"<html>login</html>"], headers={"Content-Type": "text/html"}))
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
        {"chunks": [encode_message(b"one"), encode_message(b"0123456789")[:8]], "chunked": True, "close": True},
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
    server, channel = start(lambda h: (h.server.stop.wait(3), h.reply([encode_message(b"late"), OK])))
    began = time.monotonic()
    with pytest.raises(GrpcWebError) as info:
        channel.unary_unary(METHOD)(b"ping", timeout=0.5)
    assert time.monotonic() - began < 2.5
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert server.requests[0][1]["grpc-timeout"] == "500m"


def test_connection_refused_is_unavailable_and_names_the_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = GrpcWebChannelBuilder(f"http://127.0.0.1:{port}", connect_timeout=2).toChannel()
    error = rpc_error(unary, channel)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert f"http://127.0.0.1:{port}{METHOD}" in error.details()
    assert "cannot connect" in error.details() and "timed out" not in error.details()
    assert DefaultPolicy().can_retry(error)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throw-away CA and a server certificate for 127.0.0.1: (ca.pem, server context)."""
    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.datetime.now(datetime.timezone.utc)
    window = dict(not_valid_before=now - datetime.timedelta(minutes=5), not_valid_after=now + datetime.timedelta(days=1))
    ca_key, key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    ca = (
        x509.CertificateBuilder(**window).subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder(**window).subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory, pem = tmp_path_factory.mktemp("tls"), serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    (directory / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return str(directory / "ca.pem"), context


def test_tls_with_the_ca_bundle_succeeds(start, certificates):
    ca, context = certificates
    server, channel = start(lambda h: h.reply([encode_message(b"secure"), OK]), tls=context, ca_certs=ca)
    assert channel.base_url.startswith("https://")
    assert unary(channel) == b"secure"
    assert len(server.requests) == 1


def test_tls_without_the_ca_bundle_is_unavailable(start, certificates):
    server, channel = start(lambda h: h.reply([encode_message(b"secure"), OK]), tls=certificates[1])
    error = rpc_error(unary, channel)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "TLS" in error.details() and "certificate" in error.details().lower()
    assert server.requests == []


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
    request = pb2.ExecutePlanRequest(session_id="00000000-0000-4000-8000-000000000000", operation_id="op")
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
        handler.reply([encode_message(b"one"), encode_message(b"two"), lambda: server.stop.wait(WAIT)] +
                      [encode_message(b"more")] * 1000 + [OK], chunked=True)

    server, channel = start(script)
    began = time.monotonic()
    with pytest.raises(GrpcWebError) as error:
        channel.unary_unary(METHOD)(b"ping", timeout=WAIT * 4)
    assert time.monotonic() - began < WAIT / 2
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "expected one response message, got more than one" in error.value.details()
