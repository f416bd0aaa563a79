"""A slow upstream behind the production config: its timeouts apply.

The grpc-web listener's stream idle timeout cuts an upstream that accepts and then says
nothing, with a gRPC error instead of a hang; a long query is not cut, because Spark's
progress reports (every 2 s while a job runs) are traffic on its stream. The shipped value
(600 s) is too long for a test, so the config is rendered here with the same setting at
3 s: this checks that the setting governs both cases. test_envoy_prod.py checks the value.
"""

import socket
import threading
import time

import pytest
from conftest import PROD_PORTS, render_prod_config, run_envoy, stop_envoy
from grpcweb import USER_ID, call, spark_version_request

IDLE_SECONDS = 3
SHIPPED = "stream_idle_timeout: 600s"


class SilentUpstream:
    """A TCP server on loopback that accepts connections, reads, and never answers."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    @staticmethod
    def _drain(connection):
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass

    def close(self):
        self.server.close()
        for connection in self.connections:
            connection.close()


def quick_idle_config(etc, **options):
    text = render_prod_config(etc, **options)
    assert SHIPPED in text, f"the rendered prod config no longer has {SHIPPED!r}"
    return text.replace(SHIPPED, f"stream_idle_timeout: {IDLE_SECONDS}s")


@pytest.fixture
def envoy_before(prod_etc, tmp_path):
    """An Envoy with the prod config (idle timeout shortened) in front of an upstream."""
    processes = []

    def start(upstream):
        etc, ca = prod_etc
        config = tmp_path / "envoy.prod.yaml"
        config.write_text(quick_idle_config(etc, upstream=upstream))
        processes.append(run_envoy(config, config.with_suffix(".log")))
        return ca

    yield start
    for process in processes:
        stop_envoy(process)


def test_an_upstream_that_never_answers_is_cut_at_the_idle_timeout(envoy_before, tokens):
    upstream = SilentUpstream()
    try:
        ca = envoy_before(("127.0.0.1", upstream.port))
        began = time.monotonic()
        reply = call(
            PROD_PORTS["grpc_web"],
            "AnalyzePlan",
            spark_version_request(),
            headers={"authorization": f"Bearer {tokens.token(subject=USER_ID)}"},
            tls_ca=ca,
        )
        seconds = time.monotonic() - began
    finally:
        upstream.close()
    assert upstream.connections, "Envoy never reached the silent upstream"
    assert reply.grpc_status not in (None, 0), reply
    assert "timeout" in reply.grpc_message.lower(), reply
    assert IDLE_SECONDS <= seconds < IDLE_SECONDS + 10, seconds


def test_a_long_query_is_not_cut_by_the_idle_timeout(stack, envoy_before, tokens):
    from pyspark.sql import functions as F
    from pyspark.sql.connect.session import SparkSession

    from pyspark_web.builder import GrpcWebChannelBuilder

    ca = envoy_before(("127.0.0.1", 15002))
    token = tokens.token(subject=USER_ID)
    url = f"https://127.0.0.1:{PROD_PORTS['grpc_web']}/;token={token};user_id={USER_ID}"
    spark = SparkSession.builder.channelBuilder(
        GrpcWebChannelBuilder(url, ca_certs=str(ca))
    ).create()
    try:
        # 8 partitions of 1.5 s each on the server's 2 cores: about 6 s, twice the idle
        # timeout, with no result until the end (one aggregate row).
        slow = spark.range(0, 8, 1, 8).select(
            F.expr("java_method('java.lang.Thread', 'sleep', CAST(1500 + id * 0 AS BIGINT))").alias(
                "s"
            )
        )
        began = time.monotonic()
        # count(s) needs s, and s depends on id: the sleeps are neither pruned nor folded
        # into one at planning.
        rows, _ = slow.agg(F.count("*"), F.count("s")).collect()[0]
        assert rows == 8
        assert time.monotonic() - began > 2 * IDLE_SECONDS
    finally:
        spark.stop()
