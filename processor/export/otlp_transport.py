"""OTLP transports: one request over gRPC (generated stubs) or HTTP (``urllib``), and its outcome.

A transport sends once and classifies the answer; retrying, buffering and counting are the
exporter's (``otlp.py``). Retryable: gRPC UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
DATA_LOSS, CANCELLED, and RESOURCE_EXHAUSTED only when the server sent RetryInfo; HTTP
429/502/503/504 and connection errors. The server's RetryInfo / Retry-After is returned with it.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, NamedTuple

from google.protobuf import json_format
from google.protobuf import message as _pb_message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from gensight.processor.export.otlp_settings import HTTP_JSON, ExporterSettings
from gensight.processor.receive.decode import message_to_otlp_json

RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})
_RETRYABLE_GRPC_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "DATA_LOSS", "CANCELLED"})
_GRPC_METHODS = {
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_RESPONSES: dict[str, type[_pb_message.Message]] = {
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}


class Outcome(NamedTuple):
    ok: bool
    retryable: bool = False
    retry_after_s: float | None = None
    rejected_items: int = 0
    detail: str = ""


def count_items(request: _pb_message.Message) -> int:
    """Data points in a metrics request, log records in a logs request."""
    if isinstance(request, ExportMetricsServiceRequest):
        n = 0
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind is not None:
                        n += len(getattr(m, kind).data_points)
        return n
    if isinstance(request, ExportLogsServiceRequest):
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    raise TypeError(f"cannot export {type(request).__name__}")


class GrpcTransport:
    def __init__(self, s: ExporterSettings, initial_backoff_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        import grpc

        self._grpc = grpc
        self._settings = s
        # the channel's own reconnect backoff (default up to 120 s) would delay delivery long after
        # the backend is back; keep it in step with our retry backoff
        options = [
            ("grpc.initial_reconnect_backoff_ms", max(100, int(initial_backoff_s * 1000))),
            ("grpc.min_reconnect_backoff_ms", max(100, int(initial_backoff_s * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(100, int(max_backoff_s * 1000))),
        ]
        if s.insecure:
            self._channel = grpc.insecure_channel(s.endpoint, options=options)
        else:
            root = key = chain = None
            if s.certificate_file:
                with open(s.certificate_file, "rb") as f:
                    root = f.read()
            if s.client_key_file and s.client_certificate_file:
                with open(s.client_key_file, "rb") as f:
                    key = f.read()
                with open(s.client_certificate_file, "rb") as f:
                    chain = f.read()
            creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
            self._channel = grpc.secure_channel(s.endpoint, creds, options=options)
        self._response = _RESPONSES[s.signal]
        self._call = self._channel.unary_unary(
            _GRPC_METHODS[s.signal],
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self._response.FromString,
        )
        self._metadata = tuple((k.lower(), v) for k, v in s.headers.items())
        self._compression = grpc.Compression.Gzip if s.compression == "gzip" else None

    def send(self, request: _pb_message.Message) -> Outcome:
        grpc = self._grpc
        try:
            response = self._call(
                request, timeout=self._settings.timeout_s, metadata=self._metadata, compression=self._compression
            )
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            name = code.name if code is not None else "UNKNOWN"
            delay = _grpc_retry_delay(err)
            retryable = name in _RETRYABLE_GRPC_CODES or (name == "RESOURCE_EXHAUSTED" and delay is not None)
            details = err.details() if hasattr(err, "details") else ""
            return Outcome(False, retryable, delay, detail=f"gRPC {name}: {details}")
        ps = response.partial_success
        rejected = getattr(ps, "rejected_data_points", 0) or getattr(ps, "rejected_log_records", 0)
        return Outcome(True, rejected_items=int(rejected), detail=ps.error_message)

    def close(self) -> None:
        self._channel.close()


def _grpc_retry_delay(err: Any) -> float | None:
    """RetryInfo from the status details, or from the ``google.rpc.retryinfo-bin`` trailer."""
    from google.rpc import error_details_pb2, status_pb2

    try:
        trailers = dict(err.trailing_metadata() or ())
    except Exception:
        return None
    info = error_details_pb2.RetryInfo()
    raw = trailers.get("grpc-status-details-bin")
    if raw:
        try:
            status = status_pb2.Status.FromString(raw)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    detail.Unpack(info)
                    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        except _pb_message.DecodeError:
            pass
    raw = trailers.get("google.rpc.retryinfo-bin")
    if raw:
        try:
            info.ParseFromString(raw)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        except _pb_message.DecodeError:
            pass
    return None


class HttpTransport:
    def __init__(self, s: ExporterSettings) -> None:
        self._settings = s
        self._response = _RESPONSES[s.signal]
        handlers: list[Any] = []
        if s.endpoint.startswith("https://"):
            ctx = ssl.create_default_context(cafile=s.certificate_file)
            if s.client_certificate_file and s.client_key_file:
                ctx.load_cert_chain(s.client_certificate_file, s.client_key_file)
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        self._opener = urllib.request.build_opener(*handlers)
        self._json = s.protocol == HTTP_JSON
        content_type = "application/json" if self._json else "application/x-protobuf"
        self._headers = {"Content-Type": content_type, "User-Agent": "gensight-processor"}
        self._headers.update(s.headers)
        if s.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"

    def send(self, request: _pb_message.Message) -> Outcome:
        if self._json:
            body = json.dumps(message_to_otlp_json(request), separators=(",", ":")).encode()
        else:
            body = request.SerializeToString()
        if self._settings.compression == "gzip":
            body = gzip.compress(body, compresslevel=5)
        req = urllib.request.Request(self._settings.endpoint, data=body, headers=self._headers, method="POST")
        try:
            with self._opener.open(req, timeout=self._settings.timeout_s) as resp:
                data = resp.read()
        except urllib.error.HTTPError as err:
            retryable = err.code in RETRYABLE_HTTP_STATUSES
            delay = _parse_retry_after(err.headers.get("Retry-After")) if retryable else None
            try:
                err.read()
            except OSError:
                pass
            return Outcome(False, retryable, delay, detail=f"HTTP {err.code}")
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            return Outcome(False, True, detail=f"connection error: {err}")
        rejected, message = 0, ""
        if data:
            try:
                if self._json:
                    parsed = self._response()
                    json_format.Parse(data, parsed, ignore_unknown_fields=True)
                else:
                    parsed = self._response.FromString(data)
                ps = parsed.partial_success  # type: ignore[attr-defined]
                rejected = int(getattr(ps, "rejected_data_points", 0) or getattr(ps, "rejected_log_records", 0))
                message = ps.error_message
            except (_pb_message.DecodeError, json_format.ParseError, ValueError):
                pass
        return Outcome(True, rejected_items=rejected, detail=message)

    def close(self) -> None:
        pass


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None
