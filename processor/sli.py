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

import numpy as np
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

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

# Distinct ``error.type`` values kept per series; further ones count as ``_OTHER`` (the semconv
# fallback). Without a cap, spans with random error types grow memory and exported points forever.
MAX_ERROR_TYPES_PER_SERIES = 32
LATENCY_QUANTILES = (0.5, 0.95, 0.99)
SKETCH_RELATIVE_ACCURACY = 0.01
# GenAI semconv duration buckets (s): 0.01, 0.02, 0.04 ... 81.92
DURATION_BOUNDS_S: tuple[float, ...] = tuple(0.01 * 2**i for i in range(14))


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


# observe() reads records by position (a tuple index is cheaper than a NamedTuple property);
# fail at import, not with wrong numbers, if CallRecord's fields are ever reordered.
if CallRecord._fields[:4] != ("kind", "service", "provider", "target") or [
    CallRecord._fields[i] for i in (6, 7, 8, 10, 12, 13, 15, 16, 18)
] != ["duration_s", "input_tokens", "output_tokens", "cost_usd", "error", "error_type", "relevance",
      "cache_hit", "ttfc_s"]:
    raise RuntimeError("CallRecord field order changed: update the positions in sli.observe")

_VECTOR_MIN = 32  # below this many values a plain loop beats numpy's call overhead


def _add_durations(a: _WindowAgg, durs: list[float]) -> None:
    """Add durations to the window's sketch and histogram; vectorised for larger groups."""
    a.dur_sum += sum(durs)
    lo, hi = min(durs), max(durs)
    if lo < a.dur_min:
        a.dur_min = lo
    if hi > a.dur_max:
        a.dur_max = hi
    if len(durs) < _VECTOR_MIN or not _bulk_sketch_ok(a.sketch):
        bounds, buckets, add = DURATION_BOUNDS_S, a.buckets, a.sketch.add
        for d in durs:
            add(d)
            buckets[bisect_left(bounds, d)] += 1
        return
    arr = np.asarray(durs, dtype=np.float64)
    idx = np.searchsorted(_BOUNDS_ARRAY, arr, side="left")
    for i, c in enumerate(np.bincount(idx, minlength=len(a.buckets)).tolist()):
        a.buckets[i] += c
    _sketch_add_many(a.sketch, arr)


_BOUNDS_ARRAY = np.asarray(DURATION_BOUNDS_S)


def _bulk_sketch_ok(sketch: DDSketch) -> bool:
    # the bulk path reproduces LogarithmicMapping.key(); any other mapping uses sketch.add()
    return type(sketch._mapping) is LogarithmicMapping


def _sketch_add_many(sketch: DDSketch, values: np.ndarray) -> None:
    """``sketch.add(v)`` for every v, vectorised: same keys as ``LogarithmicMapping.key``
    (``ceil(log2(v) * multiplier) + offset``), one store update per distinct key."""
    m = sketch._mapping
    pos = values[values > m.min_possible]
    if len(pos):
        keys = (np.ceil(np.log2(pos) * m._multiplier) + m._offset).astype(np.int64)
        uniq, counts = np.unique(keys, return_counts=True)
        store = sketch._store
        ks, cs = uniq.tolist(), counts.tolist()
        # extreme keys first: the store extends its range once instead of once per new key
        order = [len(ks) - 1, *range(len(ks) - 1)] if len(ks) > 1 else [0]
        for i in order:
            store.add(ks[i], float(cs[i]))
    sketch._zero_count += float(len(values) - len(pos))
    sketch._count += float(len(values))
    sketch._sum += float(values.sum())
    lo, hi = float(values.min()), float(values.max())
    if lo < sketch._min:
        sketch._min = lo
    if hi > sketch._max:
        sketch._max = hi


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
        """Group by series, then aggregate each group with comprehensions and one vectorised
        sketch/histogram update: per-record Python work is what limits throughput."""
        aggs = self._windows.get(window.start_ns)
        if aggs is None:
            aggs = self._windows[window.start_ns] = {}
        groups: dict[tuple, list[CallRecord]] = {}
        for r in records:
            k = r[:4]
            g = groups.get(k)
            if g is None:
                groups[k] = [r]
            else:
                g.append(r)
        for k, recs in groups.items():
            a = aggs.get(k)
            if a is None:
                a = aggs[k] = _WindowAgg()
            a.calls += len(recs)
            # field positions: see CallRecord (6 duration, 7/8 tokens, 10 cost, 12/13 error,
            # 15 relevance, 16 cache hit, 18 ttfc)
            errs = [r[13] or "_OTHER" for r in recs if r[12]]
            if errs:
                a.errors += len(errs)
                et = a.error_types
                for e in errs:
                    if e not in et and len(et) >= MAX_ERROR_TYPES_PER_SERIES:
                        e = "_OTHER"
                    et[e] = et.get(e, 0) + 1
            _add_durations(a, [r[6] for r in recs])
            a.in_tok += sum([t for r in recs if (t := r[7]) is not None])
            a.out_tok += sum([t for r in recs if (t := r[8]) is not None])
            costs = [c for r in recs if (c := r[10]) is not None]
            if costs:
                a.cost += sum(costs)
                a.cost_calls += len(costs)
            ttfc = [f for r in recs if (f := r[18]) is not None]
            if ttfc:
                a.ttfc_sum += sum(ttfc)
                a.ttfc_n += len(ttfc)
            rel = [v for r in recs if (v := r[15]) is not None]
            if rel:
                a.rel_sum += sum(rel)
                a.rel_n += len(rel)
            hits = [h for r in recs if (h := r[16]) is not None]
            if hits:
                a.hit_n += len(hits)
                a.hits += sum(hits)

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
                et = "_OTHER"
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
