"""pyspark_web.transport on its own: the blocking-mode ladder, each Failure kind, the
call's absolute deadline, the connect timeout, and giving connections back to the pool.

Pyodide is faked (sys.platform, and ``js`` / ``pyodide.ffi`` in sys.modules), including
urllib3's own emscripten backend with a scripted fetch in place of the browser's. The
channel-level behaviour over real sockets (DEADLINE_EXCEEDED before headers, a trickling
body held to its deadline, refused and untrusted first contacts, incremental delivery,
connection reuse) is in test_channel.py; the ladder in real browsers and Node is in
tests/browser/test_blocking_modes.py and test_workers.py.
"""

import http.client
import io
import socket
import ssl
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from pyspark_web import transport
from pyspark_web.transport import (
    Failure,
    Response,
    Transport,
    TransportError,
    blocking_mode,
    no_blocking_mode_message,
)

WAIT = 5  # seconds: the most any server-side wait may block


# --- a fake Pyodide ---------------------------------------------------------------------


@pytest.fixture
def pyodide(monkeypatch):
    """pyodide(runtime, jspi=..., isolated=...): make this process look like Pyodide in
    ``runtime`` ("main" thread of a page, "worker", or "node"); returns the fake js."""

    def fake(runtime, jspi=False, isolated=None):
        js = types.ModuleType("js")
        if runtime == "main":
            js.window = js.self = types.SimpleNamespace(name="window")
        elif runtime == "worker":
            js.self = types.SimpleNamespace(name="DedicatedWorkerGlobalScope")
        elif runtime == "node":
            js.process = types.SimpleNamespace(release=types.SimpleNamespace(name="node"))
        else:
            raise ValueError(runtime)
        if isolated is not None:
            js.crossOriginIsolated = isolated
        ffi = types.ModuleType("pyodide.ffi")
        ffi.can_run_sync = lambda: jspi
        ffi.run_sync = lambda promise: promise
        ffi.JsException = type("JsException", (Exception,), {})
        ffi.JsArray = ffi.JsProxy = object
        ffi.to_js = lambda value, **options: value
        package = types.ModuleType("pyodide")
        package.ffi = ffi
        monkeypatch.setattr(sys, "platform", "emscripten")
        monkeypatch.setitem(sys.modules, "js", js)
        monkeypatch.setitem(sys.modules, "pyodide", package)
        monkeypatch.setitem(sys.modules, "pyodide.ffi", ffi)
        return js

    return fake


def test_cpython_uses_sockets_without_asking_js(monkeypatch):
    monkeypatch.setitem(sys.modules, "js", None)  # importing it would fail
    monkeypatch.setitem(sys.modules, "pyodide", None)
    assert blocking_mode() == "sockets"


@pytest.mark.parametrize(
    "runtime, jspi, isolated, mode",
    [
        ("main", True, None, "jspi"),
        ("worker", True, True, "jspi"),
        ("node", True, None, "jspi"),
        ("worker", False, True, "worker-streaming"),
        ("worker", False, False, "worker-sync-xhr"),
        ("worker", False, None, "worker-sync-xhr"),
        ("main", False, True, None),  # isolation does not make the main thread block
        ("main", False, None, None),
        ("node", False, None, None),
    ],
    ids=[
        "main-jspi",
        "worker-jspi",
        "node-jspi",
        "worker-isolated",
        "worker",
        "worker-old-browser",
        "main-isolated",
        "main",
        "node",
    ],
)
def test_blocking_mode_ladder(pyodide, runtime, jspi, isolated, mode):
    pyodide(runtime, jspi=jspi, isolated=isolated)
    assert blocking_mode() == mode


def test_without_a_blocking_mode_the_message_says_what_to_change(pyodide):
    pyodide("node")
    node = no_blocking_mode_message()
    assert (
        "Node" in node
        and "--experimental-wasm-stack-switching" in node
        and "runPythonAsync" in node
    )
    pyodide("main")
    page = no_blocking_mode_message()
    assert "main thread" in page and "runPythonAsync" in page and "Web Worker" in page
    assert "Node" not in page


def test_a_page_with_a_process_polyfill_is_told_about_the_page(pyodide):
    js = pyodide("main")
    js.process = types.SimpleNamespace(env={}, browser=True)  # what bundlers define
    assert blocking_mode() is None
    assert "main thread" in no_blocking_mode_message()


@pytest.mark.parametrize("runtime", ["main", "node"])
def test_a_request_without_a_blocking_mode_fails_precondition_and_sends_nothing(
    pyodide, monkeypatch, runtime
):
    pyodide(runtime)
    sent = []
    client = Transport()
    monkeypatch.setattr(client._pool, "request", lambda *args, **kwargs: sent.append(args))
    with pytest.raises(TransportError) as info:
        client.post("http://127.0.0.1:9/x", {}, b"", timeout=None)
    assert info.value.kind is Failure.PRECONDITION
    assert "cannot make a blocking HTTP request" in str(info.value)
    assert sent == []


# --- urllib3's emscripten backend, with a scripted fetch ---------------------------------


class Stream(io.RawIOBase):
    """A fetch body: each read returns the next piece, or raises it if it is an exception."""

    def __init__(self, pieces):
        self.pieces = list(pieces)

    def readable(self):
        return True

    def read(self, size=-1):
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if isinstance(piece, BaseException):
            raise piece
        return piece


@pytest.fixture
def browser(pyodide, monkeypatch):
    """Pyodide with JSPI on a page, urllib3's emscripten connections in the pools, and the
    fetch scripted: browser.reply = a function of the EmscriptenRequest that returns
    (status, headers, body pieces) or raises. browser.requests: what was fetched."""
    pyodide("main", jspi=True)
    before = set(sys.modules)
    import urllib3.contrib.emscripten.connection as emscripten
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.contrib.emscripten import fetch
    from urllib3.contrib.emscripten.response import EmscriptenResponse

    state = types.SimpleNamespace(requests=[], fetch=fetch, reply=None)

    def send_streaming_request(request):
        state.requests.append(request)
        status, headers, pieces = state.reply(request)
        return EmscriptenResponse(status, headers, Stream(pieces), request)

    monkeypatch.setattr(HTTPConnectionPool, "ConnectionCls", emscripten.EmscriptenHTTPConnection)
    monkeypatch.setattr(HTTPSConnectionPool, "ConnectionCls", emscripten.EmscriptenHTTPSConnection)
    monkeypatch.setattr(emscripten, "send_streaming_request", send_streaming_request)
    yield state
    # The backend was imported against the fake js: no later import may find it.
    for name in set(sys.modules) - before:
        if name.startswith("urllib3.contrib.emscripten"):
            del sys.modules[name]
    if hasattr(urllib3.contrib, "emscripten"):
        delattr(urllib3.contrib, "emscripten")


GRPC_WEB = {"content-type": "application/grpc-web+proto"}


def test_in_the_browser_the_body_streams_through_read(browser):
    browser.reply = lambda request: (200, GRPC_WEB, [b"one", b"two", b"three"])
    client = Transport()
    response = client.post(
        "http://127.0.0.1:8081/svc/Echo", {"x-grpc-web": "1"}, b"ping", timeout=30
    )
    assert (response.status, response.headers) == (200, GRPC_WEB)
    assert list(response.chunks()) == [b"one", b"two", b"three"]  # piece by piece, no read1
    response.close(reuse=True)
    [request] = browser.requests
    assert (request.method, request.url, request.body) == (
        "POST",
        "http://127.0.0.1:8081/svc/Echo",
        b"ping",
    )


def test_in_the_browser_a_failed_fetch_is_unavailable(browser):
    def reply(request):
        raise browser.fetch._RequestError(
            "NetworkError when attempting to fetch resource.", request=request
        )

    browser.reply = reply
    with pytest.raises(TransportError) as info:
        Transport().post("http://127.0.0.1:8081/svc/Echo", {}, b"", timeout=30)
    assert info.value.kind is Failure.UNAVAILABLE
    assert "NetworkError" in str(info.value)


def test_in_the_browser_a_stream_that_breaks_is_unavailable(browser):
    browser.reply = lambda request: (
        200,
        GRPC_WEB,
        [b"one", browser.fetch._RequestError("network error")],
    )
    response = Transport().post("http://127.0.0.1:8081/svc/Echo", {}, b"", timeout=30)
    received = []
    with pytest.raises(TransportError) as info:
        for chunk in response.chunks():
            received.append(chunk)
    assert received == [b"one"]
    assert info.value.kind is Failure.UNAVAILABLE


@pytest.mark.parametrize(
    "timeout, fetch_timeout", [(30.0, 30.0), (None, 0)], ids=["timeout", "no-timeout"]
)
def test_in_the_browser_the_fetch_is_bounded_by_the_calls_timeout(browser, timeout, fetch_timeout):
    browser.reply = lambda request: (200, GRPC_WEB, [])
    Transport().post("http://127.0.0.1:8081/svc/Echo", {}, b"", timeout=timeout).close(reuse=True)
    assert browser.requests[0].timeout == fetch_timeout


@pytest.mark.parametrize("where", ["before-headers", "mid-body"])
def test_in_the_browser_a_fetch_that_times_out_is_deadline(browser, where):
    timed_out = browser.fetch._TimeoutError("Request timed out")

    def reply(request):
        if where == "before-headers":
            raise timed_out
        return 200, GRPC_WEB, [b"one", timed_out]

    browser.reply = reply
    with pytest.raises(TransportError) as info:
        list(Transport().post("http://127.0.0.1:8081/svc/Echo", {}, b"", timeout=30).chunks())
    assert info.value.kind is Failure.DEADLINE


# --- each Failure kind, from what urllib3 raises -----------------------------------------


def certificate_error():
    return SSLError(
        ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate")
    )


@pytest.mark.parametrize(
    "raised, kind, says",
    [
        (
            NewConnectionError(
                None, "Failed to establish a new connection: [Errno 111] Connection refused"
            ),
            Failure.UNAVAILABLE,
            "cannot connect",
        ),
        (
            ConnectTimeoutError(None, "Connection to 10.0.0.1 timed out. (connect timeout=8.0)"),
            Failure.UNAVAILABLE,
            "connecting timed out",
        ),
        (
            ReadTimeoutError(None, "http://h/x", "Read timed out. (read timeout=2.0)"),
            Failure.DEADLINE,
            "no response",
        ),
        (certificate_error(), Failure.UNTRUSTED, "CERTIFICATE_VERIFY_FAILED"),
        (
            SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            Failure.UNTRUSTED,
            "TLS",
        ),
        (
            SSLError(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")),
            Failure.UNAVAILABLE,
            "TLS",
        ),
        (
            ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
            Failure.UNAVAILABLE,
            "aborted",
        ),
        (
            http.client.RemoteDisconnected("Remote end closed connection"),
            Failure.UNAVAILABLE,
            "closed",
        ),
        (ConnectionResetError(104, "Connection reset by peer"), Failure.UNAVAILABLE, "reset"),
    ],
    ids=[
        "refused",
        "connect-timeout",
        "read-timeout",
        "untrusted-chain",
        "untrusted-message",
        "tls-other",
        "protocol",
        "disconnected",
        "reset",
    ],
)
def test_request_failures_are_mapped_to_a_kind(monkeypatch, raised, kind, says):
    client = Transport()

    def request(*args, **kwargs):
        raise raised

    monkeypatch.setattr(client._pool, "request", request)
    with pytest.raises(TransportError) as info:
        client.post("http://127.0.0.1:9/x", {}, b"", timeout=2.0)
    assert info.value.kind is kind
    assert says in str(info.value)
    assert info.value.__cause__ is raised


def test_a_programming_error_is_not_disguised_as_a_network_failure(monkeypatch):
    client = Transport()
    monkeypatch.setattr(client._pool, "request", lambda *args, **kwargs: {}["missing"])
    with pytest.raises(KeyError):
        client.post("http://127.0.0.1:9/x", {}, b"", timeout=2.0)


def test_a_certificate_failure_is_found_anywhere_in_the_chain_and_cycles_end():
    inner = ssl.SSLCertVerificationError(1, "certificate verify failed")
    outer = SSLError("handshake failed")
    outer.__context__ = ProtocolError("wrapped", inner)
    assert transport._certificate_failure(outer)
    first, second = SSLError("a"), SSLError("b")
    first.__context__, second.__context__ = second, first
    assert not transport._certificate_failure(first)


class Raw:
    """A response body as the emscripten backend has it: read(n) only, no read1."""

    def __init__(self, pieces, sock=None):
        self.pieces = list(pieces)
        self.reads = 0
        self.connection = types.SimpleNamespace(sock=sock) if sock is not None else None

    def read(self, amount=None):
        self.reads += 1
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if isinstance(piece, BaseException):
            raise piece
        return piece


@pytest.mark.parametrize(
    "raised, kind",
    [
        (ReadTimeoutError(None, "http://h/x", "Read timed out."), Failure.DEADLINE),
        (
            ProtocolError("Connection broken: IncompleteRead", http.client.IncompleteRead(b"")),
            Failure.UNAVAILABLE,
        ),
        (http.client.IncompleteRead(b"abc", 10), Failure.UNAVAILABLE),
        (http.client.HTTPException("network error"), Failure.UNAVAILABLE),
        (ConnectionResetError(104, "Connection reset by peer"), Failure.UNAVAILABLE),
    ],
    ids=["read-timeout", "protocol", "incomplete", "fetch-stream", "reset"],
)
def test_body_failures_are_mapped_to_a_kind(raised, kind):
    response = Response(200, {}, Raw([b"first", raised, b"never"]))
    received = []
    with pytest.raises(TransportError) as info:
        for chunk in response.chunks():
            received.append(chunk)
    assert received == [b"first"]
    assert info.value.kind is kind and info.value.__cause__ is raised


@pytest.mark.parametrize(
    "raised",
    [
        ProtocolError("broken"),
        ConnectionResetError(104, "reset"),
        http.client.HTTPException("network error"),
    ],
)
def test_an_error_excerpt_that_cannot_be_read_is_empty(raised):
    assert Response(502, {}, Raw([raised])).read_prefix(200) == b""
    assert Response(502, {}, Raw([b"Bad gateway"])).read_prefix(200) == b"Bad gateway"


# --- the call's absolute deadline --------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


class Socket:
    def __init__(self):
        self.timeouts = []

    def settimeout(self, seconds):
        self.timeouts.append(seconds)


def test_each_read_waits_at_most_what_is_left_of_the_call(monkeypatch):
    """The deadline is the call's: a read may wait only what is left of it, and none
    starts once it has passed, however steadily data arrives."""
    clock = Clock()
    monkeypatch.setattr(transport, "time", clock)
    sock = Socket()

    class Slow(Raw):
        def read(self, amount=None):
            clock.now += 4  # each piece takes 4 s to arrive
            return super().read(amount)

    raw = Slow([b"a", b"b", b"c", b"d"], sock)
    response = Response(200, {}, raw, deadline=clock.now + 10)
    received = []
    with pytest.raises(TransportError) as info:
        for chunk in response.chunks():
            received.append(chunk)
    assert info.value.kind is Failure.DEADLINE
    assert received == [b"a", b"b", b"c"]  # at 4, 8 and 12 s; no read after 12 s
    assert raw.reads == 3
    assert sock.timeouts == [10, 6, 2]


def test_without_a_timeout_reads_are_not_limited(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(transport, "time", clock)
    sock = Socket()
    raw = Raw([b"a", b"b"], sock)
    clock.now += 10**6
    assert list(Response(200, {}, raw, deadline=None).chunks()) == [b"a", b"b"]
    assert sock.timeouts == []


@pytest.fixture
def raw_server():
    """raw_server(script): a one-connection TCP server on 127.0.0.1; script(conn, request)
    runs in its thread. Returns (port, events): events["closed"] is set when the client
    closes the connection after the script."""
    servers = []

    def start(script):
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(WAIT)
        events = {"closed": threading.Event()}

        def serve():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(WAIT)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                script(conn, request)
                try:
                    while conn.recv(65536):
                        pass
                    events["closed"].set()
                except OSError:
                    pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        servers.append((listener, thread))
        return listener.getsockname()[1], events

    yield start
    for listener, thread in servers:
        listener.close()
        thread.join(WAIT + 1)


def test_headers_that_trickle_in_past_the_deadline_fail_and_drop_the_connection(raw_server):
    """No single read waits long, but the headers end after the call's deadline."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: 10\r\n\r\n"
    )

    def trickle(conn, request):
        for byte in head:
            conn.sendall(bytes([byte]))
            time.sleep(1.2 / len(head))

    port, events = raw_server(trickle)
    client = Transport()
    began = time.monotonic()
    with pytest.raises(TransportError) as info:
        client.post(f"http://127.0.0.1:{port}/svc/Echo", {}, b"ping", timeout=0.5)
    took = time.monotonic() - began
    assert info.value.kind is Failure.DEADLINE
    assert 1.0 < took < WAIT
    # The unread body's connection is closed, not pooled.
    assert events["closed"].wait(WAIT)
    client.close()


# --- the connect timeout -----------------------------------------------------------------


@pytest.mark.parametrize(
    "pool, call, expected",
    [(8.0, None, 8.0), (8.0, 2.0, 2.0), (8.0, 20.0, 8.0), (0.5, 3.0, 0.5)],
    ids=["pool", "shortened", "never-lengthened", "never-lengthened-small"],
)
def test_the_connect_timeout_may_only_be_shortened_per_call(monkeypatch, pool, call, expected):
    client = Transport(connect_timeout=pool)
    seen = []

    def request(*args, **kwargs):
        seen.append(kwargs["timeout"])
        raise NewConnectionError(None, "refused")

    monkeypatch.setattr(client._pool, "request", request)
    with pytest.raises(TransportError):
        client.post("http://127.0.0.1:9/x", {}, b"", timeout=30.0, connect_timeout=call)
    assert seen[0].connect_timeout == expected
    assert seen[0].read_timeout == 30.0


@pytest.fixture
def never_accepts():
    """A port whose listener's backlog is full: SYNs are dropped, connecting hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    waiting = []
    for _ in range(4):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        waiting.append(client)
    yield port
    for client in waiting:
        client.close()
    listener.close()


@pytest.mark.parametrize(
    "pool, call", [(8.0, 0.3), (0.3, 8.0)], ids=["call-shortens", "pool-bounds"]
)
def test_a_server_that_never_accepts_fails_within_the_connect_timeout(never_accepts, pool, call):
    began = time.monotonic()
    with pytest.raises(TransportError) as info:
        Transport(connect_timeout=pool).post(
            f"http://127.0.0.1:{never_accepts}/x", {}, b"", timeout=None, connect_timeout=call
        )
    assert time.monotonic() - began < 3
    assert info.value.kind is Failure.UNAVAILABLE
    assert "connecting timed out" in str(info.value)


# --- what the pool does and does not do --------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = WAIT

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append((self.path, self.client_address))
        self.server.script(self)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """http_server(script) -> (server, url); script(handler) answers each request."""
    servers = []

    def start(script):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.requests, server.script = [], script
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_refused_connection_is_not_retried_behind_grpc(http_server):
    server, url = http_server(lambda h: None)
    server.shutdown()
    server.server_close()
    with pytest.raises(TransportError) as info:
        Transport().post(f"{url}/x", {}, b"", timeout=WAIT)
    assert info.value.kind is Failure.UNAVAILABLE
    # urllib3's own retries would end in MaxRetryError instead.
    assert isinstance(info.value.__cause__, NewConnectionError)


def test_a_redirect_is_returned_not_followed(http_server):
    def redirect(handler):
        handler.send_response(307)
        handler.send_header("Location", "/elsewhere")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server, url = http_server(redirect)
    response = Transport().post(f"{url}/svc/Echo", {}, b"ping", timeout=WAIT)
    assert response.status == 307 and response.headers["location"] == "/elsewhere"
    assert [path for path, _ in server.requests] == ["/svc/Echo"]


def chunked(body):
    def reply(handler):
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    return reply


@pytest.mark.parametrize("read", [5, 2], ids=["all-but-the-last-chunk", "part-of-the-body"])
def test_a_connection_given_back_is_drained_and_reused(http_server, read):
    """close(reuse=True) reads what is left (the last chunk at least), so that the pool
    can use the connection again, and the next response starts clean."""
    server, url = http_server(chunked(b"hello"))
    client = Transport()
    response = client.post(f"{url}/a", {}, b"", timeout=WAIT)
    assert response.read_prefix(read) == b"hello"[:read]
    response.close(reuse=True)
    again = client.post(f"{url}/b", {}, b"", timeout=WAIT)
    assert b"".join(again.chunks()) == b"hello"
    again.close(reuse=True)
    assert len({client_address for _, client_address in server.requests}) == 1


def test_a_connection_not_given_back_is_closed(raw_server):
    """close(reuse=False) closes the connection: a body left unread must not wait in the pool."""

    def reply(conn, request):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )

    port, events = raw_server(reply)
    client = Transport()
    response = client.post(f"http://127.0.0.1:{port}/a", {}, b"", timeout=WAIT)
    assert response.read_prefix(2) == b"he"
    response.close(reuse=False)
    assert events["closed"].wait(WAIT)
    client.close()


def test_imports_and_classifies_errors_without_ssl():
    """Pyodide 0.29 ships ssl as a package of its own, which a page without it never
    loads: the transport must import, and tell errors apart, without it."""
    import subprocess

    code = (
        "import sys; sys.modules['ssl'] = None\n"
        "from pyspark_web import transport\n"
        "assert transport.ssl is None\n"
        "print(transport._certificate_failure(ConnectionError('refused')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
