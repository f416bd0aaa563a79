"""The stack under test: `./build.sh up` (dev), and a production Envoy made from
deploy/envoy.prod.yaml with a certificate, keys, a JWKS and the Spark Connect descriptor
set generated here (tests/prod_envoy.py, with tools/prod_keys.py).
"""

import http.client
import ssl

import pytest
from helpers import ROOT, stack_venv
from prod_envoy import (
    ALLOWED_ORIGIN,
    ENVOY,
    PORTS,
    make_etc,
    prod_keys,
    render,
    run_envoy,
    stop_envoy,
    upstream_requests,
)

PROD_PORTS = PORTS
# What the test modules import from here.
__all__ = [
    "ALLOWED_ORIGIN",
    "ENVOY",
    "PROD_PORTS",
    "preflight",
    "render_prod_config",
    "run_envoy",
    "server_version_pinned",
    "stack_venv",
    "stop_envoy",
    "upstream_requests",
]


def server_version_pinned():
    """The Spark version the stack installs (deploy/requirements.txt), to compare with."""
    for line in (ROOT / "deploy/requirements.txt").read_text().splitlines():
        if line.startswith(("pyspark==", "pyspark[")):
            return line.split("==")[1]
    raise AssertionError("deploy/requirements.txt pins no pyspark")


def render_prod_config(etc, lua_gate=False, **options):
    """deploy/envoy.prod.yaml on the test ports, its paths pointing at etc, in front of the
    dev stack's Spark, allowing ALLOWED_ORIGIN."""
    return render(etc, lua_gate=lua_gate, **options)


@pytest.fixture(scope="session")
def tokens():
    return prod_keys.TokenMaker()


@pytest.fixture(scope="session")
def prod_etc(tmp_path_factory, tokens):
    etc = tmp_path_factory.mktemp("etc-pyspark-web")
    return etc, make_etc(etc, tokens)


@pytest.fixture(scope="module")
def prod_envoy(stack, prod_etc, tmp_path_factory):
    etc, ca = prod_etc
    config = tmp_path_factory.mktemp("prod") / "envoy.prod.yaml"
    config.write_text(render_prod_config(etc))
    process = run_envoy(config, config.with_suffix(".log"))
    yield ca
    stop_envoy(process)


@pytest.fixture(scope="module")
def prod_envoy_lua_gate(stack, prod_etc, tmp_path_factory):
    etc, ca = prod_etc
    config = tmp_path_factory.mktemp("prod-lua") / "envoy.prod.yaml"
    config.write_text(render_prod_config(etc, lua_gate=True))
    process = run_envoy(config, config.with_suffix(".log"))
    yield ca
    stop_envoy(process)


# ---------------------------------------------------------------- requests


def preflight(ca, origin):
    """A CORS preflight to the production listener (no Origin when origin is None)."""
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", PROD_PORTS["grpc_web"], context=context, timeout=10
    )
    headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-grpc-web",
    }
    if origin is not None:
        headers["Origin"] = origin
    connection.request("OPTIONS", "/spark.connect.SparkConnectService/AnalyzePlan", headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}
