"""The documented fallback of deploy/envoy.prod.yaml: a presence-only bearer gate (Lua)."""

import pytest
from conftest import PROD_PORTS, preflight, upstream_requests
from grpcweb import call, spark_version_request


@pytest.mark.parametrize("value", [None, "Basic dXNlcjpwYXNz", "Bearer"])
def test_requests_without_a_bearer_token_get_401(prod_envoy_lua_gate, value):
    headers = {"authorization": value} if value else {}
    reply = call(
        PROD_PORTS["grpc_web"],
        "AnalyzePlan",
        spark_version_request(),
        headers=headers,
        tls_ca=prod_envoy_lua_gate,
    )
    assert reply.http_status == 401
    assert reply.grpc_status == 16
    # The reason reaches the client as grpc-message (the mapper of jwt_authn's replies
    # must not replace the gate's own).
    assert reply.grpc_message == "missing bearer token"


def test_any_bearer_token_passes(prod_envoy_lua_gate):
    # Presence only: this is why the JWT configuration is the recommended one.
    reply = call(
        PROD_PORTS["grpc_web"],
        "AnalyzePlan",
        spark_version_request(),
        headers={"authorization": "Bearer anything"},
        tls_ca=prod_envoy_lua_gate,
    )
    assert reply.grpc_status == 0, reply.grpc_message


@pytest.mark.parametrize("origin", [None, "https://evil.example.com"])
def test_options_without_a_token_never_reach_spark(prod_envoy_lua_gate, origin):
    # The gate used to wave every OPTIONS through, and one without an Origin reached Spark.
    before = upstream_requests()
    status, headers = preflight(prod_envoy_lua_gate, origin)
    assert status in (200, 401, 403) and "access-control-allow-origin" not in headers
    assert upstream_requests() == before
