"""Metric builder: ``MetricPoint`` s → one OTLP ``ExportMetricsServiceRequest``.

Why the source service is the *resource*: dashboards and Prometheus' ``job`` label should show
the application's service, as the Collector's spanmetrics connector does. So points are grouped
into one ``ResourceMetrics`` per source service (``service.name``), one scope
(``gensight.processor``), one ``Metric`` per name; the series key travels as data point
attributes. Analysers build those attributes with ``series_attributes`` so every metric of a
series carries exactly the same key attributes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from gensight._version import __version__
from gensight.processor.points import GAUGE, HISTOGRAM, SUM, Attributes, HistogramValue, MetricPoint
from gensight.processor.records import EXECUTE_TOOL, OVERFLOW, RETRIEVAL, SeriesKey

SCOPE_NAME = "gensight.processor"
DEFAULT_SELF_SERVICE = "gensight-processor"
OVERFLOW_ATTRIBUTE = "otel.metric.overflow"
OVERFLOW_ATTRIBUTES: Attributes = ((OVERFLOW_ATTRIBUTE, True),)
_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE

_attr_cache: dict[SeriesKey, Attributes] = {}
_MAX_ATTR_CACHE = 20_000


def self_service_name(environ: dict[str, str] | None = None) -> str:
    """The processor's own ``service.name`` for self-telemetry."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SERVICE_NAME") or DEFAULT_SELF_SERVICE


def target_attribute(kind: str) -> str:
    if kind == EXECUTE_TOOL:
        return "gen_ai.tool.name"
    if kind == RETRIEVAL:
        return "gen_ai.data_source.id"
    return "gen_ai.request.model"


def series_attributes(key: SeriesKey) -> Attributes:
    """Data point attributes identifying ``key``; the overflow series gets only the overflow flag."""
    attrs = _attr_cache.get(key)
    if attrs is None:
        if key.service == OVERFLOW:
            attrs = OVERFLOW_ATTRIBUTES
        else:
            attrs = (
                ("gen_ai.operation.name", key.kind),
                ("gen_ai.provider.name", key.provider),
                (target_attribute(key.kind), key.target),
            )
        if len(_attr_cache) >= _MAX_ATTR_CACHE:
            _attr_cache.clear()
        _attr_cache[key] = attrs
    return attrs


def _set_attributes(target: Any, attrs: Attributes) -> None:
    for k, v in attrs:
        kv = target.add()
        kv.key = k
        if isinstance(v, bool):
            kv.value.bool_value = v
        elif isinstance(v, int):
            kv.value.int_value = v
        elif isinstance(v, float):
            kv.value.double_value = v
        else:
            kv.value.string_value = str(v)


# Serialized attribute lists, merged into data points with MergeFromString: a C-level parse of a
# few bytes instead of ~4 protobuf-API calls per attribute (the metric builder's main cost at
# window close). Keyed by data point type, because the attributes' field number differs.
_attr_bytes: dict[tuple[bool, Attributes], bytes] = {}
_MAX_ATTR_BYTES_CACHE = 50_000


def _attributes_bytes(histogram: bool, attrs: Attributes) -> bytes:
    key = (histogram, attrs)
    b = _attr_bytes.get(key)
    if b is None:
        dp = metrics_pb2.HistogramDataPoint() if histogram else metrics_pb2.NumberDataPoint()
        _set_attributes(dp.attributes, attrs)
        b = dp.SerializeToString()
        if len(_attr_bytes) >= _MAX_ATTR_BYTES_CACHE:
            _attr_bytes.clear()
        _attr_bytes[key] = b
    return b


def _resource(req: ExportMetricsServiceRequest, service: str) -> Any:
    rm = req.resource_metrics.add()
    kv: KeyValue = rm.resource.attributes.add()
    kv.key = "service.name"
    kv.value.string_value = service
    sm = rm.scope_metrics.add()
    sm.scope.name = SCOPE_NAME
    sm.scope.version = __version__
    return sm


def build_request(points: Iterable[MetricPoint]) -> ExportMetricsServiceRequest:
    """Group ``points`` by service and metric name (first-seen order, so output is deterministic
    for a deterministic input)."""
    req = ExportMetricsServiceRequest()
    by_service: dict[str, dict[str, Any]] = {}
    scopes: dict[str, Any] = {}
    for p in points:
        metrics = by_service.get(p.service)
        if metrics is None:
            metrics = by_service[p.service] = {}
            scopes[p.service] = _resource(req, p.service)
        m = metrics.get(p.name)
        if m is None:
            m = metrics[p.name] = scopes[p.service].metrics.add()
            m.name = p.name
            m.unit = p.unit
            if p.kind == SUM:
                m.sum.aggregation_temporality = _CUMULATIVE
                m.sum.is_monotonic = p.monotonic
            elif p.kind == HISTOGRAM:
                m.histogram.aggregation_temporality = _CUMULATIVE
            elif p.kind != GAUGE:
                raise ValueError(f"unknown metric kind {p.kind!r} for {p.name}")
        if p.kind == HISTOGRAM:
            h: HistogramValue = p.value  # type: ignore[assignment]
            dp = m.histogram.data_points.add()
            if p.attributes:
                dp.MergeFromString(_attributes_bytes(True, p.attributes))
            dp.count = h.total
            dp.sum = h.sum
            dp.bucket_counts.extend(h.bucket_counts)
            dp.explicit_bounds.extend(h.explicit_bounds)
            if h.min is not None and h.total:
                dp.min = h.min
            if h.max is not None and h.total:
                dp.max = h.max
            for ex in h.exemplars:
                e = dp.exemplars.add()
                e.as_double = ex.value
                e.time_unix_nano = ex.time_ns
                e.trace_id = ex.trace_id
                e.span_id = ex.span_id
        else:
            dp = (m.sum if p.kind == SUM else m.gauge).data_points.add()
            if p.attributes:
                dp.MergeFromString(_attributes_bytes(False, p.attributes))
            dp.as_double = float(p.value)  # type: ignore[arg-type]
        dp.start_time_unix_nano = p.start_ns
        dp.time_unix_nano = p.time_ns
    return req


def point_count(req: ExportMetricsServiceRequest) -> int:
    n = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                which = m.WhichOneof("data")
                n += len(getattr(m, which).data_points) if which else 0
    return n


def flatten(req: ExportMetricsServiceRequest) -> list[tuple[str, str, tuple, Any]]:
    """(service, metric name, sorted attributes, value) rows — handy to compare outputs in tests
    and tools. Histogram values are (count, sum, bucket_counts)."""
    rows: list[tuple[str, str, tuple, Any]] = []
    for service, m, dp in data_points(req):
        attrs = tuple(sorted((kv.key, _plain(kv.value)) for kv in dp.attributes))
        if m.WhichOneof("data") == "histogram":
            val: Any = (dp.count, dp.sum, tuple(dp.bucket_counts))
        else:
            val = dp.as_double if dp.HasField("as_double") else dp.as_int
        rows.append((service, m.name, attrs, val))
    return rows


def data_points(req: ExportMetricsServiceRequest) -> Iterator[tuple[str, Any, Any]]:
    """(resource ``service.name``, metric, data point) for every data point of ``req``."""
    for rm in req.resource_metrics:
        service = next((kv.value.string_value for kv in rm.resource.attributes if kv.key == "service.name"), "")
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                which = m.WhichOneof("data")
                if which is not None:
                    for dp in getattr(m, which).data_points:
                        yield service, m, dp


def _plain(v: Any) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


def merge_requests(reqs: Sequence[ExportMetricsServiceRequest]) -> ExportMetricsServiceRequest:
    out = ExportMetricsServiceRequest()
    for r in reqs:
        out.resource_metrics.extend(r.resource_metrics)
    return out
