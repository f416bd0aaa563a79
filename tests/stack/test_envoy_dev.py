"""The dev stack (`./build.sh up`): grpc-web through Envoy to Spark, CORS, static host."""

import http.client
import subprocess

import pytest

import pyspark.sql.connect.proto as pb2

from conftest import ENVOY, server_version_pinned
from grpcweb import call, range_request, spark_version_request
from helpers import DIST, ROOT

pytestmark = pytest.mark.usefixtures("stack")


def test_dev_config_validates():
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", "deploy/envoy.dev.yaml"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "OK" in result.stdout + result.stderr


def test_analyze_plan_returns_the_server_version():
    reply = call(8081, "AnalyzePlan", spark_version_request())
    assert reply.http_status == 200
    assert reply.headers["content-type"].startswith("application/grpc-web")
    assert reply.grpc_status == 0, reply.grpc_message
    [payload] = reply.messages
    assert pb2.AnalyzePlanResponse.FromString(payload).spark_version.version == server_version_pinned()


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
    details = reply.trailers.get("grpc-status-details-bin") or reply.headers.get("grpc-status-details-bin")
    assert details, "rich error details must reach the client"


def preflight(port, origin):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(
        "OPTIONS", "/spark.connect.SparkConnectService/ExecutePlan",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-grpc-web,authorization"},
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


@pytest.mark.parametrize("path, content_type", [
    ("/pyodide.asm.wasm", "application/wasm"),
    ("/pyodide-lock.json", "application/json"),
    ("/pyodide.mjs", "text/javascript"),
])
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
