"""Export: metric points become OTLP requests and leave through the sinks.

``metric_builder`` turns points into ``ExportMetricsServiceRequest`` s; the sinks deliver them, each
a ``Sink`` (``sink.py``: start, export, export_logs, force_flush, shutdown, delivery_stats):
``OtlpSink`` / ``OtlpExporter`` (gRPC / HTTP, bounded buffer + retry; settings in
``otlp_settings``, transports in ``otlp_transport``), ``PrometheusEndpoint`` (scrape),
``JsonLinesSink`` (files). ``report_html`` writes the ``gensight compare --html`` report."""

from __future__ import annotations

from gensight._lazy import lazy_exports

__all__ = ["ExporterConfig", "JsonLinesSink", "OtlpExporter", "OtlpSink", "PrometheusConfig", "PrometheusEndpoint", "Sink", "as_sink", "build_request", "data_points", "series_attributes", "write_report"]

_EXPORTS = {
    "build_request": "gensight.processor.export.metric_builder",
    "data_points": "gensight.processor.export.metric_builder",
    "series_attributes": "gensight.processor.export.metric_builder",
    "ExporterConfig": "gensight.processor.export.otlp_settings",
    "OtlpExporter": "gensight.processor.export.otlp",
    "OtlpSink": "gensight.processor.export.otlp",
    "Sink": "gensight.processor.export.sink",
    "as_sink": "gensight.processor.export.sink",
    "JsonLinesSink": "gensight.processor.export.jsonlines",
    "PrometheusConfig": "gensight.processor.export.prometheus",
    "PrometheusEndpoint": "gensight.processor.export.prometheus",
    "write_report": "gensight.processor.export.report_html",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
