"""The SLI analyser: per series, per window — calls, errors, latency, tokens, cost and friends.

Per-window state holds what the window's gauges need (a DDSketch for latency quantiles — 1 %
relative accuracy and mergeable across replicas — plus plain sums); it is folded into the
cumulative per-series state only when the window *closes*. So the exported values depend only on
which records fell into which window, never on how requests were batched on the wire: replay and
live give identical numbers.

Cumulative sums (``gensight.calls``, ``gensight.tokens``, ``gensight.cost``,
``gensight.call.duration``) start when the series was first seen (its first window's start) and
restart, with a new start time, if the series expires and comes back. They are exported for the
series that had calls in the closing window (the Collector/Prometheus keep the last value of a
quiet series until their own staleness period).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from ddsketch import DDSketch

from gensight.processor.metric_builder import series_attributes
from gensight.processor.points import GAUGE, HISTOGRAM, SUM, HistogramValue, MetricPoint, Window
from gensight.processor.records import EXECUTE_TOOL, RETRIEVAL, CallRecord, SeriesKey

CALLS = "gensight.calls"
CALL_DURATION = "gensight.call.duration"
TOKENS = "gensight.tokens"
COST = "gensight.cost"
SLI_AVAILABILITY = "gensight.sli.availability"
SLI_LATENCY = "gensight.sli.latency"
SLI_COST_PER_CALL = "gensight.sli.cost_per_call"
SLI_RELEVANCE = "gensight.sli.relevance"
SLI_CACHE_HIT_RATIO = "gensight.sli.cache_hit_ratio"
SLI_TTFC = "gensight.sli.time_to_first_chunk"
SLI_TOOL_SUCCESS = "gensight.sli.tool_success"

LATENCY_QUANTILES = (0.5, 0.95, 0.99)
SKETCH_RELATIVE_ACCURACY = 0.01
# GenAI semconv duration buckets (s): 0.01, 0.02, 0.04 ... 81.92
DURATION_BOUNDS_S: tuple[float, ...] = tuple(0.01 * 2**i for i in range(14))
# Distinct ``error.type`` values kept per series; further ones count as ``_OTHER`` (the semconv
# fallback). Without a cap, spans with random error types grow memory and exported points forever.
MAX_ERROR_TYPES_PER_SERIES = 32
ERROR_TYPE_OTHER = "_OTHER"


class _WindowAgg:
    """What one series accumulated in one window."""

    __slots__ = (
        "calls", "errors", "error_types", "sketch", "dur_sum", "dur_min", "dur_max", "buckets",
        "in_tok", "out_tok", "cost", "cost_calls", "ttfc_sum", "ttfc_n", "rel_sum", "rel_n",
        "hits", "hit_n",
    )  # fmt: skip

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.error_types: dict[str, int] = {}
        self.sketch = DDSketch(SKETCH_RELATIVE_ACCURACY)
        self.dur_sum = 0.0
        self.dur_min = float("inf")
        self.dur_max = 0.0
        self.buckets = [0] * (len(DURATION_BOUNDS_S) + 1)
        self.in_tok = 0
        self.out_tok = 0
        self.cost = 0.0
        self.cost_calls = 0
        self.ttfc_sum = 0.0
        self.ttfc_n = 0
        self.rel_sum = 0.0
        self.rel_n = 0
        self.hits = 0
        self.hit_n = 0


class _Cumulative:
    __slots__ = ("start_ns", "ok", "error_types", "buckets", "dur_sum", "dur_n", "dur_min", "dur_max",
                 "in_tok", "out_tok", "has_tokens", "cost", "has_cost")  # fmt: skip

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.ok = 0
        self.error_types: dict[str, int] = {}
        self.buckets = [0] * (len(DURATION_BOUNDS_S) + 1)
        self.dur_sum = 0.0
        self.dur_n = 0
        self.dur_min = float("inf")
        self.dur_max = 0.0
        self.in_tok = 0
        self.out_tok = 0
        self.has_tokens = False
        self.cost = 0.0
        self.has_cost = False


def _key(k: tuple) -> SeriesKey:
    # internal keys are record prefixes: (kind, service, provider, target)
    return SeriesKey(k[1], k[0], k[2], k[3])


class SLIAnalyser:
    """Implements the ``Analyser`` protocol (plus the optional ``expire`` hook)."""

    def __init__(self) -> None:
        self._windows: dict[int, dict[tuple, _WindowAgg]] = {}
        self._cum: dict[tuple, _Cumulative] = {}

    # -- Analyser ------------------------------------------------------------------------------
    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        aggs = self._windows.get(window.start_ns)
        if aggs is None:
            aggs = self._windows[window.start_ns] = {}
        bounds = DURATION_BOUNDS_S
        for r in records:
            k = r[:4]
            a = aggs.get(k)
            if a is None:
                a = aggs[k] = _WindowAgg()
            a.calls += 1
            if r.error:
                a.errors += 1
                et = r.error_type or ERROR_TYPE_OTHER
                if et not in a.error_types and len(a.error_types) >= MAX_ERROR_TYPES_PER_SERIES:
                    et = ERROR_TYPE_OTHER
                a.error_types[et] = a.error_types.get(et, 0) + 1
            d = r.duration_s
            a.sketch.add(d)
            a.dur_sum += d
            if d < a.dur_min:
                a.dur_min = d
            if d > a.dur_max:
                a.dur_max = d
            a.buckets[bisect_left(bounds, d)] += 1
            if r.input_tokens is not None:
                a.in_tok += r.input_tokens
            if r.output_tokens is not None:
                a.out_tok += r.output_tokens
            if r.cost_usd is not None:
                a.cost += r.cost_usd
                a.cost_calls += 1
            if r.ttfc_s is not None:
                a.ttfc_sum += r.ttfc_s
                a.ttfc_n += 1
            if r.relevance is not None:
                a.rel_sum += r.relevance
                a.rel_n += 1
            if r.cache_hit is not None:
                a.hit_n += 1
                if r.cache_hit:
                    a.hits += 1

    def close(self, window: Window) -> list[MetricPoint]:
        aggs = self._windows.pop(window.start_ns, None)
        if not aggs:
            return []
        points: list[MetricPoint] = []
        for k in sorted(aggs):
            a = aggs[k]
            c = self._cum.get(k)
            if c is None:
                c = self._cum[k] = _Cumulative(window.start_ns)
            self._fold(c, a)
            key = _key(k)
            attrs = series_attributes(key)
            points.extend(self._gauges(key, attrs, a, window))
            points.extend(self._sums(key, attrs, c, a, window))
        return points

    # -- optional hooks --------------------------------------------------------------------------
    def expire(self, keys: Sequence[SeriesKey]) -> None:
        for key in keys:
            self._cum.pop((key.kind, key.service, key.provider, key.target), None)

    def series_count(self) -> int:
        return len(self._cum)

    # -- internals -------------------------------------------------------------------------------
    @staticmethod
    def _fold(c: _Cumulative, a: _WindowAgg) -> None:
        c.ok += a.calls - a.errors
        for et, n in a.error_types.items():
            if et not in c.error_types and len(c.error_types) >= MAX_ERROR_TYPES_PER_SERIES:
                et = ERROR_TYPE_OTHER
            c.error_types[et] = c.error_types.get(et, 0) + n
        c.buckets = [x + y for x, y in zip(c.buckets, a.buckets, strict=True)]
        c.dur_sum += a.dur_sum
        c.dur_n += a.calls
        c.dur_min = min(c.dur_min, a.dur_min)
        c.dur_max = max(c.dur_max, a.dur_max)
        c.in_tok += a.in_tok
        c.out_tok += a.out_tok
        if a.in_tok or a.out_tok:
            c.has_tokens = True
        c.cost += a.cost
        if a.cost_calls:
            c.has_cost = True

    @staticmethod
    def _gauges(key: SeriesKey, attrs: Any, a: _WindowAgg, w: Window) -> list[MetricPoint]:
        svc, s, e = key.service, w.start_ns, w.end_ns
        pts = [MetricPoint(SLI_AVAILABILITY, GAUGE, "1", svc, attrs, (a.calls - a.errors) / a.calls, s, e)]
        for q in LATENCY_QUANTILES:
            v = a.sketch.get_quantile_value(q)
            pts.append(
                MetricPoint(SLI_LATENCY, GAUGE, "s", svc, (*attrs, ("quantile", str(q))), float(v or 0.0), s, e)
            )
        if a.cost_calls:
            pts.append(MetricPoint(SLI_COST_PER_CALL, GAUGE, "USD", svc, attrs, a.cost / a.cost_calls, s, e))
        if a.rel_n and key.kind == RETRIEVAL:
            pts.append(MetricPoint(SLI_RELEVANCE, GAUGE, "1", svc, attrs, a.rel_sum / a.rel_n, s, e))
        if a.hit_n:
            pts.append(MetricPoint(SLI_CACHE_HIT_RATIO, GAUGE, "1", svc, attrs, a.hits / a.hit_n, s, e))
        if a.ttfc_n:
            pts.append(MetricPoint(SLI_TTFC, GAUGE, "s", svc, attrs, a.ttfc_sum / a.ttfc_n, s, e))
        if key.kind == EXECUTE_TOOL:
            pts.append(MetricPoint(SLI_TOOL_SUCCESS, GAUGE, "1", svc, attrs, (a.calls - a.errors) / a.calls, s, e))
        return pts

    @staticmethod
    def _sums(key: SeriesKey, attrs: Any, c: _Cumulative, a: _WindowAgg, w: Window) -> list[MetricPoint]:
        svc, s, e = key.service, c.start_ns, w.end_ns
        pts = [MetricPoint(CALLS, SUM, "{call}", svc, (*attrs, ("outcome", "ok")), float(c.ok), s, e)]
        for et in sorted(c.error_types):
            pts.append(
                MetricPoint(
                    CALLS, SUM, "{call}", svc, (*attrs, ("outcome", "error"), ("error.type", et)),
                    float(c.error_types[et]), s, e,
                )
            )
        hist = HistogramValue(c.dur_n, c.dur_sum, tuple(c.buckets), DURATION_BOUNDS_S, c.dur_min, c.dur_max)
        pts.append(MetricPoint(CALL_DURATION, HISTOGRAM, "s", svc, attrs, hist, s, e))
        if c.has_tokens:
            pts.append(MetricPoint(TOKENS, SUM, "{token}", svc, (*attrs, ("gen_ai.token.type", "input")), float(c.in_tok), s, e))
            pts.append(MetricPoint(TOKENS, SUM, "{token}", svc, (*attrs, ("gen_ai.token.type", "output")), float(c.out_tok), s, e))
        if c.has_cost:
            pts.append(MetricPoint(COST, SUM, "USD", svc, attrs, c.cost, s, e))
        return pts


def build(config: Any, context: Any) -> list[Any]:
    """Analyser factory used by ``pipeline.build_analysers``."""
    return [SLIAnalyser()]
