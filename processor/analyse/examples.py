"""Example traces for alerts: a few trace ids per series and window that explain an alert.

Why: an alert is where an investigation starts, and the next question is "show me the calls".
Every alert transition carries ``gensight.alert.example_trace_ids`` — up to ``MAX_EXAMPLES`` trace
ids of calls from the offending series and window, chosen by the alert's cause:

* error-rate and burn-rate alerts (availability SLOs): failed calls;
* latency (latency SLOs, a drift/anomaly whose top signal is latency): failed, then slowest calls
  for latency SLOs (a failed call is a bad call there too), slowest calls otherwise;
* cost (cost SLOs, ``cost_spike``, ``budget``, a cost or token signal): the most expensive calls;
* quality (a relevance or evaluation-quality signal): the lowest-scored retrieval calls and the
  judged calls with the lowest evaluation scores;
* anything else: failed calls first, then the slowest.

Bounded and cheap: per series and open window the tracker keeps ``MAX_EXAMPLES`` candidates of each
kind (small heaps of (value, trace id)); a batch is looked at through the columns the pipeline
already grouped (``series_groups``), with C-level ``max``/``compress`` first, so a batch that cannot
beat the kept candidates costs one ``max`` per column. A window's candidates are dropped at the
next window's close, after the alert engine has read them.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, islice, repeat
from math import inf, isfinite
from operator import lt
from typing import Any

from gensight.processor.labels import Selector, parse_series_id
from gensight.processor.pipeline.series import series_groups
from gensight.processor.points import Attributes, MetricPoint, Window
from gensight.processor.records import (
    F_COST_USD,
    F_DURATION_S,
    F_ERROR,
    F_RELEVANCE,
    F_TRACE_ID,
    CallRecord,
    SeriesKey,
)

MAX_EXAMPLES = 5

# causes: which candidates explain an alert, in order of preference
ERRORS = "errors"
SLOWEST = "slowest"
COSTLIEST = "costliest"
LOWEST_SCORED = "lowest_scored"
DEFAULT_CAUSE = (ERRORS, SLOWEST)

# words in a detector's top signal (drift feature, anomaly signal) -> the candidates that moved it
_SIGNAL_CAUSES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("error", "availability", "success"), (ERRORS,)),
    (("duration", "latency", "first_chunk", "ttfc"), (SLOWEST,)),
    (("cost", "token", "budget"), (COSTLIEST,)),
    (("relevance", "quality", "score"), (LOWEST_SCORED,)),
)
# attribute keys of a transition that name the signal behind it
_SIGNAL_KEY_SUFFIXES = (".feature", ".signal", "top_signal")


class _Candidates:
    """One series in one window: min-heaps of (value, trace id), at most ``MAX_EXAMPLES`` each."""

    __slots__ = ("errors", "slowest", "costliest", "lowest_scored")

    def __init__(self) -> None:
        self.errors: list[bytes] = []  # the window's first failed calls
        self.slowest: list[tuple[float, bytes]] = []
        self.costliest: list[tuple[float, bytes]] = []
        self.lowest_scored: list[tuple[float, bytes]] = []  # value = -relevance or -evaluation score


def _offer(heap: list[tuple[float, bytes]], values: Sequence[Any], tids: Sequence[bytes]) -> None:
    """Keep the ``MAX_EXAMPLES`` largest finite values with a trace id (``values`` has no None)."""
    n = len(values)
    floor = heap[0][0] if len(heap) >= MAX_EXAMPLES else -inf
    if not max(values) > floor:
        return
    idx: Iterable[int] = range(n)
    if n > MAX_EXAMPLES:
        # only the values that beat the kept candidates (C-level filter), then the best of those
        above = list(compress(range(n), map(lt, repeat(floor), values)))
        idx = above if len(above) <= MAX_EXAMPLES else heapq.nlargest(MAX_EXAMPLES, above, key=values.__getitem__)
    for i in idx:
        v, t = values[i], tids[i]
        if not t or not isfinite(v):
            continue
        if len(heap) < MAX_EXAMPLES:
            heapq.heappush(heap, (v, t))
        elif v > heap[0][0]:
            heapq.heapreplace(heap, (v, t))


def _without_none(column: Sequence[Any], present: Sequence[Any], fill: float) -> Sequence[Any]:
    return column if len(present) == len(column) else [fill if v is None else v for v in column]


class ExampleTracker:
    """An ``Analyser`` that only remembers candidates; the alert engine asks it through
    :meth:`for_alert` while the detectors evaluate the window (register it before them)."""

    def __init__(self, slos: Sequence[Any] = (), budgets: Sequence[Any] = ()) -> None:
        # SLO name -> (selector, type); budget name -> selector
        self._slos: dict[str, tuple[Selector, str]] = {s.name: (s.selector, s.type) for s in slos}
        self._budgets: dict[str, Selector] = {b.name: b.selector for b in budgets}
        # window end -> internal series key (kind, service, provider, target) -> candidates
        self._windows: dict[int, dict[tuple, _Candidates]] = {}

    # -- Analyser ------------------------------------------------------------------------------
    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        per_series = self._windows.get(window.end_ns)
        if per_series is None:
            per_series = self._windows[window.end_ns] = {}
        for k, _, cols, pres, _ in series_groups(records):
            tids = cols[F_TRACE_ID]
            if not any(tids):
                continue  # no span of the batch carried a trace id: nothing to link to
            c = per_series.get(k)
            if c is None:
                c = per_series[k] = _Candidates()
            errcol = cols[F_ERROR]
            if len(c.errors) < MAX_EXAMPLES and any(errcol):
                c.errors.extend(islice(filter(None, compress(tids, errcol)), MAX_EXAMPLES - len(c.errors)))
            _offer(c.slowest, cols[F_DURATION_S], tids)
            costs = pres[F_COST_USD][0]
            if costs:
                _offer(c.costliest, _without_none(cols[F_COST_USD], costs, -inf), tids)
            rel = pres[F_RELEVANCE][0]
            if rel:
                neg = [-inf if v is None else -v for v in cols[F_RELEVANCE]]
                _offer(c.lowest_scored, neg, tids)

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        """The lowest-scored judged calls of each series: a ``quality`` alert links to the calls
        whose evaluation scores pulled it down (the judged call's trace, in the evaluation's window)."""
        per_series = self._windows.get(window.end_ns)
        for ev in evaluations:
            call, score = ev.call, ev.score
            if call is None or score is None or not call.trace_id or not isfinite(score):
                continue
            if per_series is None:
                per_series = self._windows[window.end_ns] = {}
            k = tuple(call[:4])  # the internal series key: kind, service, provider, target
            c = per_series.get(k)
            if c is None:
                c = per_series[k] = _Candidates()
            _offer(c.lowest_scored, [-float(score)], [call.trace_id])

    def close(self, window: Window) -> list[MetricPoint]:
        """Forget windows before this one; this one stays until the next close, so detectors that
        close after the tracker can still ask about it."""
        for end in [e for e in self._windows if e < window.end_ns]:
            del self._windows[end]
        return []

    # -- the alert engine's question -----------------------------------------------------------------
    def for_alert(self, alert: str, series: str, service: str, attributes: Attributes, time_ns: int) -> tuple[str, ...]:
        """Up to ``MAX_EXAMPLES`` distinct trace ids (hex) of calls of the window ending at
        ``time_ns`` that explain ``alert`` on ``series``."""
        per_series = self._windows.get(time_ns)
        if not per_series:
            return ()
        keys, causes = self._scope(alert, series, service, dict(attributes), per_series)
        out: list[str] = []
        for cause in causes:
            for tid in _ranked(cause, [per_series[k] for k in keys]):
                h = tid.hex()
                if h not in out:
                    out.append(h)
                    if len(out) == MAX_EXAMPLES:
                        return tuple(out)
        return tuple(out)

    def _scope(self, alert: str, series: str, service: str, attrs: Mapping[str, Any],
               per_series: Mapping[tuple, _Candidates]) -> tuple[list[tuple], tuple[str, ...]]:
        """(the series the alert is about, the causes to explain it by)."""
        if alert.startswith("slo_burn") and series in self._slos:
            selector, slo_type = self._slos[series]
            causes = {"availability": (ERRORS,), "latency": (ERRORS, SLOWEST), "cost": (COSTLIEST,)}
            return _matching(selector, per_series), causes.get(slo_type, DEFAULT_CAUSE)
        if alert == "budget":
            budget = self._budgets.get(str(attrs.get("budget", "")))
            return (_matching(budget, per_series) if budget else []), (COSTLIEST,)
        if alert == "cost_spike":
            return [k for k in per_series if k[1] == series], (COSTLIEST,)
        try:
            key = parse_series_id(series)
        except ValueError:  # not a series id: every series of the alert's service
            return [k for k in per_series if k[1] == service], _signal_causes(attrs)
        internal = (key.kind, key.service, key.provider, key.target)
        return ([internal] if internal in per_series else []), _signal_causes(attrs)


def _matching(selector: Selector, per_series: Mapping[tuple, _Candidates]) -> list[tuple]:
    # Selector.matches reads service, kind, provider and target: a SeriesKey has all four
    return [k for k in per_series if selector.matches(SeriesKey(k[1], k[0], k[2], k[3]))]  # type: ignore[arg-type]


def _signal_causes(attrs: Mapping[str, Any]) -> tuple[str, ...]:
    """The causes named by a transition's signal attribute (drift feature, anomaly signal)."""
    for key, value in attrs.items():
        if key.endswith(_SIGNAL_KEY_SUFFIXES) and isinstance(value, str):
            text = value.lower()
            for words, causes in _SIGNAL_CAUSES:
                if any(w in text for w in words):
                    return causes
    return DEFAULT_CAUSE


def _ranked(cause: str, candidates: list[_Candidates]) -> list[bytes]:
    """Trace ids of ``cause`` over several series, best first."""
    if cause == ERRORS:
        return [t for c in candidates for t in c.errors]
    heaps = [getattr(c, cause) for c in candidates]
    return [t for _, t in heapq.nlargest(MAX_EXAMPLES, (item for h in heaps for item in h))]


def trace_urls(template: str, trace_ids: Iterable[str]) -> list[str]:
    """Links from ``analytics.alerts.trace_url_template`` (``{trace_id}`` replaced; other braces,
    such as a Grafana Explore URL's JSON, are left alone)."""
    return [template.replace("{trace_id}", t) for t in trace_ids] if template else []
