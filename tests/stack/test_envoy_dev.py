"""The dev stack (`./build.sh up`): grpc-web through Envoy to Spark, CORS, static host."""

import http.client
import subprocess

import pyspark.sql.connect.proto as pb2
import pytest
from conftest import ENVOY, server_version_pinned
from grpcweb import call, range_request, spark_version_request
from helpers import DIST, ROOT

pytestmark = pytest.mark.usefixtures("stack")


def test_dev_config_validates():
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", "deploy/envoy.dev.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "OK" in result.stdout + result.stderr


def test_analyze_plan_returns_the_server_version():
    reply = call(8081, "AnalyzePlan", spark_version_request())
    assert reply.http_status == 200
    assert reply.headers["content-type"].startswith("application/grpc-web")
    assert reply.grpc_status == 0, reply.grpc_message
    [payload] = reply.messages
    assert (
        pb2.AnalyzePlanResponse.FromString(payload).spark_version.version == server_version_pinned()
    )


def test_execute_plan_streams_batches_and_ends_with_ok_trailer():
    rows = 100_000
    reply = call(8081, "ExecutePlan", range_request(rows))
    assert reply.http_status == 200
    assert reply.grpc_status == 0, reply.grpc_message
    assert "grpc-status" in reply.trailers, "the status must come in the 0x80 trailer frame"
    responses = [pb2.ExecutePlanResponse.FromString(m) for m in reply.messages]
    batches = [r.arrow_batch for r in responses if r.HasField("arrow_batch")]
    assert batches and sum(b.row_count for b in batches) == rows
    assert all(b.data[:4] == b"\xff\xff\xff\xff" for b in batches), "Arrow IPC stream framing"


def test_errors_carry_status_details():
    request = range_request(1)
    request.plan.root.ClearField("range")
    request.plan.root.sql.query = "SELECT * FROM no_such_table_anywhere"
    reply = call(8081, "ExecutePlan", request)
    assert reply.grpc_status not in (None, 0)
    assert "TABLE_OR_VIEW_NOT_FOUND" in reply.grpc_message
    details = reply.trailers.get("grpc-status-details-bin") or reply.headers.get(
        "grpc-status-details-bin"
    )
    assert details, "rich error details must reach the client"


def preflight(port, origin):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(
        "OPTIONS",
        "/spark.connect.SparkConnectService/ExecutePlan",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-grpc-web,authorization",
        },
    )
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}


def test_cors_preflight_allows_local_pages():
    status, headers = preflight(8081, "http://127.0.0.1:8000")
    assert status == 200
    assert headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
    assert "POST" in headers["access-control-allow-methods"]
    allowed = {h.strip() for h in headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-grpc-web", "authorization"} <= allowed
    exposed = {h.strip() for h in headers["access-control-expose-headers"].split(",")}
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed


def test_cors_preflight_refuses_other_origins():
    _, headers = preflight(8081, "http://pages.example.org")
    assert "access-control-allow-origin" not in headers


def get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/pyodide.asm.wasm", "application/wasm"),
        ("/pyodide-lock.json", "application/json"),
        ("/pyodide.mjs", "text/javascript"),
    ],
)
def test_static_host_serves_dist_with_isolation_headers(path, content_type):
    status, headers, body = get(8000, path)
    assert status == 200
    assert headers["content-type"] == content_type
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    assert headers["cross-origin-resource-policy"] == "cross-origin"
    assert body == (DIST / path.lstrip("/")).read_bytes()


def test_static_host_404_keeps_headers():
    status, headers, _ = get(8000, "/no-such-file.txt")
    assert status == 404
    assert headers["cross-origin-embedder-policy"] == "require-corp"


# DNS rebinding: a page on rebind.attacker.example points its own name at 127.0.0.1, and the
# browser then lets it read the answers, since the origin is its own. Its requests carry its
# Host header: the dev stack (an unauthenticated Spark that runs Python UDFs) must refuse it.
FOREIGN_HOSTS = [
    "rebind.attacker.example:8081",
    "rebind.attacker.example",
    "127.0.0.1.attacker.example:8081",
]


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_grpc_web_refuses_foreign_host_headers(host):
    reply = call(8081, "AnalyzePlan", spark_version_request(), headers={"Host": host})
    # No virtual host matches: Envoy answers itself; nothing reached Spark.
    assert reply.http_status == 404
    assert "grpc-status" not in reply.headers and not reply.messages


@pytest.mark.parametrize("host", ["127.0.0.1:8081", "localhost:8081"])
def test_grpc_web_answers_loopback_host_headers(host):
    reply = call(8081, "AnalyzePlan", spark_version_request(), headers={"Host": host})
    assert reply.http_status == 200 and reply.grpc_status == 0, reply.grpc_message


@pytest.mark.parametrize(
    "host, status",
    [("rebind.attacker.example:8000", 403), ("127.0.0.1:8000", 200), ("localhost:8000", 200)],
)
def test_static_host_answers_loopback_host_headers_only(host, status):
    connection = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
    try:
        connection.request("GET", "/pyodide-lock.json", headers={"Host": host})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == status
    assert (b'"packages"' in body) == (status == 200)
