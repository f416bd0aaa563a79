"""The prod config's local-reply mapping only rewrites auth refusals: an unreachable
Spark still reports UNAVAILABLE (14), which upstream's retry policy retries."""

import pytest
from conftest import PROD_PORTS, render_prod_config, run_envoy, stop_envoy
from grpcweb import USER_ID, call, spark_version_request


@pytest.fixture(scope="module")
def prod_envoy_without_spark(prod_etc, tmp_path_factory):
    etc, ca = prod_etc
    config = tmp_path_factory.mktemp("prod-down") / "envoy.prod.yaml"
    # Port 1 on loopback: nothing listens there.
    config.write_text(render_prod_config(etc, upstream=("127.0.0.1", 1)))
    process = run_envoy(config, config.with_suffix(".log"))
    yield ca
    stop_envoy(process)


def test_unreachable_spark_is_unavailable_not_unauthenticated(prod_envoy_without_spark, tokens):
    reply = call(
        PROD_PORTS["grpc_web"],
        "AnalyzePlan",
        spark_version_request(),
        headers={"authorization": f"Bearer {tokens.token(subject=USER_ID)}"},
        tls_ca=prod_envoy_without_spark,
    )
    assert reply.http_status == 503
    assert reply.grpc_status == 14
    assert "upstream connect error" in reply.grpc_message
