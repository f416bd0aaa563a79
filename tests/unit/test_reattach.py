"""Reattachable execution without threads (patch 0007): releases still reach the server."""

import sys
import threading
from types import SimpleNamespace

import pyspark.sql.connect.proto as pb2
import pytest
from pyspark.sql.connect.client import reattach
from pyspark.sql.connect.client.retries import DefaultPolicy, Retrying


class RecordingStub:
    """ExecutePlan streams prepared responses; ReleaseExecute calls are recorded."""

    def __init__(self, responses):
        self.responses = responses
        self.released = []

    def ExecutePlan(self, request, metadata=None):
        return iter(self.responses)

    def ReleaseExecute(self, request, metadata=None):
        kind = request.WhichOneof("release")
        target = request.release_until.response_id if kind == "release_until" else None
        self.released.append((kind, target, threading.get_ident()))
        return pb2.ReleaseExecuteResponse()


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


def test_releases_run_inline_without_threads(pyodide_like):
    stub = RecordingStub(responses(3))
    iterator, ids = consume(stub)
    assert ids == ["r0", "r1", "r2", "done"]
    # A short result: one inline round trip, the final ReleaseAll, on this thread.
    assert stub.released == [("release_all", None, threading.get_ident())]
    assert len(iterator.release_futures) == 0


def test_long_results_are_still_released_along_the_way_without_threads(pyodide_like):
    interval = reattach.INLINE_RELEASE_INTERVAL
    stub = RecordingStub(responses(2 * interval + 3))
    _, ids = consume(stub)
    assert len(ids) == 2 * interval + 4
    me = threading.get_ident()
    assert stub.released == [
        ("release_until", f"r{interval - 1}", me),
        ("release_until", f"r{2 * interval - 1}", me),
        ("release_all", None, me),
    ]


def test_releases_use_the_thread_pool_where_threads_work():
    stub = RecordingStub(responses(2))
    iterator, ids = consume(stub)
    for future in list(iterator.release_futures):
        future.result(timeout=10)
    assert sorted(kind for kind, _, _ in stub.released) == [
        "release_all",
        "release_until",
        "release_until",
    ]
    assert all(thread != threading.get_ident() for _, _, thread in stub.released)
