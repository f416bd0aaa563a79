"""The stack under test: `./build.sh up` (dev), and a production Envoy made from
deploy/envoy.prod.yaml with a certificate, keys and a JWKS generated here.
"""

import base64
import datetime
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from helpers import BUILD, DIST, ROOT


def stack_venv() -> Path:
    """build/venv-stack-X.Y of the running stack (its Spark, Envoy and workers' Python);
    the machine's python3 (which runs the tests) picks X.Y when none runs."""
    try:
        return Path(json.loads((BUILD / "run/python.json").read_text())["python"]).parent.parent
    except FileNotFoundError:
        return BUILD / "venv-stack-{}.{}".format(*sys.version_info[:2])


ENVOY = stack_venv() / "bin/envoy"  # the same Envoy in every stack venv
PROD_PORTS = {"grpc_web": 18443, "static": 18444, "admin": 19901}
ISSUER = "https://login.example.com/"
AUDIENCE = "spark-connect"
ALLOWED_ORIGIN = "https://notebooks.example.com"


def server_version_pinned():
    """The Spark version the stack installs (deploy/requirements.txt), to compare with."""
    for line in (ROOT / "deploy/requirements.txt").read_text().splitlines():
        if line.startswith(("pyspark==", "pyspark[")):
            return line.split("==")[1]
    raise AssertionError("deploy/requirements.txt pins no pyspark")


# ---------------------------------------------------------------- keys, certs, tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class TokenMaker:
    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": "test-key",
                    "use": "sig",
                    "alg": "RS256",
                    "n": b64url_int(numbers.n),
                    "e": b64url_int(numbers.e),
                }
            ]
        }

    def token(self, *, issuer=ISSUER, audience=AUDIENCE, expires_in=600, key=None) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": "test-key"}
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": "tester",
            "iat": now,
            "exp": now + expires_in,
        }
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        signature = (key or self.key).sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"


def write_certificate(directory: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1; returns the CA file."""

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("pyspark-web test CA"))
        .issuer_name(name("pyspark-web test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = directory / "tls"
    tls.mkdir(parents=True)
    pem = serialization.Encoding.PEM
    (tls / "fullchain.pem").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    (tls / "privkey.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    return directory / "ca.pem"


def render_prod_config(etc: Path, lua_gate: bool = False) -> str:
    """deploy/envoy.prod.yaml with its documented paths pointing at generated files, on
    loopback test ports, in front of the dev stack's Spark."""
    text = (ROOT / "deploy/envoy.prod.yaml").read_text()
    replacements = {
        "/etc/pyspark-web/": f"{etc}/",
        "/srv/pyspark-web/dist": str(DIST),
        "address: 0.0.0.0, port_value: 8443": (
            f"address: 127.0.0.1, port_value: {PROD_PORTS['grpc_web']}"
        ),
        "address: 0.0.0.0, port_value: 443": (
            f"address: 127.0.0.1, port_value: {PROD_PORTS['static']}"
        ),
        "address: 127.0.0.1, port_value: 9901": (
            f"address: 127.0.0.1, port_value: {PROD_PORTS['admin']}"
        ),
        "address: spark-connect.internal, port_value: 15002": (
            "address: 127.0.0.1, port_value: 15002"
        ),
    }
    for old, new in replacements.items():
        assert text.count(old) >= 1, f"deploy/envoy.prod.yaml no longer contains {old!r}"
        text = text.replace(old, new)
    if lua_gate:
        # The documented switch: enable the Lua gate, drop jwt_authn.
        start = text.index("                  - name: envoy.filters.http.jwt_authn")
        end = text.index("                  # The weaker fallback")
        text = text[:start] + text[end:]
        text = text.replace("                    disabled: true\n", "", 1)
    return text


@pytest.fixture(scope="session")
def tokens():
    return TokenMaker()


@pytest.fixture(scope="session")
def prod_etc(tmp_path_factory, tokens):
    etc = tmp_path_factory.mktemp("etc-pyspark-web")
    ca = write_certificate(etc)
    (etc / "jwks.json").write_text(json.dumps(tokens.jwks()))
    return etc, ca


def run_envoy(config: Path, log: Path):
    process = subprocess.Popen(
        [str(ENVOY), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"Envoy exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{PROD_PORTS['admin']}/ready", timeout=1
            ) as r:
                if r.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"Envoy (prod config) not ready: {log.read_text()[-2000:]}")


def stop_envoy(process):
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


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


def upstream_requests():
    """Requests Envoy has sent to Spark so far (its cluster counter)."""
    url = f"http://127.0.0.1:{PROD_PORTS['admin']}/stats?filter=^cluster\\.spark_connect\\.upstream_rq_total$"
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.read().decode().split(":")[1])
