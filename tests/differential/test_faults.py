"""Faults on CPython against the real stack, through pyspark-web (build/venv-web):
Envoy restarted mid-stream, Spark Connect restarted under a live session, an unreachable
endpoint, a failure in the middle of a result."""

import json
import socket
import subprocess
import threading
import time

import pytest
from helpers import ROOT, STOCK_CLIENT, ensure_venv, restart_envoy, restart_part

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
    client = subprocess.Popen(
        [str(web), "-c", SLOW_QUERY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
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


LIVE_SESSION = """
import json, sys, time
from pyspark.sql import SparkSession
url = sys.argv[1]
spark = SparkSession.builder.remote(url).getOrCreate()
assert spark.range(3).count() == 3
print("ready", flush=True)
sys.stdin.readline()  # Spark Connect is restarted meanwhile
began = time.monotonic()
try:
    spark.range(3).count()
    outcome = {"error": None}
except Exception as error:
    outcome = {"error": type(error).__name__, "message": str(error),
               "context": str(getattr(error.__context__, "details", lambda: "")())}
outcome["seconds"] = time.monotonic() - began
spark.stop()
outcome["fresh"] = SparkSession.builder.remote(url).getOrCreate().range(5).count()
print(json.dumps(outcome))
"""


def test_a_spark_restart_under_a_live_session_fails_as_with_the_stock_client(web, tmp_path):
    """Both clients hold a session; Spark Connect restarts; each one's next call fails the
    same way (upstream turns INVALID_HANDLE.SESSION_CHANGED into NO_ACTIVE_SESSION, with
    the server's reason as the context), at once, and a new session works."""
    stock = ensure_venv("venv-stock", [STOCK_CLIENT], PINS)
    urls = {"stock": (stock, "sc://127.0.0.1:15002"), "web": (web, "http://127.0.0.1:8081")}
    # A file, not python -c: the stock client takes -c for a doctest run (patches/0001).
    script = tmp_path / "live_session.py"
    script.write_text(LIVE_SESSION)
    clients = {
        name: subprocess.Popen(
            [str(python), str(script), url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (python, url) in urls.items()
    }
    outcomes = {}
    try:
        for client in clients.values():
            assert client.stdout.readline().strip() == "ready", client.stderr.read()[-3000:]
        restart_part("spark")
        for name, client in clients.items():
            out, err = client.communicate("go\n", timeout=300)
            assert client.returncode == 0, err[-3000:]
            outcomes[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        for client in clients.values():
            if client.poll() is None:
                client.kill()
    web_outcome, stock_outcome = outcomes["web"], outcomes["stock"]
    assert web_outcome["error"] == stock_outcome["error"] == "SparkConnectException"
    assert web_outcome["message"] == stock_outcome["message"]
    assert "Please create a new Spark session" in web_outcome["message"]
    assert "INVALID_HANDLE.SESSION_CHANGED" in web_outcome["context"], web_outcome
    assert "restarted" in web_outcome["context"], web_outcome
    assert web_outcome["seconds"] < 30, web_outcome  # refused by the new server, not retried
    assert web_outcome["fresh"] == stock_outcome["fresh"] == 5


COUNTING_POLICY = """
import json, socket, sys, time
from pyspark.sql.connect.client import SparkConnectClient
from pyspark.sql.connect.client.retries import DefaultPolicy

class CountingPolicy(DefaultPolicy):
    retries = 0
    def can_retry(self, error):
        retry = super().can_retry(error)
        CountingPolicy.retries += retry
        return retry
"""


def test_a_first_contact_that_cannot_connect_is_reported_at_once(web):
    """Upstream's default policy would retry this for about 20 minutes; pyspark-web gives
    up on a server that has never answered (README: "First contact")."""
    script = (
        COUNTING_POLICY
        + """
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
client = SparkConnectClient(f"http://127.0.0.1:{port}")
client.set_retry_policies([CountingPolicy()])  # upstream's defaults
began = time.monotonic()
try:
    client.get_configs("spark.sql.session.timeZone")
except Exception as error:
    print(json.dumps({"kind": type(error).__name__, "code": str(error.getGrpcStatusCode()),
                      "retries": CountingPolicy.retries, "seconds": time.monotonic() - began,
                      "message": str(error), "port": port}))
"""
    )
    result = subprocess.run([str(web), "-c", script], capture_output=True, text=True, timeout=120)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["kind"] == "ServerUnreachableError", result.stdout + result.stderr
    assert outcome["code"] == "StatusCode.UNAVAILABLE"
    assert outcome["retries"] == 0
    assert outcome["seconds"] < 10
    assert f"http://127.0.0.1:{outcome['port']}" in outcome["message"]
    assert "cannot connect" in outcome["message"] and "Connection refused" in outcome["message"]


def test_after_contact_an_unreachable_endpoint_is_retried_until_it_is_back(web):
    script = (
        COUNTING_POLICY
        + """
client = SparkConnectClient("http://127.0.0.1:8081")
client.set_retry_policies([CountingPolicy(max_retries=12, initial_backoff=200, max_backoff=2000)])
before = client.get_configs("spark.sql.session.timeZone")
print("contacted", flush=True)
sys.stdin.readline()  # Envoy is down now
began = time.monotonic()
after = client.get_configs("spark.sql.session.timeZone")
print(json.dumps({"same": before == after, "retries": CountingPolicy.retries, \
"seconds": time.monotonic() - began}))
"""
    )
    client = subprocess.Popen(
        [str(web), "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    restarter = None
    try:
        assert client.stdout.readline().strip() == "contacted", client.stderr.read()[-3000:]
        restarter = threading.Thread(target=restart_envoy, kwargs={"down_seconds": 3})
        restarter.start()
        deadline = time.monotonic() + 20
        while envoy_answers() and time.monotonic() < deadline:
            time.sleep(0.05)
        client.stdin.write("go\n")
        client.stdin.flush()
        out, err = client.communicate(timeout=120)
    finally:
        if restarter is not None:
            restarter.join()
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err[-3000:]
    outcome = json.loads(out.strip().splitlines()[-1])
    assert outcome["same"]
    assert outcome["retries"] >= 2, "the call did not meet the outage"
    assert outcome["seconds"] >= 2


def envoy_answers():
    try:
        socket.create_connection(("127.0.0.1", 8081), timeout=1).close()
        return True
    except OSError:
        return False


def test_unavailable_error_after_contact_reaches_user_with_url(web):
    script = (
        COUNTING_POLICY
        + """
client = SparkConnectClient("http://127.0.0.1:8081")
client.get_configs("spark.sql.session.timeZone")  # contact
# The same session, its server gone: a refused port.
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
client._channel.base_url = f"http://127.0.0.1:{port}"
client.set_retry_policies([CountingPolicy(max_retries=1, initial_backoff=10, max_backoff=20)])
try:
    client.get_configs("spark.sql.session.timeZone")
except Exception as error:
    cause = error.__cause__ or error.__context__
    print(json.dumps({"retries": CountingPolicy.retries, \
"error": repr(cause)[:400] if cause else repr(error)[:400]}))
"""
    )
    result = subprocess.run([str(web), "-c", script], capture_output=True, text=True, timeout=120)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["retries"] >= 1, result.stdout + result.stderr
    assert "UNAVAILABLE" in outcome["error"] and "cannot connect" in outcome["error"]
