"""HTTP for the grpc-web channel: the only module that imports urllib3.

On CPython urllib3 uses sockets (keep-alive connection pools, TLS with certificate
verification). Under Pyodide the same calls go through urllib3's emscripten backend, which
makes the browser's asynchronous fetch blocking (JSPI, synchronous XHR in a worker, or a
streaming helper worker on cross-origin-isolated pages).

Low-level failures are translated once, here, into ``TransportError`` with a kind the
channel maps to a gRPC status.
"""

import asyncio
import enum
import http.client
import io
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3TimeoutError,
)

try:
    import ssl
except ImportError:  # Pyodide 0.29 and older ship ssl as a package of its own (not loaded)
    ssl = None

# How much one read asks for. read1() returns what has arrived, up to this.
READ_SIZE = 256 * 1024
# Connecting (TCP and TLS) takes a fraction of this on any working network; a session's
# first RPC that cannot connect within it fails then (see channel.ServerUnreachableError).
DEFAULT_CONNECT_TIMEOUT = 8.0


def blocking_mode() -> str | None:
    """How this runtime can make a blocking HTTP request, or None if it cannot.

    - "sockets": CPython.
    - "jspi": Pyodide entered asynchronously (runPythonAsync) where JSPI exists; streams.
    - "worker-streaming": a Web Worker on a cross-origin-isolated page; streams through
      urllib3's helper worker.
    - "worker-sync-xhr": a Web Worker otherwise; whole responses.
    None: the browser's main thread entered synchronously (it would freeze the page, with
    no timeouts and no streaming), or Node without JSPI.
    """
    if sys.platform != "emscripten":
        return "sockets"
    import js
    from pyodide.ffi import can_run_sync

    if can_run_sync():
        return "jspi"
    if _in_node(js):
        return None
    if hasattr(js, "window") and js.self == js.window:
        return None
    return "worker-streaming" if getattr(js, "crossOriginIsolated", False) else "worker-sync-xhr"


def _in_node(js: Any) -> bool:
    # Not just any global "process": bundlers define one on web pages too.
    return (
        hasattr(js, "process")
        and getattr(getattr(js.process, "release", None), "name", None) == "node"
    )


def no_blocking_mode_message() -> str:
    import js

    if _in_node(js):
        return (
            "pyspark-web cannot make a blocking HTTP request in Node without JSPI: start Node "
            "with --experimental-wasm-stack-switching (Node 20; on by default from Node 24) and "
            "run the code with pyodide.runPythonAsync()."
        )
    return (
        "pyspark-web cannot make a blocking HTTP request here: Python was entered synchronously "
        "(pyodide.runPython) on the browser's main thread. Run the code with "
        "pyodide.runPythonAsync() (JSPI, Chromium 137+; notebooks already do), or run Pyodide "
        "in a Web Worker."
    )


class Failure(enum.Enum):
    """Why an HTTP exchange failed; the channel maps each to a gRPC status."""

    UNAVAILABLE = "unavailable"  # no connection, or it broke: a retry may help
    DEADLINE = "deadline"  # the call's timeout passed
    UNTRUSTED = "untrusted"  # the server's certificate failed verification: retrying cannot help
    PRECONDITION = "precondition"  # this runtime cannot block on HTTP: retrying cannot help


class TransportError(Exception):
    """The HTTP exchange failed, for the reason ``kind``."""

    def __init__(self, kind: Failure, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _certificate_failure(error: BaseException) -> bool:
    """Whether an SSLError comes from verifying the server's certificate (untrusted CA,
    wrong host name, expired), somewhere in its chain of causes."""
    seen = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if ssl is not None and isinstance(current, ssl.SSLCertVerificationError):
            return True
        pending += [current.__cause__, current.__context__]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return "CERTIFICATE_VERIFY_FAILED" in str(error)


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    _raw: "urllib3.BaseHTTPResponse"
    # time.monotonic() by which the whole body must have arrived (the call's timeout).
    deadline: float | None = None

    def _remaining(self) -> float | None:
        """Seconds left before the deadline; raises TransportError once it has passed."""
        if self.deadline is None:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError(
                Failure.DEADLINE, "the call's deadline passed before the response was complete"
            )
        return remaining

    def _limit_socket_wait(self, seconds: float | None) -> None:
        # A read timeout applies to each read: a server sending a byte at a time would hold
        # the call far past its deadline. On sockets the next read waits at most what is
        # left; urllib3 sets the socket timeout afresh for the connection's next request.
        # In the browser, the deadline is checked between reads.
        sock = getattr(getattr(self._raw, "connection", None), "sock", None)
        if seconds is not None and sock is not None:
            sock.settimeout(seconds)

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives; raises TransportError if the connection breaks or the
        deadline passes."""
        # Sockets (CPython): read1 returns what has arrived, without waiting for READ_SIZE.
        # urllib3's emscripten response has no read1; its read(n) already returns what the
        # browser's stream delivered (JSPI, or the isolation worker), up to n.
        if isinstance(self._raw, urllib3.HTTPResponse):
            read = self._raw.read1
        else:
            read = self._raw.read
        try:
            while True:
                self._limit_socket_wait(self._remaining())
                data = read(READ_SIZE)
                if not data:
                    return
                yield data
        except (ReadTimeoutError, Urllib3TimeoutError) as error:
            raise TransportError(
                Failure.DEADLINE, f"no data within the call's timeout ({error})"
            ) from error
        except (ProtocolError, HTTPError, OSError, http.client.HTTPException) as error:
            # http.client.HTTPException: how urllib3's emscripten backend reports a failed
            # fetch stream (the browser's "network error").
            raise TransportError(
                Failure.UNAVAILABLE, f"the connection broke mid-response: {error}"
            ) from error

    def read_prefix(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body, for error messages."""
        try:
            return self._raw.read(limit) or b""
        except (HTTPError, OSError, http.client.HTTPException):
            return b""

    def close(self, reuse: bool) -> None:
        """Give the connection back to the pool (only when the body has been read to its
        end, or is empty) or drop it."""
        if reuse:
            # Read what is left (nothing, or a chunked body's last chunk) so that the
            # response counts as done: a connection whose last response is not done fails
            # its next request (http.client's ResponseNotReady).
            self._raw.drain_conn()
            self._raw.release_conn()
        else:
            self._raw.close()
            self._raw.release_conn()


class Transport:
    """A pool of keep-alive HTTP/1.1 connections to one or more grpc-web endpoints."""

    def __init__(
        self, ca_certs: str | None = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ) -> None:
        self._connect_timeout = connect_timeout
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=8,
            # gRPC decides about retries (upstream's policies); HTTP must not retry behind it.
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )

    def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float | None,
        connect_timeout: float | None = None,
    ) -> Response:
        """Send the request and wait for the response's headers. Every TransportError from
        here means no response arrived. connect_timeout, if given, may only shorten the
        pool's."""
        if blocking_mode() is None:
            raise TransportError(Failure.PRECONDITION, no_blocking_mode_message())
        deadline = None if timeout is None else time.monotonic() + timeout
        if blocking_mode() == "sockets":
            connect = min(self._connect_timeout, connect_timeout or self._connect_timeout)
        else:
            # urllib3's emscripten connection runs the whole fetch while the pool holds the
            # connect timeout, and the browser has one timeout per fetch: for the headers and
            # each read (JSPI, the streaming worker) or the whole response (sync XHR). So it
            # gets the call's own; a refused or unresolvable host fails at once anyway.
            connect = timeout
        try:
            raw = self._pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                preload_content=False,
                decode_content=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=connect, read=timeout),
            )
        except NewConnectionError as error:
            # Before ConnectTimeoutError: urllib3 2 derives this one from it.
            raise TransportError(Failure.UNAVAILABLE, f"cannot connect: {error}") from error
        except ConnectTimeoutError as error:
            raise TransportError(Failure.UNAVAILABLE, f"connecting timed out ({error})") from error
        except (ReadTimeoutError, Urllib3TimeoutError) as error:
            # Urllib3TimeoutError itself: a browser fetch that ran out of the call's time.
            raise TransportError(
                Failure.DEADLINE, f"no response within the timeout ({error})"
            ) from error
        except SSLError as error:
            if _certificate_failure(error):
                raise TransportError(Failure.UNTRUSTED, f"TLS handshake failed: {error}") from error
            raise TransportError(Failure.UNAVAILABLE, f"TLS handshake failed: {error}") from error
        except (HTTPError, OSError, http.client.HTTPException) as error:
            raise TransportError(Failure.UNAVAILABLE, f"HTTP request failed: {error}") from error
        headers_out = {k.lower(): v for k, v in raw.headers.items()}
        response = Response(raw.status, headers_out, raw, deadline)
        try:
            response._remaining()  # headers that trickled in past the deadline
        except TransportError:
            response.close(reuse=False)
            raise
        return response

    def close(self) -> None:
        self._pool.clear()


def can_post_in_background() -> bool:
    """Whether post_in_background works here: under Pyodide, where the runtime's fetch runs
    beside Python. (On CPython a call in the background would need a thread.)"""
    return sys.platform == "emscripten"


# The pending background requests: the event loop keeps only weak references to tasks.
_background: set = set()


def post_in_background(
    url: str,
    headers: dict[str, str],
    body: bytes,
    timeout: float | None,
    done: Callable[["Response | TransportError"], None],
) -> None:
    """Send the request now and return at once (Pyodide only). ``done`` gets the whole
    response, or the TransportError, later from the JavaScript event loop: when Python next
    waits on a fetch (JSPI) or returns to JavaScript (a worker with synchronous XHR)."""
    import js
    from pyodide.ffi import to_js

    init: dict[str, Any] = {"method": "POST", "headers": headers, "body": to_js(body)}
    if timeout is not None:
        init["signal"] = js.AbortSignal.timeout(max(1, int(timeout * 1000)))
    # fetch() is called here, not in the task: the request leaves before Python goes on.
    sent = js.fetch(url, to_js(init, dict_converter=js.Object.fromEntries))

    async def arrive() -> None:
        try:
            reply = await sent
            data = (await reply.arrayBuffer()).to_bytes()
            names = {str(key).lower(): str(value) for key, value in reply.headers.entries()}
        except Exception as error:  # JsException: a network error, or the timeout's abort
            kind = Failure.DEADLINE if "TimeoutError" in str(error) else Failure.UNAVAILABLE
            done(TransportError(kind, f"HTTP request failed: {error}"))
            return
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(data),
            headers=names,
            status=reply.status,
            preload_content=False,
            decode_content=False,
        )
        done(Response(reply.status, names, raw))

    task = asyncio.ensure_future(arrive())
    _background.add(task)
    task.add_done_callback(_background.discard)
