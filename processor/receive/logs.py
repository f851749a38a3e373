"""Decode OTLP logs requests (``ExportLogsServiceRequest``): protobuf, OTLP/JSON, gzip.

Why a logs endpoint at all: evaluation results (``gen_ai.evaluation.result``) are emitted through
the Logs/Events API, so the processor accepts ``LogsService/Export`` (gRPC) and ``POST /v1/logs``
(HTTP) with the same limits, auth and back-pressure as traces. Same rules as ``decode.py``: every
failure is a ``DecodeError`` with a message safe to return to the client; OTLP/JSON ids are hex.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import message as _pb_message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from gensight.processor.receive.decode import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    DecodeError,
    fill_from_otlp_json,
    gunzip,
    json_loads,
)

__all__ = ["ExportLogsServiceResponse", "count_log_records", "decode_logs_request", "is_logs_line",
           "logs_request_from_dict", "logs_request_from_protobuf"]

LOGS_KEYS = ("resourceLogs", "resource_logs")


def logs_request_from_protobuf(data: bytes) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    try:
        req.ParseFromString(data)
    except _pb_message.DecodeError as exc:
        raise DecodeError(f"invalid protobuf ExportLogsServiceRequest: {exc}") from None
    except RecursionError:
        raise DecodeError("invalid protobuf ExportLogsServiceRequest: nesting too deep") from None
    return req


def logs_request_from_dict(obj: Any) -> ExportLogsServiceRequest:
    """A request from parsed OTLP/JSON (hex ids, int or string int64s, camel or snake case)."""
    if not isinstance(obj, dict):
        raise DecodeError(f"OTLP/JSON request must be a JSON object, not {type(obj).__name__}")
    req = ExportLogsServiceRequest()
    fill_from_otlp_json(req, obj)
    return req


def is_logs_line(obj: Any) -> bool:
    """A parsed JSON-lines object that holds logs (the Collector file exporter writes one signal per line)."""
    return isinstance(obj, dict) and any(k in obj for k in LOGS_KEYS)


def decode_logs_request(data: bytes, *, encoding: str = "protobuf", gzip: bool = False,
                        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> ExportLogsServiceRequest:
    if gzip:
        data = gunzip(data, max_decompressed_bytes)
    if encoding == "protobuf":
        return logs_request_from_protobuf(data)
    if encoding == "json":
        try:
            obj = json_loads(data)
        except RecursionError:
            raise DecodeError("invalid JSON: nesting too deep") from None
        except (ValueError, TypeError) as exc:
            raise DecodeError(f"invalid JSON: {exc}") from None
        return logs_request_from_dict(obj)
    raise DecodeError(f"unsupported encoding {encoding!r} (expected 'protobuf' or 'json')")


def count_log_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
