"""pyspark.sql.connect.grpc_compat (patch 0005) without grpcio, as in Pyodide.

The test venv has no grpcio on purpose; tests/unit/test_native_env.py compares the
stand-in with real grpcio in a second venv.
"""

import sys

import pytest
from google.rpc import code_pb2, status_pb2

from pyspark.errors import PySparkImportError
from pyspark.sql.connect import grpc_compat
from pyspark.sql.connect.grpc_compat import grpc, rpc_status


class FakeCall(grpc.RpcError, grpc.Call):
    """An RPC error as a channel without grpcio would raise it."""

    def __init__(self, code, details, trailing):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing

    def initial_metadata(self):
        return ()

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


def details_bin(code, message):
    return status_pb2.Status(code=code, message=message).SerializeToString()


def test_this_environment_has_no_grpcio():
    assert grpc_compat.HAVE_GRPCIO is False
    assert "grpc" not in sys.modules and "grpc_status" not in sys.modules


def test_status_codes_have_grpcio_values():
    assert grpc.StatusCode.OK.value == (0, "ok")
    assert grpc.StatusCode.UNAVAILABLE.value == (14, "unavailable")
    assert grpc.StatusCode.UNAUTHENTICATED.value == (16, "unauthenticated")
    assert [c.value[0] for c in grpc.StatusCode] == list(range(17))
    assert grpc_compat.StatusCode is grpc.StatusCode


def test_error_is_an_rpc_error_and_a_call():
    error = FakeCall(grpc.StatusCode.INTERNAL, "boom", ())
    assert isinstance(error, grpc.RpcError) and isinstance(error, Exception)
    assert isinstance(error, grpc.Call)


def test_from_call_returns_the_status_details():
    trailing = [("content-type", "x"), ("grpc-status-details-bin", details_bin(code_pb2.INTERNAL, "boom"))]
    status = rpc_status.from_call(FakeCall(grpc.StatusCode.INTERNAL, "boom", trailing))
    assert status.code == code_pb2.INTERNAL and status.message == "boom"


def test_from_call_without_details_or_metadata():
    assert rpc_status.from_call(FakeCall(grpc.StatusCode.INTERNAL, "boom", [("a", "b")])) is None
    assert rpc_status.from_call(FakeCall(grpc.StatusCode.INTERNAL, "boom", None)) is None


@pytest.mark.parametrize(
    "code, message, match",
    [(code_pb2.UNAVAILABLE, "boom", "status code 14"), (code_pb2.INTERNAL, "other", "message 'other'")],
)
def test_from_call_rejects_disagreeing_details(code, message, match):
    trailing = [("grpc-status-details-bin", details_bin(code, message))]
    with pytest.raises(ValueError, match=match):
        rpc_status.from_call(FakeCall(grpc.StatusCode.INTERNAL, "boom", trailing))


def test_native_channel_asks_for_grpcio():
    from pyspark.sql.connect.client import DefaultChannelBuilder

    with pytest.raises(PySparkImportError) as info:
        DefaultChannelBuilder("sc://127.0.0.1:15002").toChannel()
    assert info.value.getCondition() == "PACKAGE_NOT_INSTALLED"
    assert "grpcio" in str(info.value)


def test_retry_policy_and_error_conversion_accept_stand_in_errors():
    """Upstream retries and error conversion run unchanged on stand-in errors."""
    from pyspark.errors.exceptions.connect import convert_exception
    from pyspark.sql.connect.client.retries import DefaultPolicy

    policy = DefaultPolicy()
    assert policy.can_retry(FakeCall(grpc.StatusCode.UNAVAILABLE, "down", ()))
    assert not policy.can_retry(FakeCall(grpc.StatusCode.INVALID_ARGUMENT, "bad", ()))

    from google.rpc import error_details_pb2

    info = error_details_pb2.ErrorInfo(
        reason="org.apache.spark.sql.AnalysisException",
        domain="org.apache.spark",
        metadata={"classes": '["org.apache.spark.sql.AnalysisException"]', "errorClass": "TABLE_OR_VIEW_NOT_FOUND"},
    )
    error = convert_exception(info, "[TABLE_OR_VIEW_NOT_FOUND] missing", None, grpc_status_code=grpc.StatusCode.INTERNAL)
    assert type(error).__name__ == "AnalysisException"
    assert error.getCondition() == "TABLE_OR_VIEW_NOT_FOUND"
    assert error.getGrpcStatusCode() is grpc.StatusCode.INTERNAL
