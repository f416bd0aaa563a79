"""pyspark.sql.connect.grpc_compat (patch 0006): the grpc names the client uses, from one place.

The test venv has no grpcio on purpose, as in Pyodide, so the module hands out its stand-in;
which branch it takes with grpcio (and grpcio-status) installed is checked here by loading
its source afresh with stand-in ``grpc`` modules in sys.modules. With the real grpcio,
tests/unit/test_native_env.py checks it in build/venv-native (``grpc_compat.grpc`` is
``sys.modules["grpc"]``; the stand-in's status codes and from_call against grpcio's).
"""

import importlib.util
import sys
import types

import pytest
from google.rpc import code_pb2, status_pb2
from pyspark.errors import PySparkImportError
from pyspark.sql.connect import grpc_compat
from pyspark.sql.connect.grpc_compat import grpc, rpc_status

from pyspark_web.channel import GrpcWebError


def details_bin(code, message):
    return status_pb2.Status(code=code, message=message).SerializeToString()


def test_this_environment_has_no_grpcio():
    assert grpc_compat.HAVE_GRPCIO is False
    assert "grpc" not in sys.modules and "grpc_status" not in sys.modules


def test_the_stand_in_is_not_registered_as_grpc():
    """Code that imports grpc itself still gets grpcio or an ImportError."""
    assert grpc.__name__ == "pyspark.sql.connect.grpc_compat.grpc"
    with pytest.raises(ImportError):
        import grpc as _  # noqa: F401
    assert "grpc" not in sys.modules


def test_status_codes_have_grpcio_values():
    assert grpc.StatusCode.OK.value == (0, "ok")
    assert grpc.StatusCode.UNAVAILABLE.value == (14, "unavailable")
    assert grpc.StatusCode.UNAUTHENTICATED.value == (16, "unauthenticated")
    assert [c.value[0] for c in grpc.StatusCode] == list(range(17))
    assert grpc_compat.StatusCode is grpc.StatusCode
    # Messages name codes as grpcio's do.
    assert str(grpc.StatusCode.UNAVAILABLE) == "StatusCode.UNAVAILABLE"


# grpcio's abstract interfaces (grpc/__init__.py, grpcio 1.x): what a class must implement.
GRPCIO_ABSTRACT = {
    "RpcContext": {"is_active", "time_remaining", "cancel", "add_callback"},
    "Call": {
        "is_active",
        "time_remaining",
        "cancel",
        "add_callback",
        "initial_metadata",
        "trailing_metadata",
        "code",
        "details",
    },
    "Channel": {
        "subscribe",
        "unsubscribe",
        "unary_unary",
        "unary_stream",
        "stream_unary",
        "stream_stream",
        "close",
    },
    "UnaryStreamClientInterceptor": {"intercept_unary_stream"},
}


@pytest.mark.parametrize("name", sorted(GRPCIO_ABSTRACT))
def test_stand_in_interfaces_are_abstract_as_grpcios(name):
    interface = getattr(grpc, name)
    assert set(interface.__abstractmethods__) == GRPCIO_ABSTRACT[name]
    with pytest.raises(TypeError, match="abstract"):
        interface()


def test_stand_in_rpc_error_is_an_exception_and_not_a_call():
    assert issubclass(grpc.RpcError, Exception)
    assert not issubclass(grpc.RpcError, grpc.Call)
    error = grpc.RpcError("boom")
    assert str(error) == "boom"


def test_channel_errors_are_caught_as_rpc_errors_and_read_as_calls():
    """What pyspark-web's channel raises is what upstream's except clauses catch."""
    trailing = (("grpc-status-details-bin", details_bin(code_pb2.INTERNAL, "boom")),)
    with pytest.raises(grpc.RpcError) as info:
        raise GrpcWebError(grpc.StatusCode.INTERNAL, "boom", trailing)
    assert isinstance(info.value, grpc.Call)
    assert info.value.code() is grpc.StatusCode.INTERNAL
    assert info.value.trailing_metadata() == trailing


def test_from_call_returns_the_status_details():
    trailing = [
        ("content-type", "x"),
        ("grpc-status-details-bin", details_bin(code_pb2.INTERNAL, "boom")),
    ]
    status = rpc_status.from_call(GrpcWebError(grpc.StatusCode.INTERNAL, "boom", trailing))
    assert status.code == code_pb2.INTERNAL and status.message == "boom"


def test_from_call_without_details_or_metadata():
    assert (
        rpc_status.from_call(GrpcWebError(grpc.StatusCode.INTERNAL, "boom", [("a", "b")])) is None
    )
    no_metadata = types.SimpleNamespace(trailing_metadata=lambda: None)  # grpcio allows None
    assert rpc_status.from_call(no_metadata) is None


@pytest.mark.parametrize(
    "code, message, match",
    [
        (code_pb2.UNAVAILABLE, "boom", "status code 14"),
        (code_pb2.INTERNAL, "other", "message 'other'"),
    ],
)
def test_from_call_rejects_disagreeing_details(code, message, match):
    trailing = [("grpc-status-details-bin", details_bin(code, message))]
    with pytest.raises(ValueError, match=match):
        rpc_status.from_call(GrpcWebError(grpc.StatusCode.INTERNAL, "boom", trailing))


def test_native_channel_asks_for_grpcio():
    from pyspark.sql.connect.client import DefaultChannelBuilder

    with pytest.raises(PySparkImportError) as info:
        DefaultChannelBuilder("sc://127.0.0.1:15002").toChannel()
    assert info.value.getCondition() == "PACKAGE_NOT_INSTALLED"
    assert "grpcio" in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "insecure_channel",
        "secure_channel",
        "intercept_channel",
        "local_channel_credentials",
        "ssl_channel_credentials",
        "access_token_call_credentials",
        "composite_channel_credentials",
    ],
)
def test_stand_in_native_channel_functions_ask_for_grpcio(name):
    with pytest.raises(PySparkImportError) as info:
        getattr(grpc, name)("127.0.0.1:15002")
    assert info.value.getCondition() == "PACKAGE_NOT_INSTALLED"
    assert "grpcio" in str(info.value)


def test_retry_policy_and_error_conversion_accept_stand_in_errors():
    """Upstream retries and error conversion run unchanged on the channel's errors."""
    from pyspark.errors.exceptions.connect import convert_exception
    from pyspark.sql.connect.client.retries import DefaultPolicy

    policy = DefaultPolicy()
    assert policy.can_retry(GrpcWebError(grpc.StatusCode.UNAVAILABLE, "down"))
    assert not policy.can_retry(GrpcWebError(grpc.StatusCode.INVALID_ARGUMENT, "bad"))

    from google.rpc import error_details_pb2

    info = error_details_pb2.ErrorInfo(
        reason="org.apache.spark.sql.AnalysisException",
        domain="org.apache.spark",
        metadata={
            "classes": '["org.apache.spark.sql.AnalysisException"]',
            "errorClass": "TABLE_OR_VIEW_NOT_FOUND",
        },
    )
    error = convert_exception(
        info, "[TABLE_OR_VIEW_NOT_FOUND] missing", None, grpc_status_code=grpc.StatusCode.INTERNAL
    )
    assert type(error).__name__ == "AnalysisException"
    assert error.getCondition() == "TABLE_OR_VIEW_NOT_FOUND"
    assert error.getGrpcStatusCode() is grpc.StatusCode.INTERNAL


# --- which module grpc_compat hands out --------------------------------------------------


@pytest.fixture
def load_compat(monkeypatch):
    """load_compat(grpc=..., grpc_status=...): grpc_compat's source run afresh, as a new
    module, with those entries in sys.modules (None: not installed)."""

    def load(grpc, grpc_status):
        monkeypatch.setitem(sys.modules, "grpc", grpc)
        monkeypatch.setitem(sys.modules, "grpc_status", grpc_status)
        spec = importlib.util.spec_from_file_location("grpc_compat_probe", grpc_compat.__file__)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def fake_grpcio():
    module = types.ModuleType("grpc")
    module.StatusCode = type("StatusCode", (), {})
    module.RpcError = type("RpcError", (Exception,), {})
    module.Call = type("Call", (), {})
    return module


def fake_grpcio_status():
    package = types.ModuleType("grpc_status")
    package.rpc_status = types.ModuleType("grpc_status.rpc_status")
    package.rpc_status.from_call = lambda call: "grpcio-status"
    return package


def test_with_grpcio_and_grpcio_status_the_real_modules_are_handed_out(load_compat):
    real, status = fake_grpcio(), fake_grpcio_status()
    compat = load_compat(real, status)
    assert compat.HAVE_GRPCIO is True
    assert compat.grpc is real
    assert compat.grpc.RpcError is real.RpcError and compat.grpc.Call is real.Call
    assert compat.StatusCode is real.StatusCode
    assert compat.rpc_status is status.rpc_status


def test_with_grpcio_but_not_grpcio_status_from_call_is_the_stand_in(load_compat):
    real = fake_grpcio()
    compat = load_compat(real, None)
    assert compat.HAVE_GRPCIO is True and compat.grpc is real
    assert compat.rpc_status.from_call is compat._from_call
    assert compat.rpc_status.__name__ == "pyspark.sql.connect.grpc_compat.rpc_status"


def test_without_grpcio_the_stand_in_is_handed_out_and_not_registered(load_compat):
    compat = load_compat(None, None)
    assert compat.HAVE_GRPCIO is False
    assert compat.grpc.RpcError is compat._RpcError and compat.StatusCode is compat._StatusCode
    assert compat.rpc_status.from_call is compat._from_call
    assert sys.modules["grpc"] is None  # still "not installed" for anyone else
