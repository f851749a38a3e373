"""Shared fixtures for processor tests.

proc-pipeline section: OTLP span requests in each instrumentation's attribute dialect.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

T0_NS = 1_700_000_040_000_000_000  # a minute boundary (divisible by 60 s)


def _set_any(av: Any, value: Any) -> None:
    if isinstance(value, bool):
        av.bool_value = value
    elif isinstance(value, int):
        av.int_value = value
    elif isinstance(value, float):
        av.double_value = value
    elif isinstance(value, (list, tuple)):
        for v in value:
            _set_any(av.array_value.values.add(), v)
    else:
        av.string_value = str(value)


def build_request(spans: list[dict[str, Any]], service: str | None = "chat-app",
                  resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    """One OTLP request holding ``spans``; each is a dict of attributes plus the optional
    pseudo-keys ``_start`` / ``_end`` (ns), ``_status`` (0 unset, 1 ok, 2 error), ``_name``."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    res_attrs = dict(resource or {})
    if service is not None:
        res_attrs["service.name"] = service
    for k, v in res_attrs.items():
        kv = rs.resource.attributes.add()
        kv.key = k
        _set_any(kv.value, v)
    ss = rs.scope_spans.add()
    ss.scope.name = "test"
    for i, spec in enumerate(spans):
        s = ss.spans.add()
        s.trace_id = os.urandom(16)
        s.span_id = os.urandom(8)
        s.name = spec.get("_name", "span")
        s.kind = 3
        s.start_time_unix_nano = spec.get("_start", T0_NS + i * 1_000_000)
        s.end_time_unix_nano = spec.get("_end", s.start_time_unix_nano + 500_000_000)
        s.status.code = spec.get("_status", 0)
        for k, v in spec.items():
            if k.startswith("_"):
                continue
            kv = s.attributes.add()
            kv.key = k
            _set_any(kv.value, v)
    return req


def chat_span(model: str = "gpt-4o-mini", *, start: int = T0_NS, duration_s: float = 0.5,
              input_tokens: int = 100, output_tokens: int = 20, error: str | None = None,
              **extra: Any) -> dict[str, Any]:
    """A Gensight / current-semconv chat span."""
    spec: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "_start": start,
        "_end": start + int(duration_s * 1e9),
    }
    if error:
        spec["error.type"] = error
        spec["_status"] = 2
    spec.update(extra)
    return spec


@pytest.fixture
def otlp():
    """Builders: ``otlp.request(spans, service=...)``, ``otlp.chat(...)``, ``otlp.T0_NS``."""

    class _O:
        request = staticmethod(build_request)
        chat = staticmethod(chat_span)

    _O.T0_NS = T0_NS  # type: ignore[attr-defined]
    return _O
