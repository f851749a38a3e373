"""The one sink interface: every sink is a ``Sink``; other objects are adopted once."""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from gensight.processor.config import config_from_mapping
from gensight.processor.export.jsonlines import JsonLinesSink
from gensight.processor.export.otlp import OtlpSink
from gensight.processor.export.prometheus import PrometheusEndpoint
from gensight.processor.export.sink import Sink, as_sink
from gensight.processor.pipeline.pipeline import Pipeline
from gensight.processor.server import ProcessorServer


class Recording(Sink):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def export(self, request) -> bool:
        self.calls.append("export")
        return True

    def export_logs(self, request) -> bool:
        self.calls.append("export_logs")
        return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        self.calls.append("shutdown")
        return True


def test_every_processor_sink_is_a_sink():
    assert all(issubclass(cls, Sink) for cls in (OtlpSink, PrometheusEndpoint, JsonLinesSink))


def test_a_sink_is_used_as_is_and_an_export_only_object_is_adopted():
    sink = Recording()
    assert as_sink(sink) is sink

    class ExportOnly:
        def __init__(self) -> None:
            self.requests: list = []

        def export(self, request):
            self.requests.append(request)

    plain = ExportOnly()
    adopted = as_sink(plain)
    assert adopted.export("r") is False and plain.requests == ["r"]  # None from the object: not confirmed
    assert adopted.export_logs(ExportLogsServiceRequest()) is False
    assert adopted.force_flush() and adopted.shutdown() and adopted.delivery_stats() is None and adopted.port == 0


def test_alert_logs_reach_every_sink_and_skip_metrics_only_ones():
    sink, plain_logs = Recording(), []

    class MetricsOnly:
        def export(self, request):
            return True

    class WithLogs:
        def export(self, request):
            return True

        def export_logs(self, request):
            plain_logs.append(request)
            return True

    p = Pipeline(config_from_mapping({}), [sink, MetricsOnly(), WithLogs()], live=False, analysers=[])
    p.context.emit_logs(ExportLogsServiceRequest())
    assert sink.calls == ["export_logs"] and len(plain_logs) == 1


def test_server_starts_and_shuts_down_its_sinks():
    sink = Recording()
    srv = ProcessorServer(config_from_mapping({"receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None}}),
                          sinks=[sink], analysers=[])
    srv.start()
    assert sink.calls == ["start"]
    srv.stop()
    assert sink.calls == ["start", "shutdown"]


def test_server_reports_the_port_of_a_listening_sink():
    cfg = config_from_mapping({"receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None}})
    prom = PrometheusEndpoint(config_from_mapping({"prometheus": {"endpoint": "127.0.0.1:0"}}).prometheus)
    srv = ProcessorServer(cfg, sinks=[prom], analysers=[])
    srv.start()
    try:
        assert srv.prometheus_port == prom.port > 0
    finally:
        srv.stop()
