"""tools/prod_keys.py without Envoy: the rendered prod config, tokens, `prod-token`."""

import base64
import json
import subprocess
import sys

import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from helpers import ROOT, tool

prod_keys = tool("prod_keys")
PORTS = {"grpc_web": 28443, "static": 28444, "admin": 29902}


def render(tmp_path, **options):
    text = prod_keys.render_config(
        tmp_path, ports=PORTS, upstream=("127.0.0.1", 15002), origins=["https://a.test"], **options
    )
    return yaml.safe_load(text)


def http_filter_types(config, listener):
    return [
        f.get("typed_config", {}).get("@type", "").rsplit(".", 1)[-1]
        for f in prod_keys.manager(config, listener)["http_filters"]
        if not f.get("disabled")
    ]


def test_rendering_puts_everything_on_loopback_and_the_generated_files(tmp_path):
    config = render(tmp_path)
    text = json.dumps(config)
    assert "/etc/pyspark-web" not in text and "/srv/pyspark-web" not in text
    assert "0.0.0.0" not in text and "spark-connect.internal" not in text
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": PORTS["admin"],
    }
    for listener in config["static_resources"]["listeners"]:
        assert listener["address"]["socket_address"] == {
            "address": "127.0.0.1",
            "port_value": PORTS[listener["name"]],
        }
    [extraction] = prod_keys.http_filters(config, "grpc_web", prod_keys.FIELD_EXTRACTION)
    assert (
        extraction["typed_config"]["descriptor_set"]["filename"] == f"{tmp_path}/spark_connect.pb"
    )
    [host] = prod_keys.manager(config, "grpc_web")["route_config"]["virtual_hosts"]
    cors = host["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert cors["allow_origin_string_match"] == [{"exact": "https://a.test"}]


def test_the_grpc_web_filters_run_in_the_order_that_makes_the_identity_check_work():
    # cors answers preflights; jwt_authn puts the claims in metadata; grpc_web makes gRPC,
    # which grpc_field_extraction reads; the Lua check compares; only then the router.
    config = yaml.safe_load((ROOT / "deploy/envoy.prod.yaml").read_text())
    assert http_filter_types(config, "grpc_web") == [
        "Cors",
        "JwtAuthentication",
        "GrpcWeb",
        "GrpcFieldExtractionConfig",
        "Lua",
        "Router",
    ]
    provider = prod_keys.provider(config)
    assert provider["payload_in_metadata"] == "jwt_payload" and provider["forward"] is False


def test_the_lua_gate_replaces_jwt_authn_and_the_identity_check(tmp_path):
    config = render(tmp_path, lua_gate=True)
    assert http_filter_types(config, "grpc_web") == ["Cors", "Lua", "GrpcWeb", "Router"]
    [gate] = prod_keys.http_filters(config, "grpc_web", prod_keys.LUA)
    assert "missing bearer token" in gate["typed_config"]["default_source_code"]["inline_string"]


def test_extra_paths_are_served_before_dist(tmp_path):
    config = render(tmp_path, extra_paths={"/test-pages/": tmp_path / "pages"})
    [file_server] = prod_keys.http_filters(config, "static", prod_keys.FILE_SERVER)
    first, *rest = file_server["typed_config"]["path_mappings"]
    assert first == {
        "request_path_prefix": "/test-pages/",
        "file_path_prefix": str(tmp_path / "pages"),
    }
    assert any(m["file_path_prefix"] == str(ROOT / "dist") for m in rest)


def claims_of(token, jwks):
    """The claims, once the signature checks against the JWKS (RS256)."""

    def number(text):
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    header, payload, signature = token.split(".")
    [key] = jwks["keys"]
    public = rsa.RSAPublicNumbers(number(key["e"]), number(key["n"])).public_key()
    public.verify(
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{header}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_tokens_carry_the_configs_issuer_and_audience():
    tokens = prod_keys.TokenMaker()
    provider = prod_keys.provider(yaml.safe_load((ROOT / "deploy/envoy.prod.yaml").read_text()))
    claims = claims_of(tokens.token(subject="alice", expires_in=60), tokens.jwks())
    assert claims["iss"] == provider["issuer"] and claims["aud"] == provider["audiences"][0]
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 60
    assert "sub" not in claims_of(tokens.token(subject=None), tokens.jwks())


def test_prod_token_prints_a_token_of_the_saved_key(tmp_path):
    tokens = prod_keys.TokenMaker()
    prod_keys.private(tmp_path / "jwt-key.pem", prod_keys.pem(tokens.key))
    assert (tmp_path / "jwt-key.pem").stat().st_mode & 0o077 == 0
    config = prod_keys.render_config(
        tmp_path, ports=PORTS, upstream=("127.0.0.1", 15002), origins=[]
    ).replace("https://login.example.com/", "https://issuer.test/")
    (tmp_path / "envoy.yaml").write_text(config)
    command = [sys.executable, str(ROOT / "tools/prod_keys.py"), "token", "--dir", str(tmp_path)]
    result = subprocess.run(
        command + ["--sub", "bob", "--expires", "120"], capture_output=True, text=True, check=True
    )
    claims = claims_of(result.stdout.strip(), tokens.jwks())
    # What the config that runs says, not the deploy file's values.
    assert claims["iss"] == "https://issuer.test/" and claims["sub"] == "bob"
    assert claims["exp"] - claims["iat"] == 120


def test_prod_token_without_up_prod_says_what_to_run(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/prod_keys.py"), "token", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "run ./build.sh up --prod first" in result.stderr
    assert result.stdout == ""


def test_the_certificate_names_loopback_and_its_pin_is_its_key(tmp_path):
    import ssl

    from cryptography import x509

    ca = prod_keys.write_certificate(tmp_path)
    chain = (tmp_path / "tls/fullchain.pem").read_bytes()
    cert = x509.load_pem_x509_certificate(chain)
    alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(v) for v in alternatives.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert alternatives.get_values_for_type(x509.DNSName) == ["localhost"]
    assert (tmp_path / "tls/privkey.pem").stat().st_mode & 0o077 == 0
    ssl.create_default_context(cafile=str(ca))  # a CA file Python accepts
    pin = prod_keys.spki_pin(tmp_path / "tls/fullchain.pem")
    assert len(base64.b64decode(pin)) == 32
    # Another certificate, another pin.
    prod_keys.write_certificate(tmp_path / "other")
    assert prod_keys.spki_pin(tmp_path / "other/tls/fullchain.pem") != pin
