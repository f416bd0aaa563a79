"""deploy/envoy.prod.yaml, run against a generated certificate, keys and JWKS."""

import http.client
import ssl
import subprocess

import pytest

import pyspark.sql.connect.proto as pb2

from conftest import ALLOWED_ORIGIN, ENVOY, PROD_PORTS, preflight, render_prod_config, server_version_pinned, upstream_requests
from grpcweb import call, spark_version_request

GRPC_WEB = PROD_PORTS["grpc_web"]


@pytest.mark.parametrize("lua_gate", [False, True], ids=["jwt", "lua-gate"])
def test_prod_config_validates(prod_etc, tmp_path, lua_gate):
    etc, _ = prod_etc
    config = tmp_path / "envoy.prod.yaml"
    config.write_text(render_prod_config(etc, lua_gate=lua_gate))
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_valid_token_gets_through(prod_envoy, tokens):
    reply = call(GRPC_WEB, "AnalyzePlan", spark_version_request(),
                 headers={"authorization": f"Bearer {tokens.token()}"}, tls_ca=prod_envoy)
    assert reply.grpc_status == 0, reply.grpc_message
    [payload] = reply.messages
    assert pb2.AnalyzePlanResponse.FromString(payload).spark_version.version == server_version_pinned()


BAD_TOKENS = {
    "missing": lambda t: None,
    "malformed": lambda t: "Bearer not-a.jwt",
    "expired": lambda t: f"Bearer {t.token(expires_in=-3600)}",
    "wrong-audience": lambda t: f"Bearer {t.token(audience='some-other-service')}",
    "wrong-issuer": lambda t: f"Bearer {t.token(issuer='https://elsewhere.example.com/')}",
    "wrongly-signed": lambda t: f"Bearer {t.token(key=t.other_key)}",
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_tokens_get_401_unauthenticated(prod_envoy, tokens, case):
    value = BAD_TOKENS[case](tokens)
    headers = {"authorization": value} if value else {}
    reply = call(GRPC_WEB, "AnalyzePlan", spark_version_request(), headers=headers, tls_ca=prod_envoy)
    assert reply.http_status == 401
    assert reply.grpc_status == 16
    assert not reply.messages


def test_preflight_passes_without_a_token_for_allowed_origin(prod_envoy):
    status, headers = preflight(prod_envoy, ALLOWED_ORIGIN)
    assert status == 200
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://notebooks.example.com.evil.net",
                                    "http://notebooks.example.com", "http://127.0.0.1:8000"])
def test_origin_outside_allowlist_gets_no_allow_header(prod_envoy, origin):
    _, headers = preflight(prod_envoy, origin)
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://127.0.0.1:8000", None])
def test_preflights_from_other_origins_never_reach_spark(prod_envoy, origin):
    # Preflights skip the JWT check; the CORS filter must answer them, not forward them.
    before = upstream_requests()
    status, headers = preflight(prod_envoy, origin)
    assert "access-control-allow-origin" not in headers
    # Answered by Envoy (CORS for a preflight, 401 without a token otherwise), not by Spark.
    assert status in (200, 401, 403) and upstream_requests() == before


def test_static_host_over_tls(prod_envoy):
    context = ssl.create_default_context(cafile=str(prod_envoy))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    connection = http.client.HTTPSConnection("127.0.0.1", PROD_PORTS["static"], context=context, timeout=10)
    connection.request("GET", "/pyodide.asm.wasm")
    response = connection.getresponse()
    response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    connection.close()
    assert response.status == 200
    assert headers["content-type"] == "application/wasm"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    assert headers["strict-transport-security"].startswith("max-age=")


def test_spark_port_is_not_routed(prod_envoy, tokens):
    """Only the Spark Connect service path is routed, even with a valid token."""
    context = ssl.create_default_context(cafile=str(prod_envoy))
    connection = http.client.HTTPSConnection("127.0.0.1", GRPC_WEB, context=context, timeout=10)
    connection.request("POST", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", body=b"",
                       headers={"authorization": f"Bearer {tokens.token()}",
                                "content-type": "application/grpc-web+proto"})
    response = connection.getresponse()
    response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    connection.close()
    assert response.status == 404 or headers.get("grpc-status") == "12"
