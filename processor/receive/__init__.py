"""Receive: the OTLP/gRPC and OTLP/HTTP receivers and what guards them.

Untrusted bytes come in here and leave as decoded requests handed to a ``Consumer``
(``consumer(request, raw) -> Admission``); the receivers translate the ``Admission`` into the
protocol's answer (OK, partial success, RESOURCE_EXHAUSTED + RetryInfo, 503 + Retry-After).
Also here: the processor's HTTP server (aiohttp, bounded; every HTTP endpoint runs on it), TLS and bearer-token auth, and decoding (protobuf, OTLP/JSON,
gzip, JSON lines files), strict first and lenient when only per-span defects stand in the way
(``lenient.py``, ``repair.py``: invalid UTF-8 repaired, undecodable spans rejected alone)."""

from __future__ import annotations

from gensight._lazy import lazy_exports

__all__ = ["Admission", "AuthConfig", "BadLine", "BearerAuthenticator", "Consumer", "DecodeError", "Decoded", "Defects", "GrpcReceiver", "GrpcReceiverConfig", "HttpReceiver", "HttpReceiverConfig", "HttpServer", "QueueConsumer", "TlsConfig", "TooLargeError", "count_spans", "decode_request", "decode_trace_request", "iter_decoded_lines", "iter_json_lines", "message_to_otlp_json", "parse_endpoint"]

_EXPORTS = {
    "Admission": "gensight.processor.receive.admission",
    "Consumer": "gensight.processor.receive.admission",
    "QueueConsumer": "gensight.processor.receive.admission",
    "count_spans": "gensight.processor.receive.admission",
    "Defects": "gensight.processor.receive.admission",
    "Decoded": "gensight.processor.receive.lenient",
    "decode_request": "gensight.processor.receive.lenient",
    "iter_decoded_lines": "gensight.processor.receive.lenient",
    "BadLine": "gensight.processor.receive.json_lines",
    "DecodeError": "gensight.processor.receive.decode",
    "TooLargeError": "gensight.processor.receive.decode",
    "decode_trace_request": "gensight.processor.receive.decode",
    "iter_json_lines": "gensight.processor.receive.json_lines",
    "message_to_otlp_json": "gensight.processor.receive.decode",
    "GrpcReceiver": "gensight.processor.receive.grpc_receiver",
    "GrpcReceiverConfig": "gensight.processor.receive.grpc_receiver",
    "parse_endpoint": "gensight.processor.endpoint",
    "HttpReceiver": "gensight.processor.receive.http_receiver",
    "HttpReceiverConfig": "gensight.processor.receive.http_receiver",
    "HttpServer": "gensight.processor.receive.http_server",
    "AuthConfig": "gensight.processor.receive.tls",
    "BearerAuthenticator": "gensight.processor.receive.tls",
    "TlsConfig": "gensight.processor.receive.tls",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
