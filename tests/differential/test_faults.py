"""Faults on CPython against the real stack, through pyspark-web (build/venv-web):
Envoy restarted mid-stream, an unreachable endpoint, a failure in the middle of a result."""

import json
import subprocess
import time

import pytest

from helpers import ROOT, ensure_venv, restart_envoy

PINS = ROOT / "tests/requirements-native.txt"
pytestmark = pytest.mark.usefixtures("stack")

# 48 single-row partitions that each take 0.25 s on the server's two cores: about 6 s of
# results trickling out, so that Envoy can be restarted while the stream is open.
SLOW_QUERY = """
import json, sys
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
spark = SparkSession.builder.remote("http://127.0.0.1:8081").getOrCreate()
stub = spark.client._stub
calls = {"ReattachExecute": 0}
original = stub.ReattachExecute
def counting(*args, **kwargs):
    calls["ReattachExecute"] += 1
    return original(*args, **kwargs)
stub.ReattachExecute = counting
print("started", flush=True)
df = spark.range(0, 48, 1, 48).select(
    "id", F.expr("java_method('java.lang.Thread', 'sleep', CAST(250 AS BIGINT))").alias("slept"))
rows = [r.id for r in df.collect()]
print(json.dumps({"ids": rows, **calls}))
"""


@pytest.fixture(scope="module")
def web(wheel):
    return ensure_venv("venv-web", [f"{wheel}[pandas]"], PINS, reinstall=[wheel])


def test_envoy_restart_mid_stream_is_survived_by_reattach(web):
    client = subprocess.Popen([str(web), "-c", SLOW_QUERY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "started"
        time.sleep(2.5)  # the stream is open and partitions are arriving
        restart_envoy()
        out, err = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ids"] == list(range(48))
    assert result["ReattachExecute"] >= 1, "the stream was not cut: the restart came too late"


def test_unreachable_endpoint_is_retried_then_reported(web):
    script = """
import socket, time
from pyspark.sql.connect.client import SparkConnectClient
from pyspark.sql.connect.client.retries import DefaultPolicy
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()

class CountingPolicy(DefaultPolicy):
    checks = 0
    def can_retry(self, error):
        CountingPolicy.checks += 1
        return super().can_retry(error)

client = SparkConnectClient(f"http://127.0.0.1:{port}")
client.set_retry_policies([CountingPolicy(max_retries=3, initial_backoff=10, max_backoff=40)])
began = time.monotonic()
try:
    client.get_configs("spark.sql.session.timeZone")
except Exception as error:
    print(type(error).__name__, "|", error.getGrpcStatusCode(), "|", CountingPolicy.checks, "|",
          round(time.monotonic() - began, 1), "|", str(error).splitlines()[0][:300])
"""
    result = subprocess.run([str(web), "-c", script], capture_output=True, text=True, timeout=120)
    kind, code, checks, seconds, message = [part.strip() for part in result.stdout.split("|")]
    assert kind == "RetriesExceeded" or "Exception" in kind, result.stdout + result.stderr
    assert int(checks) >= 4, "upstream's retry policy did not run"
    assert float(seconds) < 30


def test_unavailable_error_from_channel_reaches_user_with_url(web):
    script = """
from pyspark.sql import SparkSession
from pyspark.sql.connect.client.retries import DefaultPolicy
import socket
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
from pyspark.sql.connect.client import SparkConnectClient
client = SparkConnectClient(f"http://127.0.0.1:{port}")
client.set_retry_policies([DefaultPolicy(max_retries=1, initial_backoff=10, max_backoff=20)])
try:
    client.get_configs("spark.sql.session.timeZone")
except Exception as error:
    cause = error.__cause__ or error.__context__
    print(repr(cause)[:400] if cause else repr(error)[:400])
"""
    result = subprocess.run([str(web), "-c", script], capture_output=True, text=True, timeout=120)
    assert "UNAVAILABLE" in result.stdout and "cannot connect" in result.stdout, result.stdout + result.stderr
