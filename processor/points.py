"""Metric points: what analysers hand to the metric builder.

Analysers do maths only; they never build protobuf. The metric builder groups points by
service (resource ``service.name``) and name into an OTLP ``ExportMetricsServiceRequest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from gensight.processor.records import CallRecord

SUM = "sum"
GAUGE = "gauge"
HISTOGRAM = "histogram"

Attributes = tuple[tuple[str, str | int | float | bool], ...]


class Exemplar(NamedTuple):
    """One measured call behind a histogram point: its value and the ids of its span, so a
    dashboard can jump from a latency bucket to the trace (OTLP ``Exemplar``, OpenMetrics
    exemplars). Only calls whose span carried a trace id become exemplars."""

    value: float
    time_ns: int  # the call's end time (event time)
    trace_id: bytes
    span_id: bytes


class HistogramValue(NamedTuple):
    total: int  # number of observations (a NamedTuple cannot call a field "count")
    sum: float
    bucket_counts: tuple[int, ...]  # len(bounds) + 1
    explicit_bounds: tuple[float, ...]
    min: float | None = None
    max: float | None = None
    exemplars: tuple[Exemplar, ...] = ()  # representative calls of the window, a few at most


class MetricPoint(NamedTuple):
    name: str  # from the metric contract in docs/metrics.md
    kind: str  # SUM | GAUGE | HISTOGRAM
    unit: str
    service: str  # becomes the resource attribute service.name
    attributes: Attributes  # data point attributes: series key attributes + the metric's own
    value: float | HistogramValue
    start_ns: int  # start of the cumulative period (sums, histograms) or of the window (gauges)
    time_ns: int  # window end (event time)
    monotonic: bool = True  # sums only


class Window(NamedTuple):
    start_ns: int
    end_ns: int


class Analyser(Protocol):
    """One kind of analysis over call records, fed window by window in event time.

    ``observe`` may be called for several open windows (allowed lateness); ``close`` is called
    once per window, in window order, after the watermark passed its end.
    """

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None: ...

    def close(self, window: Window) -> list[MetricPoint]: ...
