"""Connection strings that select grpc-web (patches 0008-0011) and pyspark_web.builder.

Nothing here opens a socket: building a GrpcWebChannel only sets up a connection pool.
"""

import uuid
from urllib.parse import quote

import pytest
from pyspark.errors import PySparkImportError, PySparkValueError
from pyspark.sql.connect.client import DefaultChannelBuilder

from pyspark_web.builder import GrpcWebChannelBuilder
from pyspark_web.channel import GrpcWebChannel


def invalid_url(url, match, build=False):
    """The INVALID_CONNECT_URL error of a URL (at parse time, or when building the channel)."""
    with pytest.raises(PySparkValueError) as info:
        builder = DefaultChannelBuilder(url)
        if build:
            builder.toChannel()
    assert info.value.getCondition() == "INVALID_CONNECT_URL"
    assert match in str(info.value)
    return info.value


def sent_headers(url):
    return DefaultChannelBuilder(url).toChannel().request_headers(None, None)


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, endpoint, use_ssl",
    [
        ("sc://spark.example:9090/;transport=grpcweb", "spark.example:9090", False),
        ("sc://spark.example/;transport=grpcweb", "spark.example:8081", False),
        ("http://spark.example", "spark.example:80", False),
        ("https://spark.example", "spark.example:443", True),
        ("https://spark.example:8443", "spark.example:8443", True),
        ("http://[::1]", "[::1]:80", False),
        ("sc://[::1]:7000/;transport=grpcweb", "[::1]:7000", False),
    ],
)
def test_grpcweb_urls_parse_to_endpoint_and_tls(url, endpoint, use_ssl):
    builder = DefaultChannelBuilder(url)
    assert builder.transport == "grpcweb"
    assert builder.endpoint == endpoint
    assert builder.use_ssl is use_ssl


def test_ipv6_host_keeps_its_brackets():
    assert DefaultChannelBuilder("http://[::1]:9000").host == "[::1]"


def test_http_shorthand_keeps_parameters():
    builder = DefaultChannelBuilder("http://spark.example:9000/;user_id=bob")
    assert builder.endpoint == "spark.example:9000"
    assert builder.userId == "bob"


def test_stock_url_keeps_native_grpc_and_its_port():
    builder = DefaultChannelBuilder("sc://spark.example")
    assert builder.transport == "grpc"
    assert builder.endpoint == "spark.example:15002"


def test_stock_url_needs_grpcio_to_build_a_channel():
    with pytest.raises(PySparkImportError) as info:
        DefaultChannelBuilder("sc://spark.example").toChannel()
    assert info.value.getCondition() == "PACKAGE_NOT_INSTALLED"
    assert info.value.getMessageParameters()["package_name"] == "grpcio"


@pytest.mark.parametrize(
    "url, base_url",
    [
        ("sc://spark.example:9090/;transport=grpcweb", "http://spark.example:9090"),
        ("http://spark.example", "http://spark.example:80"),
        ("https://spark.example", "https://spark.example:443"),
    ],
)
def test_grpcweb_urls_build_a_grpcweb_channel(url, base_url):
    channel = DefaultChannelBuilder(url).toChannel()
    assert isinstance(channel, GrpcWebChannel)
    assert channel.base_url == base_url


# --- token -------------------------------------------------------------------------------


def test_token_becomes_bearer_authorization_header():
    headers = sent_headers("https://spark.example/;token=s3cret")
    assert headers["authorization"] == "Bearer s3cret"
    assert "token" not in headers


def test_plaintext_token_to_remote_host_is_refused():
    error = invalid_url("http://spark.example/;token=s3cret", "plaintext", build=True)
    assert "https://spark.example" in str(error)
    assert "s3cret" not in str(error)


def test_plaintext_token_via_sc_url_is_refused():
    invalid_url("sc://spark.example/;transport=grpcweb;token=t", "plaintext", build=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8081/;token=t",
        "http://localhost:8081/;token=t",
        "http://[::1]:8081/;token=t",
        "sc://localhost/;transport=grpcweb;token=t",
        "https://spark.example/;token=t",
        "sc://spark.example/;transport=grpcweb;use_ssl=true;token=t",
    ],
)
def test_token_is_allowed_over_loopback_or_tls(url):
    assert sent_headers(url)["authorization"] == "Bearer t"


# --- parameters: upstream meaning or headers ------------------------------------------


def test_reserved_parameters_keep_upstream_meaning_and_are_not_headers():
    session = str(uuid.uuid4())
    url = f"http://spark.example/;user_id=bob;session_id={session};user_agent=myapp"
    builder = DefaultChannelBuilder(url)
    assert builder.userId == "bob"
    assert builder.session_id == session
    assert builder.userAgent.startswith("myapp")
    headers = builder.toChannel().request_headers(None, None)
    assert not {"user_id", "session_id", "user_agent", "transport"} & set(headers)
    assert "bob" not in headers.values() and session not in headers.values()


def test_invalid_session_id_is_rejected():
    builder = DefaultChannelBuilder("http://spark.example/;session_id=not-a-uuid")
    with pytest.raises(PySparkValueError) as info:
        _ = builder.session_id
    assert info.value.getCondition() == "INVALID_SESSION_UUID_ID"


def test_other_parameters_become_headers():
    headers = sent_headers("sc://spark.example/;transport=grpcweb;x-tenant=acme;X-Trace=on")
    assert headers["x-tenant"] == "acme"
    assert headers["x-trace"] == "on"
    assert "transport" not in headers


def test_percent_encoded_parameter_value_is_decoded():
    assert sent_headers("http://spark.example/;x-team=data%20eng")["x-team"] == "data eng"


@pytest.mark.parametrize(
    "param",
    [
        "bad key=1",
        "content-type=text%2Fplain",
        "grpc-foo=1",
        "authorization=Basic%20x",
        "host=evil",
    ],
)
def test_parameters_that_cannot_be_headers_are_refused(param):
    name = param.split("=")[0]
    invalid_url(f"http://spark.example/;{param}", f"Parameter '{name}' cannot be sent", build=True)


SECRET = "s3cretVALUE"


@pytest.mark.parametrize(
    "value",
    [
        f"{SECRET}%0d%0aInjected:%20yes",  # a second header
        f"{SECRET}%0d%0a%09folded",  # folded into the previous one
        f"{SECRET}%0a",
        f"{SECRET}%00",
        f"{SECRET}%7f",
        f"{SECRET}%C3%A9",  # not Latin-1 in http.client, not a ByteString in fetch
        f"%20{SECRET}",
        f"{SECRET}%09",
    ],
)
def test_header_values_that_are_not_field_values_are_refused_unquoted(value):
    error = invalid_url(
        f"http://spark.example/;x-a={value}", "cannot be sent as an HTTP header", build=True
    )
    assert SECRET not in str(error)


@pytest.mark.parametrize("value", ["a b", "a\tb", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", ""])
def test_header_values_with_inner_spaces_and_visible_ascii_are_sent(value):
    assert sent_headers(f"http://spark.example/;x-a={quote(value, safe='')}")["x-a"] == value


@pytest.mark.parametrize(
    "token",
    [
        f"{SECRET}%0d%0aX-Evil:%201",
        f"{SECRET}%20x",
        f"{SECRET}%00",
        f"{SECRET}%C3%A9",
        f"%3D{SECRET}",
        f"{SECRET}%3Dx",
        "%20",
    ],
)
def test_tokens_that_are_not_bearer_tokens_are_refused_unquoted(token):
    error = invalid_url(f"http://127.0.0.1:8081/;token={token}", "not a bearer token", build=True)
    assert SECRET not in str(error)


@pytest.mark.parametrize("token", ["abc", "a-b.c_d~e+f/g", "YWJj==", "eyJhbGciOi.eyJzdWIi.c2ln"])
def test_bearer_tokens_are_sent(token):
    assert (
        sent_headers(f"http://127.0.0.1:8081/;token={quote(token, safe='')}")["authorization"]
        == f"Bearer {token}"
    )


# --- malformed URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, match",
    [
        ("ftp://spark.example", "must start with 'sc://'"),
        ("spark.example:8081", "must start with 'sc://'"),
        ("sc://spark.example/path", "path component '/path' must be empty"),
        (
            "sc://spark.example:abc/;transport=grpcweb",
            "port in 'spark.example:abc' is not a number",
        ),
        ("http://spark.example:99999", "port in 'spark.example:99999' is not a number"),
        ("http://spark.example:abc", "is not a number"),
        ("sc://spark.example/;a=1;a=2", "Parameter 'a' is given more than once"),
        (
            "sc://spark.example/;transport=grpc;transport=grpcweb",
            "'transport' is given more than once",
        ),
        ("sc://:8081/;transport=grpcweb", "Hostname is missing"),
        ("http://:8081", "Hostname is missing"),
        ("sc://spark.example/;novalue", "'key=value'"),
        (
            "sc://spark.example:0/;transport=grpcweb",
            "port in 'spark.example:0' is not a number between 1 and 65535",
        ),
        ("http://spark.example:0", "port in 'spark.example:0' is not a number between 1 and 65535"),
        ("sc://spark.example:0", "not a number between 1 and 65535"),
    ],
)
def test_malformed_urls_are_refused(url, match):
    invalid_url(url, match)


@pytest.mark.parametrize(
    "url, match",
    [
        # urllib reads the rest as a query or a fragment: the parameters would be dropped
        # and the http:// form would fall back to native gRPC.
        (f"http://127.0.0.1:8081?token={SECRET}", "contains '?' or '#'"),
        (f"http://127.0.0.1:8081/?token={SECRET}", "contains '?' or '#'"),
        ("http://127.0.0.1:8081#frag", "contains '?' or '#'"),
        (f"sc://127.0.0.1:8081/;transport=grpcweb;token={SECRET}#x", "contains '?' or '#'"),
        # The parameters would become part of the port.
        (f"sc://h:8081;token={SECRET}", "must follow a '/' after the host"),
        (f"http://h:8081;token={SECRET}", "must follow a '/' after the host"),
        (f"sc://h;token={SECRET}", "must follow a '/' after the host"),
        # Credentials before the host are never sent.
        (f"http://user:{SECRET}@spark.example", "credentials before the host"),
        (f"sc://user:{SECRET}@spark.example/;transport=grpcweb", "credentials before the host"),
        (f"https://{SECRET}@spark.example", "credentials before the host"),
    ],
)
def test_urls_that_would_silently_mean_something_else_are_refused(url, match):
    error = invalid_url(url, match)
    assert SECRET not in str(error)


@pytest.mark.parametrize(
    "url, match",
    [
        (f"sc://:8081/;transport=grpcweb;token={SECRET}", "'sc://:8081/;transport=...;token=...'"),
        (f"sc://spark.example/;token={SECRET}=", "Parameter 'token' should be"),
        (f"sc://spark.example/;token={SECRET}==", "%3D"),
        (f"sc://spark.example/;x=1;{SECRET}", "Parameter number 2 should be"),
        (f"sc://spark.example/;token={SECRET}/x", "contains '/'. Please write it as %2F"),
    ],
)
def test_url_errors_leave_parameter_values_out(url, match):
    error = invalid_url(url, match)
    assert SECRET not in str(error)


def test_unknown_transport_lists_the_installed_ones():
    error = invalid_url("sc://spark.example/;transport=pigeon", "Unknown transport 'pigeon'")
    assert "installed transports are: grpc, grpcweb." in str(error)


# --- GrpcWebChannelBuilder ------------------------------------------------------------


@pytest.mark.parametrize(
    "url, endpoint",
    [
        ("sc://h:1", "h:1"),
        ("sc://h:1/", "h:1"),
        ("sc://h/;x-a=1", "h:8081"),
        ("http://h:2", "h:2"),
        ("sc://h:1/;x-transport=a", "h:1"),
    ],
)
def test_channel_builder_implies_grpcweb(url, endpoint):
    builder = GrpcWebChannelBuilder(url)
    assert builder.transport == "grpcweb"
    assert builder.endpoint == endpoint
    assert isinstance(builder.toChannel(), GrpcWebChannel)


def test_channel_builder_keeps_parameters():
    headers = (
        GrpcWebChannelBuilder("sc://h:1/;x-tenant=acme").toChannel().request_headers(None, None)
    )
    assert headers["x-tenant"] == "acme"


def test_channel_builder_refuses_an_explicit_native_transport():
    with pytest.raises(PySparkValueError) as info:
        GrpcWebChannelBuilder("sc://h:1/;transport=grpc")
    assert info.value.getCondition() == "INVALID_CONNECT_URL"
    assert "needs transport=grpcweb" in str(info.value)


def test_channel_builder_passes_ca_certs_to_the_pool():
    channel = GrpcWebChannelBuilder("sc://h:1", ca_certs="/etc/corp-ca.pem").toChannel()
    assert channel.transport._pool.connection_pool_kw.get("ca_certs") == "/etc/corp-ca.pem"


def test_channel_builder_without_ca_certs_uses_system_trust():
    channel = GrpcWebChannelBuilder("https://h").toChannel()
    assert channel.transport._pool.connection_pool_kw.get("ca_certs") is None
    assert channel.transport._pool.connection_pool_kw.get("cert_reqs") == "CERT_REQUIRED"


def test_interceptors_are_refused_for_grpcweb():
    builder = DefaultChannelBuilder("http://127.0.0.1:8081")
    builder.add_interceptor(object())
    with pytest.raises(PySparkValueError) as info:
        builder.toChannel()
    assert info.value.getCondition() == "INVALID_CONNECT_URL"
    assert "interceptors" in str(info.value)


@pytest.mark.parametrize("url", ["https://h/;use_ssl=false", "http://h/;transport=grpc"])
def test_shorthand_says_which_parameter_it_implies(url):
    invalid_url(url, "is implied by the")


@pytest.mark.parametrize("value", ["1", "yes", "TRUE1", "on"])
def test_use_ssl_other_than_true_or_false_is_refused(value):
    # Upstream reads anything but "true" as plaintext: "use_ssl=1" meant no TLS.
    error = invalid_url(
        f"sc://spark.example/;transport=grpcweb;use_ssl={value}",
        "use_ssl must be 'true' or 'false'",
        build=True,
    )
    assert "use_ssl=true" in str(error)


@pytest.mark.parametrize("value, scheme", [("true", "https"), ("True", "https"), ("false", "http")])
def test_use_ssl_true_or_false_still_work(value, scheme):
    from pyspark_web.builder import create_channel

    channel = create_channel(
        DefaultChannelBuilder(f"sc://127.0.0.1/;transport=grpcweb;use_ssl={value}")
    )
    assert channel.base_url.startswith(f"{scheme}://")
