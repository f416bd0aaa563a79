"""A grpc.Channel that speaks binary grpc-web over HTTP/1.1.

It implements what the generated Spark Connect stub uses: ``unary_unary``,
``unary_stream``, ``stream_unary`` and ``close``. Failures are raised as ``GrpcWebError``,
which is a ``grpc.RpcError`` and a ``grpc.Call`` (real grpcio's when it is installed, the
stand-in of ``pyspark.sql.connect.grpc_compat`` otherwise), with the gRPC status code, the
percent-decoded ``grpc-message`` and the trailing metadata including
``grpc-status-details-bin``. Upstream's retry policies, rich error conversion and reattach
therefore run unchanged.

Two failures are deliberately not ``grpc.RpcError``s but ``ServerUnreachableError``, so
that upstream does not retry them: a session whose first RPC cannot reach the server, and
a server certificate that fails verification.
"""

import inspect
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql.connect.grpc_compat import grpc

from pyspark_web import grpcweb
from pyspark_web.transport import (
    Failure,
    Response,
    Transport,
    TransportError,
    can_post_in_background,
    post_in_background,
)

_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# How much of an unexpected body (an HTML error page, say) an error message quotes.
EXCERPT_BYTES = 200
# Until the server has answered once, the channel's calls share this many seconds of
# trying to reach it (a session makes several calls for one action: Config, ExecutePlan,
# ReleaseExecute). A call after this long without one starts afresh.
FIRST_CONTACT_SECONDS = 8.0


class GrpcWebError(grpc.RpcError, grpc.Call):  # type: ignore[misc, name-defined]
    """An RPC that ended with a status other than OK, shaped like grpcio's errors."""

    def __init__(
        self,
        code: Any,
        details: str,
        trailing_metadata: grpcweb.Metadata = (),
        initial_metadata: grpcweb.Metadata = (),
        rpc: str = "",
    ) -> None:
        super().__init__(details)
        self._code = code
        self._details = details
        self._trailing = tuple(trailing_metadata)
        self._initial = tuple(initial_metadata)
        self._rpc = rpc

    def code(self) -> Any:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._trailing

    def initial_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._initial

    def debug_error_string(self) -> str:
        return f"grpc-web {self._rpc}: {self._code} {self._details}"

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False

    def __str__(self) -> str:
        return (
            f"<GrpcWebError of RPC that terminated with:\n\tstatus = {self._code}\n"
            f'\tdetails = "{self._details}"\n\trpc = {self._rpc}\n>'
        )

    __repr__ = __str__


class ServerUnreachableError(SparkConnectGrpcException):
    """The server could not be reached by the channel's first RPC, or its certificate
    failed verification.

    Upstream's retry policy retries every UNAVAILABLE for about 20 minutes (15 attempts,
    backing off to a minute). That suits a session that worked and lost its server for a
    while; a URL that never worked (a mistyped port, a proxy that is not running) or an
    untrusted certificate will not get better, and a notebook cannot wait that long. Not
    being a ``grpc.RpcError``, this error passes through upstream's retries unchanged.
    """

    def __init__(self, message: str) -> None:
        if "grpc_status_code" in inspect.signature(SparkConnectGrpcException).parameters:
            super().__init__(message=message, grpc_status_code=grpc.StatusCode.UNAVAILABLE)
        else:  # the 4.0 line's exceptions carry no status code (4.1 added it)
            super().__init__(message=message)
            self._grpc_status_code = grpc.StatusCode.UNAVAILABLE

    def getGrpcStatusCode(self) -> "grpc.StatusCode":
        return self._grpc_status_code


def _printable(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters: what a server wrote, safe to show."""
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())[:limit]


def _status(number: int) -> Any:
    return _STATUS_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


class _Call:
    """One RPC: the HTTP exchange and the frames of its response."""

    def __init__(
        self,
        channel: "GrpcWebChannel",
        method: str,
        body: bytes,
        timeout: float | None,
        metadata: Any,
    ) -> None:
        self._channel = channel
        self._url = channel.base_url + method
        self._method = method.rsplit("/", 1)[-1]
        self._rpc = f"{self._method} via {self._url}"
        self._body = body
        self._timeout = timeout
        self._metadata = metadata
        self._response: Response | None = None
        self._initial: grpcweb.Metadata = []
        self._finished = False

    def error(self, code: Any, details: str, trailing: grpcweb.Metadata = ()) -> GrpcWebError:
        """A GrpcWebError of this call: details prefixed with the RPC and its URL."""
        return GrpcWebError(code, f"{self._rpc}: {details}", trailing, self._initial, self._rpc)

    def _error(self, code: Any, details: str, trailing: grpcweb.Metadata = ()) -> GrpcWebError:
        return GrpcWebError(code, details, trailing, self._initial, self._rpc)

    @property
    def initial_metadata(self) -> grpcweb.Metadata:
        """The response's headers as metadata (empty until it has arrived)."""
        return self._initial

    @property
    def finished(self) -> bool:
        return self._finished

    def _unreachable(self, cause: str) -> ServerUnreachableError:
        self._channel.first_contact.failed(cause)
        return self._channel.first_contact.error(self._method, cause)

    def _untrusted(self, cause: str) -> ServerUnreachableError:
        return ServerUnreachableError(
            f"The TLS certificate of {self._channel.base_url} failed verification "
            f"({self._method}): {cause}. Pass the CA bundle that signed it, "
            "GrpcWebChannelBuilder(url, ca_certs='ca.pem'), or fix the server's certificate; "
            "retrying cannot help, so pyspark-web does not retry."
        )

    def _start(self) -> Response:
        headers = self._channel.request_headers(self._metadata, self._timeout)
        connect_within = self._channel.first_contact.connect_within(self._method)
        try:
            response = self._channel.transport.post(
                self._url, headers, self._body, self._timeout, connect_timeout=connect_within
            )
        except TransportError as error:
            raise self._failed(error) from error
        return self._accept(response)

    def start_in_background(
        self, done: Callable[[Response | None, Exception | None], None]
    ) -> None:
        """Send the request now and return (Pyodide only); ``done(response, None)`` or
        ``done(None, error)`` follows once the whole response has arrived."""

        def arrived(outcome: Response | TransportError) -> None:
            try:
                if isinstance(outcome, TransportError):
                    raise self._failed(outcome) from outcome
                response = self._accept(outcome)
            except Exception as error:
                done(None, error)
            else:
                done(response, None)

        headers = self._channel.request_headers(self._metadata, self._timeout)
        post_in_background(self._url, headers, self._body, self._timeout, arrived)

    def _failed(self, error: TransportError) -> Exception:
        """What a call raises when its request got no response."""
        if error.kind is Failure.UNTRUSTED:
            return self._untrusted(str(error))
        if error.kind is Failure.UNAVAILABLE and not self._channel.contacted:
            return self._unreachable(str(error))
        return self._transport_error(error)

    def _accept(self, response: Response) -> Response:
        """Check the response's headers: a status there, or a body that is not grpc-web,
        raises."""
        self._response = response
        try:
            self._initial = [grpcweb.normalize_metadata(k, v) for k, v in response.headers.items()]
            status, message = grpcweb.status_from_metadata(self._initial)
        except grpcweb.ProtocolError as error:
            self._finish(response, reuse=False)
            raise self._error(
                grpc.StatusCode.INTERNAL,
                f"{self._rpc}: grpc-web protocol error in the response headers: {error}",
            ) from error
        content_type = response.headers.get("content-type", "")
        if status is not None and (status != grpcweb.OK or response.status == 200):
            # Trailers-only: the status travels in the HTTP headers; nothing follows but,
            # from a proxy, perhaps a short text body that says why.
            if status != grpcweb.OK and not message and content_type.startswith("text/plain"):
                message = _printable(
                    response.read_prefix(EXCERPT_BYTES).decode("utf-8", "replace"), EXCERPT_BYTES
                )
            # A body left unread would be taken for the next response on this connection.
            self._finish(response, reuse=response.headers.get("content-length") == "0")
            self._contact(status, message)
            if status != grpcweb.OK:
                raise self._error(_status(status), message, self._initial)
            return response
        if response.status != 200 or not content_type.startswith("application/grpc-web"):
            excerpt = response.read_prefix(EXCERPT_BYTES).decode("utf-8", "replace")
            self._finish(response, reuse=False)
            code = (
                grpcweb.status_for_http(response.status)
                if response.status != 200
                else grpcweb.UNKNOWN
            )
            what = f"HTTP {response.status}" + (f" ({content_type})" if content_type else "")
            details = (
                f"{what} from {self._url}, not a grpc-web response; is this a grpc-web endpoint "
                f"(Envoy's grpc_web filter)? Body: {_printable(excerpt, EXCERPT_BYTES)!r}"
            )
            self._contact(code, details)
            raise self._error(_status(code), details)
        self._channel.contacted = True
        return response

    def _finish(self, response: Response, reuse: bool) -> None:
        response.close(reuse=reuse)
        self._finished = True

    def _contact(self, status: int, details: str) -> None:
        """Note that the server answered; on a first contact, UNAVAILABLE (from a proxy
        that cannot reach Spark, say) ends the session's attempt at once."""
        if status == grpcweb.UNAVAILABLE and not self._channel.contacted:
            raise self._unreachable(f"UNAVAILABLE: {details}")
        self._channel.contacted = True

    def _transport_error(self, error: TransportError) -> GrpcWebError:
        code = {
            Failure.DEADLINE: grpc.StatusCode.DEADLINE_EXCEEDED,
            Failure.PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
        }.get(error.kind, grpc.StatusCode.UNAVAILABLE)
        return self._error(code, f"{self._rpc}: {error}")

    def messages(self) -> Iterator[bytes]:
        """The payloads of the response's data frames, as they arrive."""
        response = self._response or self._start()
        if self._finished:
            return
        decoder = grpcweb.FrameDecoder(self._channel.max_frame_size)
        complete = False
        try:
            for chunk in response.chunks():
                for event in decoder.feed(chunk):
                    if isinstance(event, grpcweb.Message):
                        yield event.payload
                    else:
                        trailing = self._initial + event.metadata
                        status, message = grpcweb.status_from_metadata(event.metadata)
                        if status is None:
                            raise self._error(
                                grpc.StatusCode.INTERNAL,
                                f"{self._rpc}: trailer frame without grpc-status",
                                trailing,
                            )
                        if status != grpcweb.OK:
                            raise self._error(_status(status), message, trailing)
            decoder.close()
            if not decoder.trailers_seen:
                # A complete HTTP body without a status: a proxy cut the stream short.
                raise self._error(
                    grpc.StatusCode.UNAVAILABLE,
                    f"{self._rpc}: the response ended without a grpc-status trailer",
                )
            complete = True
        except TransportError as error:
            raise self._transport_error(error) from error
        except grpcweb.ProtocolError as error:
            raise self._error(
                grpc.StatusCode.INTERNAL, f"{self._rpc}: grpc-web protocol error: {error}"
            ) from error
        finally:
            self._finished = True
            response.close(reuse=complete)

    def cancel(self) -> None:
        if self._response is not None and not self._finished:
            self._finished = True
            self._response.close(reuse=False)


class _FirstContact:
    """The time budget of a channel's calls until the server first answers."""

    def __init__(self, channel: "GrpcWebChannel") -> None:
        self._channel = channel
        self._began: float | None = None
        self._last_failure = 0.0
        self._cause = ""

    def connect_within(self, method: str) -> float | None:
        """How long the next call may spend connecting (None: no limit of ours).

        Raises ServerUnreachableError, without trying, once the budget is spent."""
        if self._channel.contacted:
            return None
        now = time.monotonic()
        if self._began is None or now - self._last_failure > FIRST_CONTACT_SECONDS:
            self._began = now
        remaining = FIRST_CONTACT_SECONDS - (now - self._began)
        if remaining <= 0:
            raise self.error(method, self._cause)
        return remaining

    def failed(self, cause: str) -> None:
        self._last_failure = time.monotonic()
        self._cause = cause

    def error(self, method: str, cause: str) -> ServerUnreachableError:
        hint = (
            "Check the scheme (http or https), the host and the port, and that the grpc-web "
            "proxy (Envoy) and Spark Connect behind it are running"
        )
        if sys.platform == "emscripten":
            hint += ", and that the proxy's CORS policy allows this page's origin"
        return ServerUnreachableError(
            f"Cannot reach the Spark Connect server at {self._channel.base_url} ({method}): "
            f"{cause}. {hint}. Until the server has answered once, a session's calls share "
            f"{FIRST_CONTACT_SECONDS:.0f} s of trying and are not retried."
        )


class _ResponseStream(grpc.Call):  # type: ignore[misc, name-defined]
    """The iterator a unary_stream call returns (like grpcio's _MultiThreadedRendezvous)."""

    def __init__(self, call: _Call, deserializer: Callable[[bytes], Any] | None) -> None:
        self._call = call
        self._deserializer = deserializer
        self._payloads: Iterator[bytes] | None = None

    def __iter__(self) -> "_ResponseStream":
        return self

    def __next__(self) -> Any:
        if self._payloads is None:
            self._payloads = self._call.messages()
        payload = next(self._payloads)
        return _deserialize(self._call, self._deserializer, payload)

    def initial_metadata(self) -> grpcweb.Metadata:
        return self._call.initial_metadata

    def trailing_metadata(self) -> grpcweb.Metadata | None:
        return None

    def code(self) -> Any:
        return None

    def details(self) -> str | None:
        return None

    def is_active(self) -> bool:
        return not self._call.finished

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> bool:
        self._call.cancel()
        if self._payloads is not None:
            self._payloads.close()
        return True

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


def _deserialize(call: _Call, deserializer: Callable[[bytes], Any] | None, payload: bytes) -> Any:
    if deserializer is None:
        return payload
    try:
        return deserializer(payload)
    except Exception as error:  # protobuf's DecodeError and friends
        raise call.error(
            grpc.StatusCode.INTERNAL, f"cannot decode the response message ({error})"
        ) from error


def _single_response(call: _Call, deserializer: Callable[[bytes], Any] | None) -> Any:
    """The one message a unary response must carry: a second one fails at once, without
    reading (or waiting for) the rest of the body."""
    messages = call.messages()
    payloads: list[bytes] = []
    for payload in messages:
        payloads.append(payload)
        if len(payloads) > 1:
            messages.close()  # closes the response, not reused
            break
    if len(payloads) != 1:
        count = "more than one" if payloads else "no"
        raise call.error(grpc.StatusCode.INTERNAL, f"expected one response message, got {count}")
    return _deserialize(call, deserializer, payloads[0])


def _serializer(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes]:
    return serializer if serializer is not None else (lambda message: message)


class _MultiCallable:
    """One RPC method of the channel: what the stub calls for each request."""

    def __init__(
        self, channel: "GrpcWebChannel", method: str, serializer: Any, deserializer: Any
    ) -> None:
        self._channel, self._method = channel, method
        self._serialize, self._deserializer = _serializer(serializer), deserializer

    def _call(self, body: bytes, timeout: float | None, metadata: Any) -> _Call:
        return _Call(self._channel, self._method, body, timeout, metadata)


class _UnaryUnary(_MultiCallable):
    def __call__(
        self, request: Any, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> Any:
        call = self._call(grpcweb.encode_message(self._serialize(request)), timeout, metadata)
        return _single_response(call, self._deserializer)

    def future(
        self, request: Any, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> "_CallFuture":
        """gRPC's asynchronous form. Under Pyodide the request leaves at once and this
        returns before the response arrives; elsewhere the call completes first."""
        call = self._call(grpcweb.encode_message(self._serialize(request)), timeout, metadata)
        future = _CallFuture()
        if not can_post_in_background():
            try:
                future.settle(_single_response(call, self._deserializer), None)
            except Exception as error:
                future.settle(None, error)
            return future

        def arrived(response: Response | None, error: Exception | None) -> None:
            if error is None:
                try:
                    future.settle(_single_response(call, self._deserializer), None)
                except Exception as failure:
                    future.settle(None, failure)
            else:
                future.settle(None, error)

        try:
            call.start_in_background(arrived)
        except Exception as error:  # the request could not even be made
            future.settle(None, error)
        return future


class _CallFuture:
    """The outcome of a call made with ``future()``: grpc.Future's methods, without
    cancellation (a request that has left is not taken back)."""

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._error: Exception | None = None
        self._callbacks: list[Callable[[_CallFuture], None]] = []

    def settle(self, result: Any, error: Exception | None) -> None:
        self._done, self._result, self._error = True, result, error
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def done(self) -> bool:
        return self._done

    def running(self) -> bool:
        return not self._done

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def _wait(self) -> None:
        if not self._done:
            raise TimeoutError(
                "the response has not arrived yet; Python cannot wait for a background call "
                "here: check done() or use add_done_callback()"
            )

    def result(self, timeout: float | None = None) -> Any:
        self._wait()
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self, timeout: float | None = None) -> Exception | None:
        self._wait()
        return self._error

    def traceback(self, timeout: float | None = None) -> Any:
        error = self.exception(timeout)
        return None if error is None else error.__traceback__

    def add_done_callback(self, callback: Callable[["_CallFuture"], None]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)


class _UnaryStream(_MultiCallable):
    def __call__(
        self, request: Any, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> _ResponseStream:
        call = self._call(grpcweb.encode_message(self._serialize(request)), timeout, metadata)
        return _ResponseStream(call, self._deserializer)


class _StreamUnary(_MultiCallable):
    """Client streaming (AddArtifacts): grpc-web has no request streaming over HTTP/1.1,
    so the request messages travel as consecutive frames of one body."""

    def __call__(
        self,
        request_iterator: Iterable[Any],
        timeout: float | None = None,
        metadata: Any = None,
        **_: Any,
    ) -> Any:
        call = self._call(
            grpcweb.encode_messages(self._serialize(r) for r in request_iterator), timeout, metadata
        )
        return _single_response(call, self._deserializer)


class GrpcWebChannel(grpc.Channel):  # type: ignore[misc, name-defined]
    """grpc-web to ``base_url`` (scheme, host and port; the RPC path is appended).

    ``headers`` are sent with every call (authorization, connection-string parameters).
    """

    def __init__(
        self,
        base_url: str,
        headers: Sequence[tuple[str, str]] = (),
        transport: Transport | None = None,
        max_frame_size: int = grpcweb.DEFAULT_MAX_FRAME_SIZE,
        user_agent: str = "pyspark-web",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport or Transport()
        # Whether the server has ever answered (see ServerUnreachableError).
        self.contacted = False
        self.first_contact = _FirstContact(self)
        self.max_frame_size = max_frame_size
        self._headers = {
            "content-type": grpcweb.CONTENT_TYPE,
            "accept": grpcweb.CONTENT_TYPE,
            "x-grpc-web": "1",
            "x-user-agent": user_agent,
        }
        for key, value in headers:
            self._headers[key.lower()] = value

    def request_headers(self, metadata: Any, timeout: float | None) -> dict:
        """The HTTP headers of one call: the channel's, its metadata, its grpc-timeout."""
        headers = dict(self._headers)
        for key, value in metadata or ():
            key = key.lower()
            headers[key] = grpcweb.encode_metadata_value(key, value)
        if timeout is not None:
            headers["grpc-timeout"] = grpcweb.grpc_timeout(timeout)
        return headers

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        **_: Any,
    ) -> _UnaryUnary:
        return _UnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        **_: Any,
    ) -> _UnaryStream:
        return _UnaryStream(self, method, request_serializer, response_deserializer)

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        **_: Any,
    ) -> _StreamUnary:
        return _StreamUnary(self, method, request_serializer, response_deserializer)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def unsupported(*_: Any, **__: Any) -> Any:
            raise GrpcWebError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"bidirectional streaming ({method}) cannot be carried by grpc-web over HTTP/1.1",
                rpc=method,
            )

        return unsupported

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        pass

    def unsubscribe(self, callback: Any) -> None:
        pass

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "GrpcWebChannel":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
