"""The documented fallback of deploy/envoy.prod.yaml: a presence-only bearer gate (Lua)."""

import pytest

from conftest import PROD_PORTS
from grpcweb import call, spark_version_request


@pytest.mark.parametrize("value", [None, "Basic dXNlcjpwYXNz", "Bearer"])
def test_requests_without_a_bearer_token_get_401(prod_envoy_lua_gate, value):
    headers = {"authorization": value} if value else {}
    reply = call(PROD_PORTS["grpc_web"], "AnalyzePlan", spark_version_request(), headers=headers,
                 tls_ca=prod_envoy_lua_gate)
    assert reply.http_status == 401
    assert reply.grpc_status == 16


def test_any_bearer_token_passes(prod_envoy_lua_gate):
    # Presence only: this is why the JWT configuration is the recommended one.
    reply = call(PROD_PORTS["grpc_web"], "AnalyzePlan", spark_version_request(),
                 headers={"authorization": "Bearer anything"}, tls_ca=prod_envoy_lua_gate)
    assert reply.grpc_status == 0, reply.grpc_message
