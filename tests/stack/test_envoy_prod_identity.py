"""deploy/envoy.prod.yaml binds each request's user_context.user_id to the token's subject:
Spark keys sessions by (user_id, session_id) and believes whatever user_id it is sent, so
without the check any token holder could act as any user. Checked raw for every method of
SparkConnectService, and through pyspark-web on CPython (https URL, token, user_id)."""

import subprocess
import uuid

import pyspark.sql.connect.proto as pb2
import pytest
import yaml
from conftest import PROD_PORTS, stack_venv, upstream_requests
from grpcweb import call
from helpers import ROOT

GRPC_WEB = PROD_PORTS["grpc_web"]
SERVICE = pb2.base_pb2.DESCRIPTOR.services_by_name["SparkConnectService"]
REFUSAL = "user_context.user_id must be the token's subject (sub)"


def extractions():
    config = yaml.safe_load((ROOT / "deploy/envoy.prod.yaml").read_text())
    [listener] = [x for x in config["static_resources"]["listeners"] if x["name"] == "grpc_web"]
    [extraction] = [
        f["typed_config"]
        for f in listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_field_extraction"
    ]
    return extraction["extractions_by_method"]


def test_every_method_of_the_servers_protos_is_extracted():
    """A Spark upgrade that adds an RPC must add it to the config (until then Envoy
    refuses it, failing closed): the list is the server's, from the stack venv's pyspark."""
    methods = subprocess.run(
        [
            str(stack_venv() / "bin/python"),
            str(ROOT / "tools/spark_connect_protos.py"),
            "--methods",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(methods) >= 12 and "spark.connect.SparkConnectService.ExecutePlan" in methods
    configured = extractions()
    # AddArtifacts is left out on purpose: the extraction corrupts its multi-message bodies
    # (test_a_large_create_dataframe_uploads_through_the_prod_config).
    assert sorted(configured) == sorted(set(methods) - {UNCHECKED})
    assert all(
        v == {"request_field_extractions": {"user_context.user_id": {}}}
        for v in configured.values()
    )


def request_of(method, user_id):
    """The method's request message with a fresh session id and, unless user_id is None,
    a user_context: enough for the proxy, which reads only user_context.user_id."""
    message = getattr(pb2, method.input_type.name)(session_id=str(uuid.uuid4()))
    if user_id is not None:
        message.user_context.user_id = user_id
    return message


def raw(ca, method, message, token):
    return call(
        GRPC_WEB,
        method.name,
        message,
        headers={"authorization": f"Bearer {token}"},
        tls_ca=ca,
    )


METHODS = [method.name for method in SERVICE.methods]
UNCHECKED = "spark.connect.SparkConnectService.AddArtifacts"
CHECKED = [name for name in METHODS if f"spark.connect.SparkConnectService.{name}" != UNCHECKED]


@pytest.mark.parametrize("name", METHODS)
def test_a_matching_user_id_reaches_spark(prod_envoy, tokens, name):
    method = SERVICE.methods_by_name[name]
    before = upstream_requests()
    reply = raw(prod_envoy, method, request_of(method, "alice"), tokens.token(subject="alice"))
    # Spark's own answer: these minimal requests may well be errors, but not the proxy's.
    assert REFUSAL not in reply.grpc_message
    assert reply.grpc_status not in (7, 14, 16), (reply.grpc_status, reply.grpc_message)
    assert upstream_requests() == before + 1


@pytest.mark.parametrize("user_id", ["mallory", "", None, "alice ", "ALICE"])
@pytest.mark.parametrize("name", CHECKED)
def test_another_user_id_is_permission_denied(prod_envoy, tokens, name, user_id):
    method = SERVICE.methods_by_name[name]
    before = upstream_requests()
    reply = raw(prod_envoy, method, request_of(method, user_id), tokens.token(subject="alice"))
    assert reply.grpc_status == 7, (reply.http_status, reply.grpc_status, reply.grpc_message)
    assert REFUSAL in reply.grpc_message
    # Neither value is echoed back.
    assert "mallory" not in reply.grpc_message and "alice" not in reply.grpc_message
    assert not reply.messages
    assert upstream_requests() == before


def test_a_token_without_a_subject_is_permission_denied(prod_envoy, tokens):
    method = SERVICE.methods_by_name["AnalyzePlan"]
    before = upstream_requests()
    reply = raw(prod_envoy, method, request_of(method, ""), tokens.token(subject=None))
    assert reply.grpc_status == 7 and REFUSAL in reply.grpc_message
    assert upstream_requests() == before


def test_the_refusal_is_readable_from_the_allowed_origin(prod_envoy, tokens):
    from conftest import ALLOWED_ORIGIN

    method = SERVICE.methods_by_name["AnalyzePlan"]
    reply = call(
        GRPC_WEB,
        method.name,
        request_of(method, "mallory"),
        headers={
            "authorization": f"Bearer {tokens.token(subject='alice')}",
            "origin": ALLOWED_ORIGIN,
        },
        tls_ca=prod_envoy,
    )
    assert reply.grpc_status == 7
    assert reply.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = {h.strip().lower() for h in reply.headers["access-control-expose-headers"].split(",")}
    assert {"grpc-status", "grpc-message"} <= exposed


# ---------------------------------------------------------------- through pyspark-web


def session(ca, token, user_id=None):
    """A Spark Connect session through pyspark-web's grpc-web channel on CPython."""
    from pyspark.sql.connect.session import SparkSession

    from pyspark_web import GrpcWebChannelBuilder

    url = f"sc://127.0.0.1:{GRPC_WEB}/;use_ssl=true;token={token}"
    if user_id is not None:
        url += f";user_id={user_id}"
    return SparkSession.builder.channelBuilder(
        GrpcWebChannelBuilder(url, ca_certs=str(ca))
    ).create()


def test_pyspark_web_with_its_subject_as_user_id_works(prod_envoy, tokens, tmp_path):
    from pyspark.errors import AnalysisException

    spark = session(prod_envoy, tokens.token(subject="alice"), "alice")
    try:
        assert [r.id for r in spark.range(3).collect()] == [0, 1, 2]  # ExecutePlan, ReleaseExecute
        assert spark.version == "4.3.0"  # AnalyzePlan
        spark.conf.set("spark.sql.shuffle.partitions", "3")  # Config
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        module = tmp_path / "identity_probe.py"
        module.write_text("VALUE = 1\n")
        spark.addArtifacts(str(module), pyfile=True)  # AddArtifacts
        with pytest.raises(AnalysisException):
            spark.sql("SELECT * FROM no_such_table").collect()  # and FetchErrorDetails
        spark.interruptAll()  # Interrupt
    finally:
        spark.stop()  # ReleaseSession


@pytest.mark.parametrize("user_id", ["mallory", None], ids=["another", "none"])
def test_pyspark_web_with_another_user_id_gets_permission_denied(
    prod_envoy, tokens, monkeypatch, user_id
):
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    # Without user_id upstream falls back to $SPARK_USER, then $USER: unset, it sends no
    # user_context at all.
    monkeypatch.delenv("SPARK_USER", raising=False)
    monkeypatch.delenv("USER", raising=False)
    before = upstream_requests()
    spark = session(prod_envoy, tokens.token(subject="alice"), user_id)
    try:
        with pytest.raises(SparkConnectGrpcException) as info:
            spark.range(1).collect()
    finally:
        spark.stop()
    assert info.value.getGrpcStatusCode().name == "PERMISSION_DENIED"
    assert REFUSAL in str(info.value)
    assert upstream_requests() == before


def test_add_artifacts_is_let_through_on_the_token_alone(prod_envoy, tokens):
    """The documented exception (deploy/README.md, "Identity"): AddArtifacts is not bound
    to the token's subject, only to a valid token."""
    method = SERVICE.methods_by_name["AddArtifacts"]
    before = upstream_requests()
    reply = raw(prod_envoy, method, request_of(method, "mallory"), tokens.token(subject="alice"))
    assert REFUSAL not in reply.grpc_message
    assert upstream_requests() == before + 1


def test_a_large_create_dataframe_uploads_through_the_prod_config(prod_envoy, tokens):
    """100,000 rows go up as a cached local relation in many AddArtifacts messages of one
    call: they must reach Spark intact."""
    spark = session(prod_envoy, tokens.token(subject="alice"), "alice")
    try:
        df = spark.createDataFrame([(i, f"row {i}") for i in range(100_000)], "id long, s string")
        total, count = df.selectExpr("sum(id)", "count(DISTINCT s)").collect()[0]
    finally:
        spark.stop()
    assert (total, count) == (sum(range(100_000)), 100_000)
