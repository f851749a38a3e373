"""Fixtures: real OTel SDK providers with in-memory exporter/reader, passed explicitly."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gensight import pricing


@pytest.fixture
def span_exporter():
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(span_exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def metric_reader():
    return InMemoryMetricReader()


@pytest.fixture
def meter_provider(metric_reader):
    provider = MeterProvider(metric_readers=[metric_reader])
    yield provider
    provider.shutdown()


@pytest.fixture(autouse=True)
def _fresh_pricing(monkeypatch):
    """Each test sees the bundled table (plus its own GENSIGHT_PRICING_FILE, if it sets one)."""
    monkeypatch.delenv(pricing.PRICING_FILE_ENV, raising=False)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    pricing.reset_default_table()
    yield
    pricing.reset_default_table()


def _metric_points(reader: InMemoryMetricReader) -> dict[str, list]:
    data = reader.get_metrics_data()
    out: dict[str, list] = {}
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


@pytest.fixture
def metric_points(metric_reader):
    """Call it to collect: {metric name: [data points]}."""
    return lambda: _metric_points(metric_reader)


@pytest.fixture(scope="module")
def fake_provider():
    """One fake OpenAI-compatible server per test module (127.0.0.1, ephemeral port)."""
    from gensight.fakes import FakeProvider

    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(fake_provider):
    """The module's fake provider, with its settings reset after each test."""
    yield fake_provider
    fake_provider.configure({
        "latency_s": 0, "latency_per_token_s": 0, "error_rate": 0, "force_status": None,
        "force_status_count": None, "break_stream_after": None, "usage_details": True, "incident": None,
    })


class OtlpReceiver:
    """A tiny real OTLP/gRPC receiver (TraceService + MetricsService) on 127.0.0.1, port 0."""

    def __init__(self):
        import threading
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        self.spans: list = []
        self.metrics: list = []
        self._changed = threading.Condition()
        receiver = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802 - gRPC method name
                with receiver._changed:
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            receiver.spans.extend((rs.resource, s) for s in ss.spans)
                    receiver._changed.notify_all()
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request, context):  # noqa: N802 - gRPC method name
                with receiver._changed:
                    for rm in request.resource_metrics:
                        for sm in rm.scope_metrics:
                            receiver.metrics.extend(sm.metrics)
                    receiver._changed.notify_all()
                return metrics_service_pb2.ExportMetricsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metric_names(self) -> set[str]:
        with self._changed:
            return {m.name for m in self.metrics}

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)


@pytest.fixture
def otlp_receiver():
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()
