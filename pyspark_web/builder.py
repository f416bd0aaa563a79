"""The grpc-web transport of the Spark Connect connection string.

The patched ``DefaultChannelBuilder`` parses ``sc://host:port/;transport=grpcweb;...`` and
the ``http://`` / ``https://`` shorthand, and calls ``create_channel`` (registered as the
``grpcweb`` entry point of ``pyspark.sql.connect.transports``). ``GrpcWebChannelBuilder`` is
the same thing for ``SparkSession.builder.channelBuilder(...)``, with the options a URL
cannot carry (a CA bundle, timeouts).
"""

import ipaddress
import re
from typing import Any

from pyspark.errors import PySparkRuntimeError, PySparkValueError
from pyspark.sql.connect.client.core import ChannelBuilder, DefaultChannelBuilder

from pyspark_web import __version__, notebook
from pyspark_web.channel import GrpcWebChannel
from pyspark_web.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    Transport,
    blocking_mode,
    no_blocking_mode_message,
)

# RFC 9110 token: what a header name may be.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# RFC 9110 field-value, limited to ASCII: visible characters, with spaces and tabs only
# inside. A CR or LF would split the header (or fold it into the next); other control
# characters and non-ASCII text fail in http.client or in the browser's fetch.
_HEADER_VALUE = re.compile(r"^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?\Z")
# RFC 6750 b64token: what a bearer token may be.
_BEARER_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]+=*\Z")
# Headers the channel sets itself, or that HTTP/1.1 reserves.
_RESERVED_HEADERS = {
    "content-type",
    "content-length",
    "accept",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "host",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
}


def _invalid(detail: str) -> PySparkValueError:
    return PySparkValueError(errorClass="INVALID_CONNECT_URL", messageParameters={"detail": detail})


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def request_headers(builder: ChannelBuilder) -> list[tuple[str, str]]:
    """Connection-string parameters that become headers, checked, plus the token."""
    headers = []
    for key, value in builder.metadata():
        name = key.lower()
        if not _HEADER_NAME.match(name) or name in _RESERVED_HEADERS or name.startswith("grpc-"):
            raise _invalid(
                f"Parameter '{key}' cannot be sent as an HTTP header with transport=grpcweb "
                "(not a valid header name, or one the channel sets itself). Please remove it "
                "or rename it, e.g., 'x-spark-tenant=value'."
            )
        if not _HEADER_VALUE.match(value):
            # The value is not quoted: it may be a secret.
            raise _invalid(
                f"The value of parameter '{key}' cannot be sent as an HTTP header: it must be "
                "printable ASCII without line breaks, control characters or leading or "
                "trailing spaces. Please fix the value (it is not shown here)."
            )
        headers.append((name, value))
    token = builder.token
    if token is not None:
        if not _BEARER_TOKEN.match(token):
            raise _invalid(
                "The token is not a bearer token (RFC 6750: letters, digits and '-._~+/', then "
                "optional '=' padding); it is not shown here. Check that it was copied whole "
                "and that the URL percent-encodes nothing else into it."
            )
        headers.append(("authorization", f"Bearer {token}"))
    return headers


def create_channel(
    builder: DefaultChannelBuilder,
    ca_certs: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> GrpcWebChannel:
    """The channel for a builder whose transport is grpcweb (the entry point)."""
    if blocking_mode() is None:
        # At connect time, not on the first query: say what to change.
        raise PySparkRuntimeError(message=no_blocking_mode_message())
    if builder._interceptors:
        raise _invalid(
            "gRPC interceptors need grpcio's native channel; they cannot wrap a grpc-web "
            "channel. Remove the interceptors or use a native sc:// URL."
        )
    use_ssl = builder.getDefault(ChannelBuilder.PARAM_USE_SSL, None)
    if use_ssl is not None and use_ssl.lower() not in ("true", "false"):
        # Upstream reads anything but "true" as plaintext: "1" or "yes" would silently
        # mean the opposite of what was asked.
        raise _invalid(
            f"use_ssl must be 'true' or 'false', not {use_ssl[:16]!r}; for TLS write "
            "';use_ssl=true' or use an https:// URL."
        )
    if builder.token is not None and not builder.use_ssl and not is_loopback(builder.host):
        raise _invalid(
            f"The token would be sent in plaintext to '{builder.host}'. Use TLS, e.g., "
            f"'https://{builder.host}' or ';use_ssl=true'; plaintext is allowed only for "
            "loopback hosts (localhost, 127.0.0.1, ::1)."
        )
    scheme = "https" if builder.use_ssl else "http"
    # Inside IPython (JupyterLite's kernel, Jupyter): progress bars, Stop, readable errors.
    notebook.install()
    return GrpcWebChannel(
        f"{scheme}://{builder.endpoint}",
        headers=request_headers(builder),
        transport=Transport(ca_certs=ca_certs, connect_timeout=connect_timeout),
        user_agent=f"pyspark-web/{__version__}",
    )


class GrpcWebChannelBuilder(DefaultChannelBuilder):
    """A channel builder for grpc-web, for ``SparkSession.builder.channelBuilder(...)``.

    Takes ``http(s)://host[:port]`` or ``sc://host[:port]/;params`` (``transport=grpcweb``
    is implied), plus what a URL cannot carry: ``ca_certs`` (a PEM bundle to verify the
    server with, instead of the system's) and ``connect_timeout`` in seconds.

    >>> from pyspark.sql.connect.session import SparkSession
    >>> spark = SparkSession.builder.channelBuilder(
    ...     GrpcWebChannelBuilder("https://spark.example.com:8443", ca_certs="/etc/ssl/corp.pem")
    ... ).getOrCreate()
    """

    def __init__(
        self,
        url: str,
        channelOptions: list[tuple[str, Any]] | None = None,
        ca_certs: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if url.startswith("sc://"):
            _, _, params = url.partition(";")
            keys = {param.split("=", 1)[0] for param in params.split(";") if param}
            if ChannelBuilder.PARAM_TRANSPORT not in keys:
                separator = "" if params or url.endswith("/") else "/"
                url = f"{url}{separator};{ChannelBuilder.PARAM_TRANSPORT}={self.TRANSPORT_GRPC_WEB}"
        super().__init__(url, channelOptions)
        if self.transport != self.TRANSPORT_GRPC_WEB:
            raise _invalid(
                f"GrpcWebChannelBuilder needs transport=grpcweb, not '{self.transport}'."
            )
        self._ca_certs = ca_certs
        self._connect_timeout = connect_timeout

    def toChannel(self) -> GrpcWebChannel:
        return create_channel(self, ca_certs=self._ca_certs, connect_timeout=self._connect_timeout)
