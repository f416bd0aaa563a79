"""Reattachable execution without threads (patch 0007): releases still reach the server."""

import sys
import threading
from types import SimpleNamespace

import pyspark.sql.connect.proto as pb2
import pytest
from pyspark.sql.connect.client import reattach
from pyspark.sql.connect.client.retries import DefaultPolicy, Retrying


class PendingCall:
    """What a grpc-web channel's future() gives under Pyodide: the request has left, and the
    outcome comes later (settle)."""

    def __init__(self):
        self.callbacks = []
        self.error = None

    def add_done_callback(self, callback):
        self.callbacks.append(callback)

    def exception(self):
        return self.error

    def settle(self, error=None):
        self.error = error
        for callback in self.callbacks:
            callback(self)


class Release:
    """The stub's ReleaseExecute: called (blocking, with retries around it) or future()."""

    def __init__(self, stub):
        self.stub = stub

    def _record(self, request, form):
        kind = request.WhichOneof("release")
        target = request.release_until.response_id if kind == "release_until" else None
        self.stub.released.append((kind, target, form, threading.get_ident()))

    def __call__(self, request, metadata=None):
        self._record(request, "blocking")
        return pb2.ReleaseExecuteResponse()

    def future(self, request, metadata=None):
        self._record(request, "future")
        call = PendingCall()
        self.stub.pending.append(call)
        return call


class RecordingStub:
    """ExecutePlan streams prepared responses; ReleaseExecute calls are recorded."""

    def __init__(self, responses):
        self.responses = responses
        self.released = []
        self.pending = []
        self.ReleaseExecute = Release(self)

    def ExecutePlan(self, request, metadata=None):
        return iter(self.responses)


def responses(n):
    items = [pb2.ExecutePlanResponse(response_id=f"r{i}") for i in range(n)]
    last = pb2.ExecutePlanResponse(response_id="done")
    last.result_complete.CopyFrom(pb2.ExecutePlanResponse.ResultComplete())
    return items + [last]


def consume(stub):
    request = pb2.ExecutePlanRequest(session_id="00000000-0000-0000-0000-000000000000")
    iterator = reattach.ExecutePlanResponseReattachableIterator(
        request, stub, lambda: Retrying([DefaultPolicy()]), []
    )
    ids = [r.response_id for r in iterator]
    return iterator, ids


@pytest.fixture
def pyodide_like(monkeypatch):
    """The platform facts that Pyodide reports: Emscripten without pthreads."""
    monkeypatch.setattr(sys, "platform", "emscripten")
    monkeypatch.setattr(sys, "_emscripten_info", SimpleNamespace(pthreads=False), raising=False)

    def no_threads(*args, **kwargs):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_threads)


def test_thread_detection():
    assert reattach._can_start_threads() is True


def test_thread_detection_under_emscripten(pyodide_like):
    assert reattach._can_start_threads() is False


def test_releases_are_sent_without_waiting_without_threads(pyodide_like):
    stub = RecordingStub(responses(3))
    iterator, ids = consume(stub)
    assert ids == ["r0", "r1", "r2", "done"]
    # A short result: the final ReleaseAll only, in gRPC's asynchronous form, from this
    # thread, and nobody waits for it.
    assert stub.released == [("release_all", None, "future", threading.get_ident())]
    assert len(iterator.release_futures) == 0
    assert [len(call.callbacks) for call in stub.pending] == [1]


def test_long_results_are_still_released_along_the_way_without_threads(pyodide_like):
    interval = reattach.RELEASE_INTERVAL_WITHOUT_THREADS
    stub = RecordingStub(responses(2 * interval + 3))
    _, ids = consume(stub)
    assert len(ids) == 2 * interval + 4
    me = threading.get_ident()
    assert stub.released == [
        ("release_until", f"r{interval - 1}", "future", me),
        ("release_until", f"r{2 * interval - 1}", "future", me),
        ("release_all", None, "future", me),
    ]


@pytest.fixture
def warnings_logged(monkeypatch):
    """What the Connect logger warns (it is disabled unless SPARK_CONNECT_LOG_LEVEL is set)."""
    logged = []
    monkeypatch.setattr(reattach.logger, "warning", logged.append)
    return logged


def test_a_release_that_fails_later_is_logged_without_threads(pyodide_like, warnings_logged):
    stub = RecordingStub(responses(1))
    consume(stub)
    assert warnings_logged == []
    stub.pending[0].settle(RuntimeError("HTTP 503 from the proxy"))
    assert warnings_logged == ["ReleaseExecute failed with exception: HTTP 503 from the proxy."]


def test_a_release_that_cannot_be_sent_is_logged_without_threads(pyodide_like, warnings_logged):
    stub = RecordingStub(responses(1))

    def refuse(request, metadata=None):
        raise RuntimeError("no fetch here")

    stub.ReleaseExecute.future = refuse
    _, ids = consume(stub)
    assert ids == ["r0", "done"]
    assert warnings_logged == ["ReleaseExecute failed with exception: no fetch here."]


def test_releases_use_the_thread_pool_where_threads_work():
    stub = RecordingStub(responses(2))
    iterator, ids = consume(stub)
    for future in list(iterator.release_futures):
        future.result(timeout=10)
    assert sorted(kind for kind, _, _, _ in stub.released) == [
        "release_all",
        "release_until",
        "release_until",
    ]
    assert all(form == "blocking" for _, _, form, _ in stub.released)
    assert all(thread != threading.get_ident() for _, _, _, thread in stub.released)
