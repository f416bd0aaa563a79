"""The patched client next to grpcio, numpy, pandas and pyarrow (build/venv-native).

Checks that the lazy imports (patch 0003) stay lazy when the packages are installed,
that numpy values still work where they are used, and that the grpc stand-in (patch 0006)
matches real grpcio and grpcio-status.
"""

import pytest
from helpers import native_venv, run_python


@pytest.fixture(scope="module")
def native(wheel):
    return native_venv(wheel)


def test_heavy_packages_stay_unimported_until_used(native):
    out = run_python(
        native,
        """
import sys
import pyspark.sql.connect.session, pyspark.sql.connect.client.core
from pyspark.sql.connect.functions import col, lit
from pyspark.sql.connect import grpc_compat
print(sorted(m for m in ("numpy", "pandas", "pyarrow") if m in sys.modules))
print(grpc_compat.HAVE_GRPCIO, grpc_compat.grpc is sys.modules["grpc"])
""",
    ).stdout.splitlines()
    assert out == ["[]", "True True"]


def test_numpy_values_still_work_once_numpy_is_imported(native):
    out = run_python(
        native,
        """
import numpy as np
from pyspark.sql.connect.functions import lit
from pyspark.sql.connect.expressions import LiteralExpression
from pyspark.sql.types import LongType, BooleanType, StringType
print(lit(np.int64(5)), lit(np.bool_(True)))
print(LiteralExpression._infer_type(np.float32(1.5)), LiteralExpression._infer_type(np.str_("a")))
print(lit(np.array([1, 2, 3])))
LiteralExpression(np.int64(7), LongType())
""",
    ).stdout.splitlines()
    assert out[0] == "Column<'5'> Column<'True'>"
    assert out[1] == "FloatType() StringType()"
    assert "array(1, 2, 3)" in out[2] and "ARRAY<BIGINT>" in out[2].upper()


def test_stand_in_status_codes_equal_grpcio(native):
    out = run_python(
        native,
        """
import grpc
from pyspark.sql.connect import grpc_compat
real = [(m.name, m.value) for m in grpc.StatusCode]
ours = [(m.name, m.value) for m in grpc_compat._StatusCode]
print(real == ours, len(real))
""",
    ).stdout.split()
    assert out == ["True", "17"]


def test_stand_in_from_call_behaves_like_grpcio_status(native):
    out = run_python(
        native,
        """
import grpc
from grpc_status import rpc_status
from google.rpc import status_pb2
from pyspark.sql.connect import grpc_compat

class Call(grpc.RpcError, grpc.Call):
    def __init__(self, code, details, trailing):
        self.c, self.d, self.t = code, details, trailing
    def code(self): return self.c
    def details(self): return self.d
    def trailing_metadata(self): return self.t
    def initial_metadata(self): return ()
    def is_active(self): return False
    def time_remaining(self): return None
    def cancel(self): return False
    def add_callback(self, cb): return False

def blob(code, msg):
    return status_pb2.Status(code=code, message=msg).SerializeToString()

cases = [
    Call(grpc.StatusCode.INTERNAL, "boom", [("grpc-status-details-bin", blob(13, "boom"))]),
    Call(grpc.StatusCode.INTERNAL, "boom", [("other", "x")]),
    Call(grpc.StatusCode.INTERNAL, "boom", None),
    Call(grpc.StatusCode.INTERNAL, "boom", [("grpc-status-details-bin", blob(14, "boom"))]),
    Call(grpc.StatusCode.INTERNAL, "boom", [("grpc-status-details-bin", blob(13, "other"))]),
]

def outcome(fn, call):
    try:
        status = fn(call)
        return None if status is None else (status.code, status.message)
    except Exception as e:
        return type(e).__name__

for call in cases:
    print(outcome(rpc_status.from_call, call) == outcome(grpc_compat._from_call, call),
          outcome(grpc_compat._from_call, call))
""",
    ).stdout.splitlines()
    assert [line.split()[0] for line in out] == ["True"] * 5
    assert out[0].endswith("(13, 'boom')") and out[3].endswith("ValueError")


def test_native_channel_is_built_with_grpcio(native):
    out = run_python(
        native,
        """
import grpc
from pyspark.sql.connect.client import DefaultChannelBuilder
channel = DefaultChannelBuilder("sc://127.0.0.1:15002").toChannel()
print(isinstance(channel, grpc.Channel))
channel.close()
""",
    ).stdout.split()
    assert out == ["True"]


@pytest.mark.parametrize("url", ["sc://127.0.0.1:15002", "sc://127.0.0.1:15002/;use_ssl=true"])
def test_an_old_grpcio_is_refused_where_a_native_channel_is_made(native, url):
    # patches/0004: upstream's minimum-version check runs where it matters, not at import.
    out = run_python(
        native,
        f"""
import grpc
grpc.__version__ = "1.20.0"
from pyspark.errors import PySparkImportError
from pyspark.sql.connect.client import DefaultChannelBuilder
try:
    DefaultChannelBuilder({url!r}).toChannel()
    print("built")
except PySparkImportError as error:
    print(error.getCondition(), error.getMessageParameters()["minimum_version"])
""",
    ).stdout.split()
    assert out == ["UNSUPPORTED_PACKAGE_VERSION", "1.48.1"]
