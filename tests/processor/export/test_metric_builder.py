"""Metric builder: points → one OTLP request, one ResourceMetrics per source service."""

from __future__ import annotations

from opentelemetry.proto.metrics.v1 import metrics_pb2

from gensight.processor.export.metric_builder import SCOPE_NAME, build_request, flatten, series_attributes
from gensight.processor.points import GAUGE, HISTOGRAM, SUM, Exemplar, HistogramValue, MetricPoint
from gensight.processor.records import OVERFLOW_KEY, SeriesKey


def test_points_group_by_service_then_metric_name():
    a = series_attributes(SeriesKey("checkout", "chat", "openai", "gpt-4o"))
    b = series_attributes(SeriesKey("search", "retrieval", "chroma", "kb"))
    req = build_request([
        MetricPoint("gensight.calls", SUM, "{call}", "checkout", (*a, ("outcome", "ok")), 3.0, 0, 60),
        MetricPoint("gensight.sli.availability", GAUGE, "1", "search", b, 1.0, 0, 60),
        MetricPoint("gensight.calls", SUM, "{call}", "checkout", (*a, ("outcome", "error"), ("error.type", "E")), 1.0, 0, 60),
    ])
    services = [rm.resource.attributes[0].value.string_value for rm in req.resource_metrics]
    assert services == ["checkout", "search"]
    sm = req.resource_metrics[0].scope_metrics[0]
    assert sm.scope.name == SCOPE_NAME and [m.name for m in sm.metrics] == ["gensight.calls"]
    calls = sm.metrics[0]
    assert calls.unit == "{call}" and calls.sum.is_monotonic
    assert calls.sum.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    assert len(calls.sum.data_points) == 2


def test_target_attribute_depends_on_kind():
    assert dict(series_attributes(SeriesKey("s", "execute_tool", "", "lookup")))["gen_ai.tool.name"] == "lookup"
    assert dict(series_attributes(SeriesKey("s", "retrieval", "", "kb")))["gen_ai.data_source.id"] == "kb"
    assert dict(series_attributes(SeriesKey("s", "embeddings", "openai", "m")))["gen_ai.request.model"] == "m"


def test_overflow_series_carries_only_the_boolean_flag():
    req = build_request([MetricPoint("gensight.sli.availability", GAUGE, "1", OVERFLOW_KEY.service,
                                     series_attributes(OVERFLOW_KEY), 0.5, 0, 60)])
    dp = req.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    assert [(kv.key, kv.value.bool_value) for kv in dp.attributes] == [("otel.metric.overflow", True)]


def test_histogram_point_keeps_buckets_min_max_and_times():
    h = HistogramValue(3, 1.5, (1, 2, 0), (0.1, 1.0), 0.05, 0.9)
    req = build_request([MetricPoint("gensight.call.duration", HISTOGRAM, "s", "svc", (), h, 10, 70)])
    m = req.resource_metrics[0].scope_metrics[0].metrics[0]
    dp = m.histogram.data_points[0]
    assert (dp.count, dp.sum, list(dp.bucket_counts), list(dp.explicit_bounds)) == (3, 1.5, [1, 2, 0], [0.1, 1.0])
    assert (dp.min, dp.max, dp.start_time_unix_nano, dp.time_unix_nano) == (0.05, 0.9, 10, 70)
    assert flatten(req) == [("svc", "gensight.call.duration", (), (3, 1.5, (1, 2, 0)))]


def test_histogram_exemplars_become_otlp_exemplars_with_trace_and_span_ids():
    ex = Exemplar(0.9, 65, b"\x0a" * 16, b"\x0b" * 8)
    h = HistogramValue(3, 1.5, (1, 2, 0), (0.1, 1.0), 0.05, 0.9, (ex,))
    req = build_request([MetricPoint("gensight.call.duration", HISTOGRAM, "s", "svc", (), h, 10, 70)])
    (e,) = req.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0].exemplars
    assert (e.as_double, e.time_unix_nano, e.trace_id, e.span_id) == (0.9, 65, b"\x0a" * 16, b"\x0b" * 8)
