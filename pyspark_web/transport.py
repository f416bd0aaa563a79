"""HTTP for the grpc-web channel: the only module that imports urllib3.

On CPython urllib3 uses sockets (keep-alive connection pools, TLS with certificate
verification). Under Pyodide the same calls go through urllib3's emscripten backend, which
makes the browser's asynchronous fetch blocking (JSPI, synchronous XHR in a worker, or a
streaming helper worker on cross-origin-isolated pages).

Low-level failures are translated once, here, into ``TransportError`` with a kind the
channel maps to a gRPC status.
"""

import http.client
import sys
from dataclasses import dataclass
from typing import Dict, Iterator, Optional

import urllib3
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ConnectTimeoutError,
    SSLError,
)

# How much one read asks for. read1() returns what has arrived, up to this.
READ_SIZE = 256 * 1024
DEFAULT_CONNECT_TIMEOUT = 10.0


def blocking_mode() -> Optional[str]:
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
    if hasattr(js, "process") and getattr(getattr(js.process, "release", None), "name", None) == "node":
        return None
    if hasattr(js, "window") and js.self == js.window:
        return None
    return "worker-streaming" if getattr(js, "crossOriginIsolated", False) else "worker-sync-xhr"


def no_blocking_mode_message() -> str:
    import js

    if hasattr(js, "process"):
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


class TransportError(Exception):
    """The HTTP exchange failed. kind: "unavailable" (retry may help), "deadline", or
    "precondition" (this runtime cannot block on HTTP; retrying cannot help)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Response:
    status: int
    headers: Dict[str, str]  # lower-case names
    _raw: "urllib3.BaseHTTPResponse"

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives; raises TransportError if the connection breaks."""
        # Sockets (CPython): read1 returns what has arrived, without waiting for READ_SIZE.
        # urllib3's emscripten response has no read1; its read(n) already returns what the
        # browser's stream delivered (JSPI, or the isolation worker), up to n.
        if isinstance(self._raw, urllib3.HTTPResponse):
            read = self._raw.read1
        else:
            read = self._raw.read
        try:
            while True:
                data = read(READ_SIZE)
                if not data:
                    return
                yield data
        except ReadTimeoutError as error:
            raise TransportError("deadline", f"no data within the read timeout ({error})") from error
        except (ProtocolError, HTTPError, OSError, http.client.HTTPException) as error:
            # http.client.HTTPException: how urllib3's emscripten backend reports a failed
            # fetch stream (the browser's "network error").
            raise TransportError("unavailable", f"the connection broke mid-response: {error}") from error

    def read_prefix(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the body, for error messages."""
        try:
            return self._raw.read(limit) or b""
        except (HTTPError, OSError, http.client.HTTPException):
            return b""

    def close(self, reuse: bool) -> None:
        """Give the connection back to the pool (body fully read) or drop it."""
        if reuse:
            self._raw.release_conn()
        else:
            self._raw.close()
            self._raw.release_conn()


class Transport:
    """A pool of keep-alive HTTP/1.1 connections to one or more grpc-web endpoints."""

    def __init__(self, ca_certs: Optional[str] = None, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        self._connect_timeout = connect_timeout
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=8,
            # gRPC decides about retries (upstream's policies); HTTP must not retry behind it.
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
        )

    def post(self, url: str, headers: Dict[str, str], body: bytes, timeout: Optional[float]) -> Response:
        if blocking_mode() is None:
            raise TransportError("precondition", no_blocking_mode_message())
        try:
            raw = self._pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                preload_content=False,
                decode_content=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=self._connect_timeout, read=timeout),
            )
        except NewConnectionError as error:
            # Before ConnectTimeoutError: urllib3 2 derives this one from it.
            raise TransportError("unavailable", f"cannot connect: {error}") from error
        except ConnectTimeoutError as error:
            raise TransportError("unavailable", f"connecting timed out ({error})") from error
        except ReadTimeoutError as error:
            raise TransportError("deadline", f"no response within the timeout ({error})") from error
        except SSLError as error:
            raise TransportError("unavailable", f"TLS handshake failed: {error}") from error
        except (HTTPError, OSError, http.client.HTTPException) as error:
            raise TransportError("unavailable", f"HTTP request failed: {error}") from error
        headers_out = {k.lower(): v for k, v in raw.headers.items()}
        return Response(raw.status, headers_out, raw)

    def close(self) -> None:
        self._pool.clear()
