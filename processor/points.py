"""Metric points: what analysers hand to the metric builder.

Analysers do maths only; they never build protobuf. The metric builder groups points by
service (resource ``service.name``) and name into an OTLP ``ExportMetricsServiceRequest``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from gensight.processor.records import CallRecord, SeriesKey

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


class Analyser:
    """One kind of analysis over call records, fed window by window in event time.

    ``observe`` may be called for several open windows (allowed lateness); ``close`` is called
    once per window, in window order, after the watermark passed its end. Subclass it and
    override the two; the hooks below are optional (no-op by default) and the pipeline calls each
    on every analyser, on its worker thread, never concurrently with ``observe``:

    * ``expire(keys)``: series the cardinality registry forgot; drop their state;
    * ``snapshot()``: persist state (every ``state.snapshot_interval_s`` live, and at the end);
    * ``shutdown()``: the last call, after the final flush and snapshot;
    * ``observe_evaluations(window, evaluations)``: evaluation results joined to their calls, in
      their own event-time window (``pipeline/evaluations.py``), before that window's ``close``.
    """

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        raise NotImplementedError

    def close(self, window: Window) -> list[MetricPoint]:
        raise NotImplementedError

    def expire(self, keys: Sequence[SeriesKey]) -> None:
        return None

    def snapshot(self) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        return None


class _AdoptedAnalyser(Analyser):
    """An analyser object that does not subclass ``Analyser`` (a test double, a plug-in): its
    methods are bound once here, a missing hook is the no-op."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.observe = target.observe  # type: ignore[method-assign]
        self.close = target.close  # type: ignore[method-assign]
        for hook in ("expire", "snapshot", "shutdown", "observe_evaluations"):
            bound = getattr(target, hook, None)
            if bound is not None:
                setattr(self, hook, bound)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"


def as_analyser(obj: Any) -> Analyser:
    """``obj`` itself when it subclasses ``Analyser``, else adopted (see ``_AdoptedAnalyser``)."""
    return obj if isinstance(obj, Analyser) else _AdoptedAnalyser(obj)
