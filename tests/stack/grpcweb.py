"""A minimal grpc-web client for the stack tests (stdlib HTTP, upstream's protobufs).

Deliberately independent of pyspark_web's own channel: these tests check Envoy and Spark,
and must not pass or fail with the code they will later carry.
"""

import http.client
import ssl
import struct
import urllib.parse
import uuid
from dataclasses import dataclass, field

import pyspark.sql.connect.proto as pb2

SERVICE = "/spark.connect.SparkConnectService/"


@dataclass
class Reply:
    http_status: int
    headers: dict
    messages: list = field(default_factory=list)  # payloads of data frames, in order
    trailers: dict = field(default_factory=dict)

    @property
    def grpc_status(self):
        value = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        return None if value is None else int(value)

    @property
    def grpc_message(self):
        value = self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))
        return urllib.parse.unquote(value)


def frame(message) -> bytes:
    payload = message.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def parse_frames(body: bytes):
    messages, trailers, offset = [], {}, 0
    while offset < len(body):
        flags, length = struct.unpack_from(">BI", body, offset)
        chunk = body[offset + 5 : offset + 5 + length]
        assert len(chunk) == length, "truncated grpc-web frame"
        if flags & 0x80:
            for line in chunk.decode().split("\r\n"):
                if ":" in line:
                    key, value = line.split(":", 1)
                    trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(chunk)
        offset += 5 + length
    return messages, trailers


def call(port, method, message, headers=None, tls_ca=None, host="127.0.0.1"):
    if tls_ca:
        context = ssl.create_default_context(cafile=str(tls_ca))
        connection = http.client.HTTPSConnection(host, port, context=context, timeout=60)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=60)
    all_headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}
    all_headers.update(headers or {})
    try:
        connection.request("POST", SERVICE + method, body=frame(message), headers=all_headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()})
    if reply.headers.get("content-type", "").startswith("application/grpc-web"):
        reply.messages, reply.trailers = parse_frames(body)
    return reply


# The user of these requests; with the prod config, a valid token's sub must be the same.
USER_ID = "pyspark-web-tests"


def session_fields():
    return {
        "session_id": str(uuid.uuid4()),
        "user_context": pb2.UserContext(user_id=USER_ID),
        "client_type": "pyspark-web stack tests",
    }


def spark_version_request():
    request = pb2.AnalyzePlanRequest(**session_fields())
    request.spark_version.SetInParent()
    return request


def range_request(end):
    request = pb2.ExecutePlanRequest(**session_fields())
    request.plan.root.range.start = 0
    request.plan.root.range.end = end
    request.plan.root.range.step = 1
    return request
