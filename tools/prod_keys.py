"""Keys, certificates and tokens for running deploy/envoy.prod.yaml on this machine, and
the config rendered onto loopback.

    python tools/prod_keys.py token [--dir DIR] [--sub NAME] [--expires SECONDS]

``./build.sh up --prod`` (tools/stack.py) writes into build/prod/, once, with
``ensure_files``: a throw-away CA (``ca.pem``), a server certificate for 127.0.0.1 and
localhost signed by it (``tls/fullchain.pem``, ``tls/privkey.pem``), an RSA key that signs
local tokens (``jwt-key.pem``) and its public half as a JWKS (``jwks.json``), and the Spark
Connect descriptor set (``spark_connect.pb``, see tools/spark_connect_protos.py); then
``render_config`` puts the config's paths, ports, upstream and allowed origins onto those.
``./build.sh prod-token`` (``token`` above) prints a JWT signed by that key, with the
issuer and audience of the config that runs. The stack and browser tests make the same
files in temporary directories with the same functions.
"""

import argparse
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent.parent
PROD_CONFIG = ROOT / "deploy/envoy.prod.yaml"
HOST = "127.0.0.1"
NAMES = ("127.0.0.1", "localhost")  # what the server certificate is valid for
KEY_ID = "pyspark-web-local"
DEFAULT_SUBJECT = "local-user"

# What deploy/envoy.prod.yaml names these by: its documented paths, and its filters'
# types (a filter's name is free text; its type is what Envoy runs).
ETC = "/etc/pyspark-web/"
SITE = "/srv/pyspark-web/dist"
JWT_AUTHN = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
FIELD_EXTRACTION = (
    "type.googleapis.com/envoy.extensions.filters.http.grpc_field_extraction.v3."
    "GrpcFieldExtractionConfig"
)
LUA = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
FILE_SERVER = "type.googleapis.com/envoy.extensions.filters.http.file_server.v3.FileServerConfig"
CORS = "envoy.filters.http.cors"


# ---------------------------------------------------------------- the config


def manager(config: dict, listener: str) -> dict:
    """The HTTP connection manager of a listener (by name)."""
    [found] = [item for item in config["static_resources"]["listeners"] if item["name"] == listener]
    return found["filter_chains"][0]["filters"][0]["typed_config"]


def http_filters(config: dict, listener: str, type_url: str) -> list[dict]:
    return [
        item
        for item in manager(config, listener)["http_filters"]
        if item.get("typed_config", {}).get("@type") == type_url
    ]


def provider(config: dict) -> dict:
    """The one jwt_authn provider of the grpc_web listener: its issuer and audiences."""
    [jwt] = http_filters(config, "grpc_web", JWT_AUTHN)
    [found] = jwt["typed_config"]["providers"].values()
    return found


def _replace_prefixes(value, prefixes: dict):
    if isinstance(value, dict):
        return {key: _replace_prefixes(item, prefixes) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_prefixes(item, prefixes) for item in value]
    if isinstance(value, str):
        for old, new in prefixes.items():
            if value.startswith(old):
                return new + value[len(old) :]
    return value


def render_config(
    etc: Path,
    *,
    ports: dict,
    upstream: tuple[str, int],
    origins: list[str],
    dist: Path = ROOT / "dist",
    extra_paths: dict | None = None,
    lua_gate: bool = False,
    source: Path = PROD_CONFIG,
) -> str:
    """deploy/envoy.prod.yaml with its documented paths pointing at ``etc`` and ``dist``,
    every listener on 127.0.0.1 at ``ports`` (keys grpc_web, static, admin), Spark at
    ``upstream`` and exactly ``origins`` allowed by CORS.

    ``extra_paths`` maps request path prefixes to directories the static listener serves
    before dist/ (the browser tests' pages). ``lua_gate`` applies the documented fallback:
    the presence-only bearer gate instead of jwt_authn, and so no identity check either
    (it compares with the token's subject, which only jwt_authn provides).
    """
    config = _replace_prefixes(
        yaml.safe_load(source.read_text()), {ETC: f"{etc}/", SITE: str(dist)}
    )
    config["admin"]["address"]["socket_address"] = {"address": HOST, "port_value": ports["admin"]}
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"] = {
            "address": HOST,
            "port_value": ports[listener["name"]],
        }
    [cluster] = [c for c in config["static_resources"]["clusters"] if c["name"] == "spark_connect"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"] = {"address": upstream[0], "port_value": upstream[1]}
    policies = [
        host["typed_per_filter_config"][CORS]
        for host in manager(config, "grpc_web")["route_config"]["virtual_hosts"]
        if CORS in host.get("typed_per_filter_config", {})
    ]
    assert policies, "deploy/envoy.prod.yaml: no CORS policy on the grpc_web virtual hosts"
    for policy in policies:
        policy["allow_origin_string_match"] = [{"exact": origin} for origin in origins]
    if extra_paths:
        [file_server] = http_filters(config, "static", FILE_SERVER)
        file_server["typed_config"]["path_mappings"][:0] = [
            {"request_path_prefix": prefix, "file_path_prefix": str(directory)}
            for prefix, directory in extra_paths.items()
        ]
    if lua_gate:
        chain = manager(config, "grpc_web")
        chain["http_filters"] = [
            item
            for item in chain["http_filters"]
            if item.get("typed_config", {}).get("@type") not in (JWT_AUTHN, FIELD_EXTRACTION)
            and not (item.get("typed_config", {}).get("@type") == LUA and not item.get("disabled"))
        ]
        [gate] = http_filters(config, "grpc_web", LUA)
        del gate["disabled"]
    return "# Rendered by tools/prod_keys.py from deploy/envoy.prod.yaml; do not edit.\n" + (
        yaml.dump(config, Dumper=_Dumper, sort_keys=False)
    )


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the Lua sources) as blocks, readable as in the source."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    ),
)


# ---------------------------------------------------------------- tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TokenMaker:
    """Signs RS256 JWTs with one key, published as a JWKS; by default with the issuer and
    the first audience of the config's jwt_authn provider."""

    def __init__(self, key: rsa.RSAPrivateKey | None = None, config: Path = PROD_CONFIG):
        self.key = key or new_key()
        found = provider(yaml.safe_load(config.read_text()))
        self.issuer, self.audience = found["issuer"], found["audiences"][0]
        self._other_key = None

    @classmethod
    def load(cls, key_file: Path, config: Path = PROD_CONFIG) -> "TokenMaker":
        return cls(serialization.load_pem_private_key(key_file.read_bytes(), None), config)

    @property
    def other_key(self) -> rsa.RSAPrivateKey:
        """A key the JWKS does not have: its tokens must fail verification."""
        if self._other_key is None:
            self._other_key = new_key()
        return self._other_key

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": KEY_ID,
                    "use": "sig",
                    "alg": "RS256",
                    "n": b64url_int(numbers.n),
                    "e": b64url_int(numbers.e),
                }
            ]
        }

    def token(
        self,
        *,
        subject: str | None = DEFAULT_SUBJECT,
        issuer: str | None = None,
        audience: str | None = None,
        expires_in: int = 600,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
        claims = {
            "iss": issuer or self.issuer,
            "aud": audience or self.audience,
            "iat": now,
            "exp": now + expires_in,
        }
        if subject is not None:
            claims["sub"] = subject
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        signature = (key or self.key).sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"


# ---------------------------------------------------------------- certificates


def write_certificate(directory: Path, names=NAMES, days: int = 1) -> Path:
    """A throw-away CA and a server certificate for ``names`` (IP addresses or host names)
    signed by it: tls/fullchain.pem (certificate, then CA), tls/privkey.pem, ca.pem.
    Returns the CA file."""

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def alternative(value):
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            return x509.DNSName(value)

    now = datetime.datetime.now(datetime.timezone.utc)
    window = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(days=days),
    }

    def usage(**granted):
        flags = (
            "digital_signature content_commitment key_encipherment data_encipherment "
            "key_agreement key_cert_sign crl_sign encipher_only decipher_only"
        ).split()
        return x509.KeyUsage(**{flag: granted.get(flag, False) for flag in flags})

    # The extensions a strict verifier wants (Python 3.13's default context: key
    # identifiers, key usage): a certificate that only lenient clients accept would hide
    # problems a real one does not have.
    ca_key, key = new_key(), new_key()
    ca_identifier = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder(**window)
        .subject_name(name("pyspark-web local CA"))
        .issuer_name(name("pyspark-web local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ca_identifier, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder(**window)
        .subject_name(name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([alternative(n) for n in names]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_identifier),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = directory / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    encoding = serialization.Encoding.PEM
    (tls / "fullchain.pem").write_bytes(cert.public_bytes(encoding) + ca.public_bytes(encoding))
    private(tls / "privkey.pem", pem(key))
    (directory / "ca.pem").write_bytes(ca.public_bytes(encoding))
    return directory / "ca.pem"


def private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only (Envoy runs as the same user)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def spki_pin(chain: Path) -> str:
    """base64 of the SHA-256 of the first certificate's SubjectPublicKeyInfo: what
    Chromium's --ignore-certificate-errors-spki-list takes to trust that certificate."""
    cert = x509.load_pem_x509_certificate(chain.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def certificate_expires(chain: Path) -> datetime.datetime | None:
    try:
        return x509.load_pem_x509_certificate(chain.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


def write_descriptor_set(out: Path, python: Path) -> None:
    """tools/spark_connect_protos.py, run by ``python`` (one with the server's pyspark)."""
    result = subprocess.run(
        [str(python), str(ROOT / "tools/spark_connect_protos.py"), str(out)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{python} could not write the Spark Connect descriptor set:\n{result.stderr[-2000:]}"
        )


def ensure_files(directory: Path, python: Path, days: int = 30) -> TokenMaker:
    """What the config reads under ``directory`` (its /etc/pyspark-web/): kept while the
    certificate has a day left, so that a browser told to trust it (or a minted token)
    stays good across restarts; else made anew. The descriptor set is always rewritten
    (the server's pyspark may have changed)."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "jwt-key.pem"
    expires = certificate_expires(directory / "tls/fullchain.pem")
    left = expires - datetime.datetime.now(datetime.timezone.utc) if expires else None
    if left is None or left < datetime.timedelta(days=1) or not key_file.is_file():
        write_certificate(directory, days=days)
        tokens = TokenMaker()
        private(key_file, pem(tokens.key))
    else:
        tokens = TokenMaker.load(key_file)
    (directory / "jwks.json").write_text(json.dumps(tokens.jwks()))
    write_descriptor_set(directory / "spark_connect.pb", python)
    return tokens


# ---------------------------------------------------------------- the command


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="./build.sh prod-token",
        description="Print a JWT for the local production Envoy (./build.sh up --prod).",
    )
    parser.add_argument("command", choices=["token"])
    parser.add_argument("--dir", type=Path, default=ROOT / "build/prod")
    parser.add_argument(
        "--sub",
        default=DEFAULT_SUBJECT,
        help="the token's subject, which must also be the connection's user_id "
        f"(default: {DEFAULT_SUBJECT})",
    )
    parser.add_argument(
        "--expires",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="seconds until it expires (default: 3600; negative for an expired token)",
    )
    args = parser.parse_args(argv)
    key_file, config = args.dir / "jwt-key.pem", args.dir / "envoy.yaml"
    if not (key_file.is_file() and config.is_file()):
        print(f"error: no key in {args.dir}; run ./build.sh up --prod first", file=sys.stderr)
        return 1
    if not args.sub:
        parser.error("--sub must not be empty: the proxy refuses a token without a subject")
    print(TokenMaker.load(key_file, config).token(subject=args.sub, expires_in=args.expires))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
