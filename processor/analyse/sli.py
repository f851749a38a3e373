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

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from functools import lru_cache
from math import isfinite
from typing import TYPE_CHECKING, Any

import numpy as np
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

from gensight.processor.export.metric_builder import series_attributes
from gensight.processor.normalise.error_class import error_class
from gensight.processor.pipeline.series import series_groups
from gensight.processor.points import (
    GAUGE,
    HISTOGRAM,
    SUM,
    Analyser,
    Exemplar,
    HistogramValue,
    MetricPoint,
    Window,
)
from gensight.processor.records import (
    EXECUTE_TOOL,
    F_CACHE_HIT,
    F_COST_USD,
    F_DURATION_S,
    F_END_NS,
    F_ERROR,
    F_ERROR_TYPE,
    F_INPUT_TOKENS,
    F_OUTPUT_TOKENS,
    F_RELEVANCE,
    F_SPAN_ID,
    F_TRACE_ID,
    F_TTFC_S,
    RETRIEVAL,
    CallRecord,
    SeriesKey,
)

if TYPE_CHECKING:
    from gensight.processor.config import ProcessorConfig
    from gensight.processor.pipeline.pipeline import PipelineContext

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
# exemplars on one gensight.call.duration point: the window's slowest call and one failed call
MAX_EXEMPLARS_PER_POINT = 2
# GenAI semconv duration buckets (s): 0.01, 0.02, 0.04 ... 81.92
DURATION_BOUNDS_S: tuple[float, ...] = tuple(0.01 * 2**i for i in range(14))


class _WindowAgg:
    """What one series accumulated in one window.

    Durations wait in ``pending`` (8 bytes each) and reach the histogram and the latency sketch
    in bulk: at close, all series of the window in one numpy pass, or earlier, into ``sketch``,
    when ``DURATION_BUFFER_MAX_VALUES`` are waiting (memory stays bounded)."""

    __slots__ = (
        "calls", "errors", "error_types", "sketch", "pending", "dur_sum", "dur_min", "dur_max",
        "buckets", "in_tok", "out_tok", "cost", "cost_calls", "ttfc_sum", "ttfc_n", "rel_sum", "rel_n",
        "hits", "hit_n", "slowest", "failed",
    )  # fmt: skip

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.error_types: dict[str, int] = {}
        self.sketch: DDSketch | None = None  # only once durations were flushed before the close
        self.pending = array("d")
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
        # exemplars of the window's histogram point: its slowest traced call, its first traced failure
        self.slowest: Exemplar | None = None
        self.failed: Exemplar | None = None


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


# Durations of one series and window buffered before they go to its sketch and histogram in one
# numpy step; 4096 x 8 bytes = 32 KiB per series and open window at most.
DURATION_BUFFER_MAX_VALUES = 4096

_BOUNDS_ARRAY = np.asarray(DURATION_BOUNDS_S)
_BUCKETS = len(DURATION_BOUNDS_S) + 1
# every window sketch is DDSketch(SKETCH_RELATIVE_ACCURACY): the bulk paths reproduce its mapping
_MAPPING = DDSketch(SKETCH_RELATIVE_ACCURACY)._mapping
if type(_MAPPING) is not LogarithmicMapping:
    raise RuntimeError("DDSketch no longer uses LogarithmicMapping: update sli._sketch_keys")
# np.log2 and the library's math.log(v, 2) may differ in the last bits: a value whose scaled log is
# this close to an integer (a bin edge) gets its key from the library itself
_KEY_EDGE_MARGIN = 1e-6
# sort key for zero durations in the window-wide quantile pass: below every real key
_ZERO_KEY = -(2**31)


def _sketch_keys(values: np.ndarray) -> np.ndarray:
    """``LogarithmicMapping.key(v)`` for every v (all > ``min_possible``), vectorised and equal to
    the library's own result for every value, bin edges included."""
    m = _MAPPING
    scaled = np.log2(values) * m._multiplier
    keys = (np.ceil(scaled) + m._offset).astype(np.int64)
    for i in np.flatnonzero(np.abs(scaled - np.rint(scaled)) < _KEY_EDGE_MARGIN).tolist():
        keys[i] = m.key(float(values[i]))
    return keys


@lru_cache(maxsize=4096)
def _key_value(key: int) -> float:
    """The value a sketch reports for a key (``mapping.value``); keys repeat across windows."""
    return float(_MAPPING.value(key))


def _add_durations(a: _WindowAgg, durs: Sequence[float]) -> None:
    """Sum, min and max now; histogram and sketch later, in bulk (see ``_WindowAgg``)."""
    total = sum(durs)
    a.dur_sum += total
    lo, hi = min(durs), max(durs)
    if lo < a.dur_min:
        a.dur_min = lo
    if hi > a.dur_max:
        a.dur_max = hi
    if not (lo >= 0.0 and isfinite(total)):
        # negative, infinite or NaN durations (never from the normaliser): one by one, as
        # DDSketch.add and bisect treat them
        _add_durations_one_by_one(a, durs)
        return
    pending = a.pending
    # fromlist converts a list three times faster than extend converts any iterable
    pending.fromlist(durs if type(durs) is list else list(durs))
    if len(pending) >= DURATION_BUFFER_MAX_VALUES:
        _flush_to_sketch(a)


def _track_exemplars(a: _WindowAgg, cols: Sequence[Sequence[Any]]) -> None:
    """Keep the window's slowest call and one failed call as exemplars: a ``max`` and an
    ``index`` over the series' columns (C speed), one small tuple per series and batch at most."""
    durs, tids = cols[F_DURATION_S], cols[F_TRACE_ID]
    hi = max(durs)
    slowest = a.slowest
    if (slowest is None or hi > slowest.value) and isfinite(hi):
        j = durs.index(hi)
        if tids[j]:
            a.slowest = Exemplar(hi, cols[F_END_NS][j], tids[j], cols[F_SPAN_ID][j])
    if a.failed is None:
        errcol = cols[F_ERROR]
        if any(errcol):
            j = errcol.index(True)
            if tids[j] and isfinite(durs[j]):
                a.failed = Exemplar(durs[j], cols[F_END_NS][j], tids[j], cols[F_SPAN_ID][j])


def window_exemplars(slowest: Exemplar | None, failed: Exemplar | None) -> tuple[Exemplar, ...]:
    """At most ``MAX_EXEMPLARS_PER_POINT``: the slowest call, then a failed one when it is another call."""
    out = tuple(e for e in (slowest, failed) if e is not None)
    if len(out) == 2 and out[0].span_id == out[1].span_id and out[0].trace_id == out[1].trace_id:
        out = out[:1]
    return out[:MAX_EXEMPLARS_PER_POINT]


def _add_durations_one_by_one(a: _WindowAgg, durs: Sequence[float]) -> None:
    if a.sketch is None:
        a.sketch = DDSketch(SKETCH_RELATIVE_ACCURACY)
    bounds, buckets, add = DURATION_BOUNDS_S, a.buckets, a.sketch.add
    for d in durs:
        add(d)
        buckets[bisect_left(bounds, d)] += 1


def _flush_to_sketch(a: _WindowAgg) -> None:
    """Move the buffered durations into the series' histogram and its DDSketch."""
    if not a.pending:
        return
    values = np.array(a.pending, dtype=np.float64)
    a.pending = array("d")
    idx = np.searchsorted(_BOUNDS_ARRAY, values, side="left")
    for i, c in enumerate(np.bincount(idx, minlength=_BUCKETS).tolist()):
        a.buckets[i] += c
    if a.sketch is None:
        a.sketch = DDSketch(SKETCH_RELATIVE_ACCURACY)
    _sketch_add_many(a.sketch, values)


def _sketch_add_many(sketch: DDSketch, values: np.ndarray) -> None:
    """``sketch.add(v)`` for every finite v >= 0, vectorised: the same keys, one store update per
    distinct key."""
    pos = values[values > _MAPPING.min_possible]
    if len(pos):
        uniq, counts = np.unique(_sketch_keys(pos), return_counts=True)
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


def _window_latencies(aggs: list[_WindowAgg]) -> list[list[float]]:
    """Close-time pass over every series of a window: adds the buffered durations to the
    histograms and returns each series' ``LATENCY_QUANTILES`` — the values
    ``DDSketch.get_quantile_value`` gives after adding the same durations one by one.

    Series that already have a sketch (more than ``DURATION_BUFFER_MAX_VALUES`` calls, or odd
    durations) flush into it and ask it; the others share one numpy pass: keys sorted per series,
    the quantile's rank picked directly (a sketch walks its bins in Python for every quantile)."""
    out: list[list[float]] = [[] for _ in aggs]
    fast = []
    for i, a in enumerate(aggs):
        if a.sketch is None:
            fast.append(i)
        else:
            _flush_to_sketch(a)
            out[i] = [float(a.sketch.get_quantile_value(q) or 0.0) for q in LATENCY_QUANTILES]
    if not fast:
        return out
    lens = [len(aggs[i].pending) for i in fast]
    values = np.concatenate([np.frombuffer(aggs[i].pending, dtype=np.float64) for i in fast])
    for i in fast:
        aggs[i].pending = array("d")
    series = np.repeat(np.arange(len(fast), dtype=np.int64), lens)
    idx = np.searchsorted(_BOUNDS_ARRAY, values, side="left")
    counts = np.bincount(series * _BUCKETS + idx, minlength=len(fast) * _BUCKETS).reshape(len(fast), _BUCKETS)
    for i, c in zip(fast, counts.tolist(), strict=True):
        aggs[i].buckets = [x + y for x, y in zip(aggs[i].buckets, c, strict=True)]
    pos = values > _MAPPING.min_possible
    keys = np.full(len(values), _ZERO_KEY, dtype=np.int64)
    keys[pos] = _sketch_keys(values[pos])
    # one sort for all series: series index in the high bits, key (zeros first) in the low ones
    ordered = np.sort((series << 32) + (keys - _ZERO_KEY)) & 0xFFFFFFFF
    zeros = np.bincount(series[~pos], minlength=len(fast)).tolist()
    start = 0
    for j, i in enumerate(fast):
        count, zero = float(lens[j]), float(zeros[j])
        qs = []
        for q in LATENCY_QUANTILES:
            # DDSketch.get_quantile_value: no negatives here, zeros first, then the bin whose
            # running count first exceeds the rank, i.e. the floor(rank)-th positive key
            rank = q * (count - 1)
            if rank < zero:
                qs.append(0.0)
            else:
                qs.append(_key_value(int(ordered[start + zeros[j] + int(rank - zero)]) + _ZERO_KEY))
        out[i] = qs
        start += lens[j]
    return out


def _key(k: tuple) -> SeriesKey:
    # internal keys are record prefixes: (kind, service, provider, target)
    return SeriesKey(k[1], k[0], k[2], k[3])


class SLIAnalyser(Analyser):
    """Implements the ``Analyser`` protocol (plus the optional ``expire`` hook)."""

    def __init__(self) -> None:
        self._windows: dict[int, dict[tuple, _WindowAgg]] = {}
        self._cum: dict[tuple, _Cumulative] = {}

    # -- Analyser ------------------------------------------------------------------------------
    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        """Per series (grouped once for all analysers), whole columns at a time: per-record
        Python work is what limits throughput."""
        aggs = self._windows.get(window.start_ns)
        if aggs is None:
            aggs = self._windows[window.start_ns] = {}
        for k, _, cols, pres, _ in series_groups(records):
            a = aggs.get(k)
            if a is None:
                a = aggs[k] = _WindowAgg()
            # field positions: see CallRecord (6 duration, 7/8 tokens, 10 cost, 12/13 error,
            # 15 relevance, 16 cache hit, 18 ttfc)
            durs = cols[F_DURATION_S]
            a.calls += len(durs)
            errcol = cols[F_ERROR]
            if any(errcol):
                self._add_errors(a, [t or "_OTHER" for e, t in zip(errcol, cols[F_ERROR_TYPE], strict=True) if e])
            _add_durations(a, durs)
            _track_exemplars(a, cols)
            a.in_tok += pres[F_INPUT_TOKENS][1]
            a.out_tok += pres[F_OUTPUT_TOKENS][1]
            costs, total = pres[F_COST_USD]
            if costs:
                a.cost += total
                a.cost_calls += len(costs)
            ttfc, total = pres[F_TTFC_S]
            if ttfc:
                a.ttfc_sum += total
                a.ttfc_n += len(ttfc)
            rel, total = pres[F_RELEVANCE]
            if rel:
                a.rel_sum += total
                a.rel_n += len(rel)
            hits, total = pres[F_CACHE_HIT]
            if hits:
                a.hit_n += len(hits)
                a.hits += total

    @staticmethod
    def _add_errors(a: _WindowAgg, errs: list[str]) -> None:
        a.errors += len(errs)
        et = a.error_types
        for e in errs:
            if e not in et and len(et) >= MAX_ERROR_TYPES_PER_SERIES:
                e = "_OTHER"
            et[e] = et.get(e, 0) + 1

    def close(self, window: Window) -> list[MetricPoint]:
        aggs = self._windows.pop(window.start_ns, None)
        if not aggs:
            return []
        points: list[MetricPoint] = []
        keys = sorted(aggs)
        latencies = _window_latencies([aggs[k] for k in keys])
        for k, latency in zip(keys, latencies, strict=True):
            a = aggs[k]
            c = self._cum.get(k)
            if c is None:
                c = self._cum[k] = _Cumulative(window.start_ns)
            self._fold(c, a)
            key = _key(k)
            attrs = series_attributes(key)
            points.extend(self._gauges(key, attrs, a, latency, window))
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
    def _gauges(
        key: SeriesKey, attrs: Any, a: _WindowAgg, latency: list[float], w: Window
    ) -> list[MetricPoint]:
        svc, s, e = key.service, w.start_ns, w.end_ns
        pts = [MetricPoint(SLI_AVAILABILITY, GAUGE, "1", svc, attrs, (a.calls - a.errors) / a.calls, s, e)]
        for q, v in zip(LATENCY_QUANTILES, latency, strict=True):
            pts.append(MetricPoint(SLI_LATENCY, GAUGE, "s", svc, (*attrs, ("quantile", str(q))), v, s, e))
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
                    CALLS, SUM, "{call}", svc,
                    (*attrs, ("outcome", "error"), ("error.type", et), ("gensight.error.class", error_class(et))),
                    float(c.error_types[et]), s, e,
                )
            )
        hist = HistogramValue(c.dur_n, c.dur_sum, tuple(c.buckets), DURATION_BOUNDS_S, c.dur_min, c.dur_max,
                              window_exemplars(a.slowest, a.failed))
        pts.append(MetricPoint(CALL_DURATION, HISTOGRAM, "s", svc, attrs, hist, s, e))
        if c.has_tokens:
            pts.append(MetricPoint(TOKENS, SUM, "{token}", svc, (*attrs, ("gen_ai.token.type", "input")), float(c.in_tok), s, e))
            pts.append(MetricPoint(TOKENS, SUM, "{token}", svc, (*attrs, ("gen_ai.token.type", "output")), float(c.out_tok), s, e))
        if c.has_cost:
            pts.append(MetricPoint(COST, SUM, "USD", svc, attrs, c.cost, s, e))
        return pts


def build(config: ProcessorConfig, context: PipelineContext) -> list[Analyser]:
    """Analyser factory used by ``pipeline.build_analysers``."""
    return [SLIAnalyser()]
