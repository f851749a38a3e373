"""Export: metric points become OTLP requests and leave through the sinks.

``metric_builder`` turns points into ``ExportMetricsServiceRequest`` s; the sinks deliver them:
``OtlpExporter`` (gRPC / HTTP, bounded buffer + retry), ``PrometheusEndpoint`` (scrape),
``JsonLinesSink`` (files). ``report_html`` writes the ``gensight compare --html`` report."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ExporterConfig", "JsonLinesSink", "OtlpExporter", "PrometheusConfig", "PrometheusEndpoint", "Sink", "build_exporter", "build_request", "series_attributes", "write_report"]

_EXPORTS = {
    "build_request": "gensight.processor.export.metric_builder",
    "series_attributes": "gensight.processor.export.metric_builder",
    "ExporterConfig": "gensight.processor.export.otlp",
    "OtlpExporter": "gensight.processor.export.otlp",
    "Sink": "gensight.processor.export.otlp",
    "build_exporter": "gensight.processor.export.otlp",
    "JsonLinesSink": "gensight.processor.export.jsonlines",
    "PrometheusConfig": "gensight.processor.export.prometheus",
    "PrometheusEndpoint": "gensight.processor.export.prometheus",
    "write_report": "gensight.processor.export.report_html",
}


def __getattr__(name: str) -> Any:
    """Import on first use (PEP 562): a stage's package stays cheap to import and free of cycles."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
