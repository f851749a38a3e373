"""Decode OTLP logs requests (``ExportLogsServiceRequest``): protobuf, OTLP/JSON, gzip.

Why a logs endpoint at all: evaluation results (``gen_ai.evaluation.result``) are emitted through
the Logs/Events API, so the processor accepts ``LogsService/Export`` (gRPC) and ``POST /v1/logs``
(HTTP) with the same limits, auth and back-pressure as traces. Same rules as ``decode.py``: every
failure is a ``DecodeError`` with a message safe to return to the client; OTLP/JSON ids are hex.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from gensight.processor.receive.decode import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    decode_message,
    message_from_dict,
    message_from_protobuf,
)

__all__ = ["ExportLogsServiceResponse", "count_log_records", "decode_logs_request", "is_logs_line",
           "logs_request_from_dict", "logs_request_from_protobuf"]

LOGS_KEYS = ("resourceLogs", "resource_logs")


def logs_request_from_protobuf(data: bytes) -> ExportLogsServiceRequest:
    return message_from_protobuf(ExportLogsServiceRequest, data)


def logs_request_from_dict(obj: Any) -> ExportLogsServiceRequest:
    """A request from parsed OTLP/JSON (hex ids, int or string int64s, camel or snake case)."""
    return message_from_dict(ExportLogsServiceRequest, obj)


def is_logs_line(obj: Any) -> bool:
    """A parsed JSON-lines object that holds logs (the Collector file exporter writes one signal per line)."""
    return isinstance(obj, dict) and any(k in obj for k in LOGS_KEYS)


def decode_logs_request(data: bytes, *, encoding: str = "protobuf", gzip: bool = False,
                        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> ExportLogsServiceRequest:
    return decode_message(ExportLogsServiceRequest, data, encoding=encoding, gzip=gzip,
                          max_decompressed_bytes=max_decompressed_bytes)


def count_log_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
