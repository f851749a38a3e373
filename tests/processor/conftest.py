"""Shared fixtures for processor tests.

proc-ingest section: OTLP requests built by the real OTel SDK, self-signed certificates.
proc-pipeline section: OTLP span requests in each instrumentation's attribute dialect.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from otlp_wire import key_value


def make_sdk_spans(n: int = 3, service: str = "chat-app", model: str = "gpt-4o-mini") -> list[ReadableSpan]:
    """Finished GenAI spans from the real SDK (the objects OTLPSpanExporter.export takes)."""
    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("gensight.test")
    for i in range(n):
        with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.usage.input_tokens", 10 + i)
            span.set_attribute("gen_ai.usage.output_tokens", 5)
    provider.shutdown()
    return list(mem.get_finished_spans())


def make_trace_request(n: int = 3, service: str = "chat-app") -> ExportTraceServiceRequest:
    return encode_spans(make_sdk_spans(n, service))


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


class CertFiles(NamedTuple):
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> CertFiles:
    """A throwaway CA, a server cert for 127.0.0.1/localhost and a client cert, via the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=gensight-test-ca", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
             "-subj", "/CN=gensight-test-client", cwd=d)
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "client.pem", "-days", "2", cwd=d)
    return CertFiles(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key")


@pytest.fixture
def make_request():
    """``make_request(n=3, service="chat-app") -> ExportTraceServiceRequest`` encoded by the SDK."""
    return make_trace_request


@pytest.fixture
def sdk_spans():
    """``sdk_spans(n=3, service=..., model=...) -> [ReadableSpan]`` for OTLPSpanExporter.export."""
    return make_sdk_spans


# ---------------------------------------------------------------- proc-pipeline section
T0_NS = 1_700_000_040_000_000_000  # a minute boundary (divisible by 60 s)


def build_request(spans: list[dict[str, Any]], service: str | None = "chat-app",
                  resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    """One OTLP request holding ``spans``; each is a dict of attributes plus the optional
    pseudo-keys ``_start`` / ``_end`` (ns), ``_status`` (0 unset, 1 ok, 2 error), ``_name``."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    res_attrs = dict(resource or {})
    if service is not None:
        res_attrs["service.name"] = service
    rs.resource.attributes.extend(key_value(k, v) for k, v in res_attrs.items())
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
        s.attributes.extend(key_value(k, v) for k, v in spec.items() if not k.startswith("_"))
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
