"""Raw OTLP clients for hostile requests: bytes on the wire exactly as given.

The SDK exporters cannot send malformed requests, so these talk gRPC with an identity serializer
(the request is raw bytes) and HTTP with ``http.client`` (headers exactly as given).
"""

from __future__ import annotations

import http.client
from typing import NamedTuple

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MAX_MESSAGE_BYTES = 64 << 20  # the client may send more than the server accepts


class Answer(NamedTuple):
    transport: str  # grpc | http
    ok: bool  # gRPC OK / HTTP 2xx
    code: str  # gRPC status name or HTTP status as a string
    rejected_spans: int  # partial_success.rejected_spans (0 when not OK)
    message: str  # partial_success.error_message or the error details
    retry_after: str | None = None  # HTTP Retry-After / gRPC RetryInfo present ("retryinfo")


def grpc_channel(target: str, credentials: grpc.ChannelCredentials | None = None,
                 options: list[tuple[str, object]] | None = None) -> grpc.Channel:
    opts = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES), ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
    opts += options or []
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options=opts)
    return grpc.insecure_channel(target, options=opts)


def send_grpc(channel: grpc.Channel, body: bytes, *, timeout_s: float = 30.0,
              metadata: tuple[tuple[str, str], ...] | None = None) -> Answer:
    call = channel.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None)
    try:
        raw, rpc = call.with_call(body, timeout=timeout_s, metadata=metadata)
    except grpc.RpcError as err:
        code = err.code()  # type: ignore[attr-defined]
        trailers = err.trailing_metadata() or ()  # type: ignore[attr-defined]
        retry = "retryinfo" if any(k == "grpc-status-details-bin" for k, _ in trailers) else None
        return Answer("grpc", False, code.name, 0, err.details() or "", retry)  # type: ignore[attr-defined]
    resp = ExportTraceServiceResponse.FromString(raw)
    ps = resp.partial_success
    return Answer("grpc", True, "OK", ps.rejected_spans, ps.error_message)


def send_http(port: int, body: bytes, *, content_type: str = "application/x-protobuf",
              content_encoding: str | None = None, path: str = "/v1/traces", host: str = "127.0.0.1",
              headers: dict[str, str] | None = None, timeout_s: float = 30.0,
              connection: http.client.HTTPConnection | None = None) -> Answer:
    conn = connection or http.client.HTTPConnection(host, port, timeout=timeout_s)
    hdrs = dict(headers or {})
    if content_type:
        hdrs["Content-Type"] = content_type
    if content_encoding:
        hdrs["Content-Encoding"] = content_encoding
    try:
        try:
            conn.request("POST", path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            # the server answered and closed before reading the whole body (413/415/401):
            # its response is still in our receive buffer
            pass
        try:
            resp = conn.getresponse()
        except (ConnectionError, http.client.HTTPException) as exc:
            return Answer("http", False, "connection-closed", 0, repr(exc))
        data = resp.read()
        status = resp.status
        ctype = resp.getheader("Content-Type", "") or ""
        retry_after = resp.getheader("Retry-After")
    finally:
        if connection is None:
            conn.close()
    rejected, message = 0, ""
    if 200 <= status < 300 and data:
        if "json" in ctype:
            import json

            obj = json.loads(data)
            ps = obj.get("partialSuccess") or obj.get("partial_success") or {}
            rejected = int(ps.get("rejectedSpans", ps.get("rejected_spans", 0)) or 0)
            message = ps.get("errorMessage", ps.get("error_message", "")) or ""
        else:
            resp_pb = ExportTraceServiceResponse.FromString(data)
            rejected, message = resp_pb.partial_success.rejected_spans, resp_pb.partial_success.error_message
    elif not 200 <= status < 300:
        message = data[:500].decode("utf-8", "replace")
    return Answer("http", 200 <= status < 300, str(status), rejected, message, retry_after)


def http_get(port: int, path: str, *, host: str = "127.0.0.1", headers: dict[str, str] | None = None,
             timeout_s: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def grpc_health(channel: grpc.Channel, service: str = "", timeout_s: float = 10.0) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
