"""deploy/envoy.prod.yaml, run against a generated certificate, keys and JWKS."""

import concurrent.futures
import http.client
import select
import socket
import ssl
import subprocess
import time

import pyspark.sql.connect.proto as pb2
import pytest
import yaml
from conftest import (
    ALLOWED_ORIGIN,
    ENVOY,
    PROD_PORTS,
    preflight,
    render_prod_config,
    server_version_pinned,
    upstream_requests,
)
from grpcweb import USER_ID, call, spark_version_request
from helpers import ROOT

GRPC_WEB = PROD_PORTS["grpc_web"]


@pytest.mark.parametrize("lua_gate", [False, True], ids=["jwt", "lua-gate"])
def test_prod_config_validates(prod_etc, tmp_path, lua_gate):
    etc, _ = prod_etc
    config = tmp_path / "envoy.prod.yaml"
    config.write_text(render_prod_config(etc, lua_gate=lua_gate))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_the_remote_jwks_snippet_of_the_docs_validates(prod_etc, tmp_path):
    """deploy/README.md's remote_jwks and the jwks cluster it names, spliced into the
    config as it says, pass Envoy's validation (which connects to nothing). Validation
    does not check that the cluster exists (Envoy would fail fetching the keys), hence
    the name check."""
    import re
    import textwrap

    blocks = [
        yaml.safe_load(textwrap.dedent(block))
        for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "deploy/README.md").read_text(), re.S)
    ]
    [remote] = [b["remote_jwks"] for b in blocks if isinstance(b, dict) and "remote_jwks" in b]
    [cluster] = [b[0] for b in blocks if isinstance(b, list) and b[0].get("name") == "jwks"]
    assert remote["http_uri"]["cluster"] == cluster["name"]
    etc, _ = prod_etc
    config = yaml.safe_load(render_prod_config(etc))
    [listener] = [x for x in config["static_resources"]["listeners"] if x["name"] == "grpc_web"]
    for http_filter in listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]:
        if http_filter["name"] == "envoy.filters.http.jwt_authn":
            provider = http_filter["typed_config"]["providers"]["issuer_jwt"]
            del provider["local_jwks"]
            provider["remote_jwks"] = remote
    config["static_resources"]["clusters"].append(cluster)
    path = tmp_path / "envoy.remote-jwks.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_valid_token_gets_through(prod_envoy, tokens):
    reply = call(
        GRPC_WEB,
        "AnalyzePlan",
        spark_version_request(),
        headers={"authorization": f"Bearer {tokens.token(subject=USER_ID)}"},
        tls_ca=prod_envoy,
    )
    assert reply.grpc_status == 0, reply.grpc_message
    [payload] = reply.messages
    assert (
        pb2.AnalyzePlanResponse.FromString(payload).spark_version.version == server_version_pinned()
    )


BAD_TOKENS = {
    "missing": lambda t: None,
    "malformed": lambda t: "Bearer not-a.jwt",
    "expired": lambda t: f"Bearer {t.token(expires_in=-3600)}",
    "wrong-audience": lambda t: f"Bearer {t.token(audience='some-other-service')}",
    "wrong-issuer": lambda t: f"Bearer {t.token(issuer='https://elsewhere.example.com/')}",
    "wrongly-signed": lambda t: f"Bearer {t.token(key=t.other_key)}",
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_tokens_get_401_unauthenticated(prod_envoy, tokens, case):
    value = BAD_TOKENS[case](tokens)
    headers = {"authorization": value} if value else {}
    reply = call(
        GRPC_WEB, "AnalyzePlan", spark_version_request(), headers=headers, tls_ca=prod_envoy
    )
    assert reply.http_status == 401
    assert reply.grpc_status == 16
    assert not reply.messages


# What each bad token gets wrong, in the words jwt_authn uses for it. The client shows
# grpc-message as the error's details; before, Envoy's reason reached only a text/plain
# body, and clients said `UNAUTHENTICATED details = ""`.
REASONS = {
    "missing": "missing",
    "malformed": "not in the form",
    "expired": "expired",
    "wrong-audience": "audience",
    "wrong-issuer": "issuer",
    "wrongly-signed": "verification",
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_tokens_say_why_in_grpc_message(prod_envoy, tokens, case):
    value = BAD_TOKENS[case](tokens)
    headers = {"origin": ALLOWED_ORIGIN, **({"authorization": value} if value else {})}
    reply = call(
        GRPC_WEB, "AnalyzePlan", spark_version_request(), headers=headers, tls_ca=prod_envoy
    )
    assert reply.http_status == 401 and reply.grpc_status == 16
    raw = reply.headers.get("grpc-message", "")
    # A valid grpc-message as sent: printable ASCII, and no '%' that a client would take
    # for the start of a percent-encoded byte.
    assert raw and all(0x20 <= ord(c) <= 0x7E for c in raw) and "%" not in raw, repr(raw)
    # Envoy writes its reason with underscores for spaces (jwt_authn_access_denied{Jwt_is_expired}).
    reason = reply.grpc_message.replace("_", " ").lower()
    assert REASONS[case] in reason, reply.grpc_message
    for other, word in REASONS.items():
        if word not in REASONS[case]:
            assert word not in reason, f"{case}: {reply.grpc_message!r} also reads as {other}"
    # A browser may read it: CORS exposes grpc-status and grpc-message on the 401 too.
    assert reply.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = {h.strip().lower() for h in reply.headers["access-control-expose-headers"].split(",")}
    assert {"grpc-status", "grpc-message"} <= exposed


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_the_reason_reaches_the_pyspark_exception(prod_envoy, tokens, case):
    """What a user sees: pyspark-web's client, upstream's error handling, Envoy's reason."""
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException
    from pyspark.sql.connect.client import SparkConnectClient

    from pyspark_web.builder import GrpcWebChannelBuilder

    value = BAD_TOKENS[case](tokens)
    token = f";token={value.split(' ', 1)[1]}" if value else ""
    client = SparkConnectClient(
        GrpcWebChannelBuilder(f"https://127.0.0.1:{GRPC_WEB}/{token}", ca_certs=str(prod_envoy))
    )
    try:
        with pytest.raises(SparkConnectGrpcException) as info:
            client.get_configs("spark.sql.session.timeZone")
    finally:
        client.close()
    assert info.value.getGrpcStatusCode().name == "UNAUTHENTICATED"
    assert REASONS[case] in str(info.value).replace("_", " ").lower(), str(info.value)


def test_preflight_passes_without_a_token_for_allowed_origin(prod_envoy):
    status, headers = preflight(prod_envoy, ALLOWED_ORIGIN)
    assert status == 200
    assert headers["access-control-allow-origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://notebooks.example.com.evil.net",
        "http://notebooks.example.com",
        "http://127.0.0.1:8000",
    ],
)
def test_origin_outside_allowlist_gets_no_allow_header(prod_envoy, origin):
    _, headers = preflight(prod_envoy, origin)
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://127.0.0.1:8000", None])
def test_preflights_from_other_origins_never_reach_spark(prod_envoy, origin):
    # Preflights skip the JWT check; the CORS filter must answer them, not forward them.
    before = upstream_requests()
    status, headers = preflight(prod_envoy, origin)
    assert "access-control-allow-origin" not in headers
    # Answered by Envoy (CORS for a preflight, 401 without a token otherwise), not by Spark.
    assert status in (200, 401, 403) and upstream_requests() == before


def test_static_host_over_tls(prod_envoy):
    context = ssl.create_default_context(cafile=str(prod_envoy))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    connection = http.client.HTTPSConnection(
        "127.0.0.1", PROD_PORTS["static"], context=context, timeout=10
    )
    connection.request("GET", "/pyodide.asm.wasm")
    response = connection.getresponse()
    response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    connection.close()
    assert response.status == 200
    assert headers["content-type"] == "application/wasm"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    assert headers["strict-transport-security"].startswith("max-age=")


def test_spark_port_is_not_routed(prod_envoy, tokens):
    """Only the Spark Connect service path is routed, even with a valid token. Another
    service's request carries no user_context Envoy can read, so the identity check
    refuses it (7) before the router would answer 404; either way Spark never sees it."""
    before = upstream_requests()
    context = ssl.create_default_context(cafile=str(prod_envoy))
    connection = http.client.HTTPSConnection("127.0.0.1", GRPC_WEB, context=context, timeout=10)
    connection.request(
        "POST",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        body=b"",
        headers={
            "authorization": f"Bearer {tokens.token(subject=USER_ID)}",
            "content-type": "application/grpc-web+proto",
        },
    )
    response = connection.getresponse()
    response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    connection.close()
    assert response.status == 404 or headers.get("grpc-status") in ("7", "12")
    assert upstream_requests() == before


# ---------------------------------------------------------------- slow clients (issue 11)
#
# A client that holds a connection without ever finishing its request ties up Envoy's
# connections (and, at scale, its file descriptors) at no cost to itself. Both listeners
# bound both halves: the TLS handshake and the request headers. Each test probes the two
# listeners at once, so that it takes one timeout, not two.

SLOW_CLIENT_BOUND = 15.0  # s: the 10 s of the prod config, and slack for a busy machine
LISTENERS = ("grpc_web", "static")


def seconds_until_closed(sock, drip=None, received=None, bound=SLOW_CLIENT_BOUND):
    """Seconds until the peer closes the non-blocking sock, sending drip() once a second
    meanwhile and adding what the peer sends to received; None while it is still open
    after `bound` seconds."""
    started = time.monotonic()
    next_drip = started
    while (now := time.monotonic()) - started < bound:
        if drip and now >= next_drip:
            try:
                sock.sendall(drip())
            except OSError:  # reset or closed by the peer
                return time.monotonic() - started
            next_drip += 1.0
        wait = min(next_drip - now, 0.25) if drip else 0.25
        readable, _, _ = select.select([sock], [], [], max(0.0, wait))
        while readable:  # until drained: TLS may hold decrypted bytes select cannot see
            try:
                data = sock.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                break
            except OSError:
                return time.monotonic() - started
            if not data:
                return time.monotonic() - started
            if received is not None:
                received.extend(data)
    return None


def on_each_listener(probe):
    """{listener: probe(port)}, the probes running at the same time."""
    with concurrent.futures.ThreadPoolExecutor(len(LISTENERS)) as pool:
        futures = {name: pool.submit(probe, PROD_PORTS[name]) for name in LISTENERS}
        return {name: future.result() for name, future in futures.items()}


def test_slow_request_headers_are_cut_off(prod_envoy):
    """TLS, then a request line and headers at one byte a second: Envoy answers 408 and
    closes once request_headers_timeout has passed, instead of waiting for ever."""
    context = ssl.create_default_context(cafile=str(prod_envoy))
    context.set_alpn_protocols(["http/1.1"])

    def probe(port):
        request = iter(
            b"POST /spark.connect.SparkConnectService/AnalyzePlan HTTP/1.1\r\n"
            b"host: 127.0.0.1\r\nx-slow: " + b"a" * 1000
        )
        received = bytearray()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.setblocking(False)
                seconds = seconds_until_closed(
                    tls, drip=lambda: bytes([next(request)]), received=received
                )
        return seconds, bytes(received)

    results = on_each_listener(probe)
    held = [listener for listener, (seconds, _) in results.items() if seconds is None]
    assert not held, (
        f"a slow client still held its connection after {SLOW_CLIENT_BOUND:.0f} s on {held}"
    )
    for listener, (seconds, received) in results.items():
        assert seconds > 5, (
            f"{listener}: closed after {seconds:.1f} s, sooner than any slow-header timeout"
        )
        assert received.startswith(b"HTTP/1.1 408"), f"{listener}: {received[:200]!r}"


def test_unfinished_tls_handshake_is_cut_off(prod_envoy):
    """A TCP connection that never sends its TLS ClientHello is closed after
    transport_socket_connect_timeout."""

    def probe(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.setblocking(False)
            return seconds_until_closed(raw)

    results = on_each_listener(probe)
    held = [listener for listener, seconds in results.items() if seconds is None]
    assert not held, (
        f"a silent TCP client still held its connection after {SLOW_CLIENT_BOUND:.0f} s on {held}"
    )
    for listener, seconds in results.items():
        assert seconds > 5, (
            f"{listener}: closed after {seconds:.1f} s, sooner than any handshake timeout"
        )


def seconds_of(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    raise ValueError(duration)


def test_timeouts_bound_slow_clients_but_not_long_queries():
    """The trade-off of deploy/envoy.prod.yaml, kept: slow clients are cut off within
    seconds, while a grpc-web stream may stay quiet far longer than Spark leaves a healthy
    one quiet (progress every 2 s while a job runs; a reattachable stream ends after 2 min)."""
    config = yaml.safe_load((ROOT / "deploy/envoy.prod.yaml").read_text())
    managers = {}
    for listener in config["static_resources"]["listeners"]:
        [chain] = listener["filter_chains"]
        assert 0 < seconds_of(chain["transport_socket_connect_timeout"]) <= 10, listener["name"]
        managers[listener["name"]] = manager = chain["filters"][0]["typed_config"]
        assert 0 < seconds_of(manager["request_headers_timeout"]) <= 10, listener["name"]
    grpc_web = managers["grpc_web"]
    assert seconds_of(grpc_web["stream_idle_timeout"]) >= 300
    [route] = grpc_web["route_config"]["virtual_hosts"][0]["routes"]
    assert seconds_of(route["route"]["timeout"]) == 0  # whole queries are never timed out
