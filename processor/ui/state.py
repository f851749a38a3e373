"""What the status page shows, kept from the processor's own exported requests.

Why a sink: the page then shows exactly what left the processor (the same numbers Prometheus and
Grafana get), needs no hook into the analysers, and costs the pipeline one pass over each
window's points. ``export`` (metrics) and ``export_logs`` (alert transitions) run on the
pipeline's worker thread; the page's handlers read consistent copies under one lock.

Bounded: series beyond ``max_series`` are not tracked (counted in ``dropped_series``); each series
keeps ``history_windows`` windows; alert periods ≤ ``MAX_PERIODS_PER_ALERT`` per alert, alert
keys ≤ ``MAX_ALERT_KEYS`` (resolved ones are evicted first), the history ≤ ``MAX_HISTORY``
transitions. Only metric values, series names, alert attributes and trace ids are kept: no message
content ever reaches a metric or an alert record, so none can reach the page.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gensight.processor.export.metric_builder import data_points
from gensight.processor.labels import Selector, parse_series_id, series_id
from gensight.processor.records import OVERFLOW, OVERFLOW_KEY, SeriesKey

MAX_SERIES = 5_000
MAX_ALERT_KEYS = 5_000
MAX_PERIODS_PER_ALERT = 20
MAX_HISTORY = 1_000
NS_PER_MIN = 60_000_000_000

_TARGET_KEYS = ("gen_ai.request.model", "gen_ai.tool.name", "gen_ai.data_source.id")
# alert record attributes shown as-is elsewhere; any other gensight.* attribute is "explanation"
_ALERT_KNOWN = frozenset({
    "gensight.alert.name", "gensight.alert.state", "gensight.alert.severity", "gensight.alert.series",
    "gensight.alert.value", "gensight.alert.threshold", "gensight.alert.reason", "runbook_url",
    "gensight.alert.example_trace_ids", "gen_ai.operation.name", "gen_ai.provider.name", *_TARGET_KEYS,
})

# severity rank of a series' worst alert: the table sorts by it
RANK_FIRING_PAGE, RANK_FIRING_TICKET, RANK_PENDING, RANK_OK = 3, 2, 1, 0


class WindowPoint(NamedTuple):
    """One closed window of one series, as the charts plot it (None = not reported)."""

    time_ns: int
    calls: int | None
    error_rate: float | None
    p95_s: float | None
    cost_rate_usd_per_min: float | None
    anomaly: float | None


@dataclass
class SeriesState:
    key: SeriesKey
    history: deque[WindowPoint]
    calls: int | None = None
    error_rate: float | None = None
    p95_s: float | None = None
    cost_per_call_usd: float | None = None
    drift: float | None = None
    anomaly: float | None = None
    relevance: float | None = None
    quality: float | None = None  # lowest gensight.sli.quality over the window's evaluation names
    last_ns: int = 0
    exemplars: tuple[tuple[str, float], ...] = ()  # (trace id hex, duration s) of the last window
    window_min: float | None = None  # window length, from the window gauges' start..end
    # gensight.calls is cumulative: a window's calls = this window's total - the previous one's
    calls_start_ns: int = -1
    calls_prev_total: float = 0.0
    calls_total: float = 0.0


@dataclass
class AlertState:
    alert: str
    series: str
    state: str
    severity: str
    value: float
    threshold: float
    service: str
    runbook_url: str
    since_ns: int
    time_ns: int
    example_trace_ids: tuple[str, ...] = ()
    explanation: tuple[tuple[str, str], ...] = ()  # other gensight.* attributes: signal, baseline, ...
    periods: deque[list[int | None]] = field(default_factory=lambda: deque(maxlen=MAX_PERIODS_PER_ALERT))


@dataclass
class SLOState:
    name: str
    service: str
    burn_rates: dict[str, float] = field(default_factory=dict)
    budget_remaining: float | None = None
    time_ns: int = 0


def _plain(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return tuple(_plain(x) for x in v.array_value.values)
    return getattr(v, which) if which else None


def _series_key(service: str, attrs: Mapping[str, Any]) -> SeriesKey | None:
    if attrs.get("otel.metric.overflow") is True:
        return OVERFLOW_KEY
    kind = attrs.get("gen_ai.operation.name")
    if not isinstance(kind, str):
        return None
    target = next((attrs[k] for k in _TARGET_KEYS if k in attrs), "")
    return SeriesKey(service, kind, str(attrs.get("gen_ai.provider.name", "")), str(target))


class StatusState:
    """The page's model; a pipeline sink (``export`` / ``export_logs``)."""

    def __init__(self, history_windows: int = 180, *, slo_selectors: Mapping[str, Selector] | None = None,
                 budget_selectors: Mapping[str, Selector] | None = None, max_series: int = MAX_SERIES) -> None:
        self.history_windows = history_windows
        self.max_series = max_series
        self.slo_selectors = dict(slo_selectors or {})
        self.budget_selectors = dict(budget_selectors or {})
        self._lock = threading.Lock()
        self._series: dict[str, SeriesState] = {}
        self._alerts: OrderedDict[tuple[str, str], AlertState] = OrderedDict()
        self._history: deque[AlertState] = deque(maxlen=MAX_HISTORY)
        self._slos: dict[str, SLOState] = {}
        self.dropped_series = 0
        self.version = 0  # bumped on every update: chart caches key off it

    # -- sink ------------------------------------------------------------------------------------
    def export(self, request: Any) -> bool:
        # a request may hold several windows (the watermark passed more than one): their points are
        # grouped by metric name, so put them back in window order first
        points = [(dp.time_unix_nano, i, service, (m.name, dp))
                  for i, (service, m, dp) in enumerate(data_points(request))]
        points.sort(key=lambda p: (p[0], p[1]))
        with self._lock:
            for _, _, service, (name, dp) in points:
                self._metric_point(service, name, dp)
            self.version += 1
        return True

    def export_logs(self, request: Any) -> bool:
        with self._lock:
            for rl in request.resource_logs:
                service = next((kv.value.string_value for kv in rl.resource.attributes if kv.key == "service.name"), "")
                for sl in rl.scope_logs:
                    for rec in sl.log_records:
                        attrs = {kv.key: _plain(kv.value) for kv in rec.attributes}
                        if "gensight.alert.name" in attrs:
                            self._transition(service, rec.time_unix_nano, attrs)
            self.version += 1
        return True

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        return True

    # -- metric points -----------------------------------------------------------------------------
    def _metric_point(self, service: str, name: str, dp: Any) -> None:
        attrs = {kv.key: _plain(kv.value) for kv in dp.attributes}
        if name == "gensight.slo.burn_rate" or name == "gensight.slo.error_budget.remaining":
            self._slo(service, name, attrs, dp)
            return
        key = _series_key(service, attrs)
        if key is None:
            return
        s = self._series_state(key)
        if s is None:
            return
        t = dp.time_unix_nano
        if t > s.last_ns:
            self._new_window(s, t)
        if t < s.last_ns:
            return  # an older window's point arriving late: the table shows the newest
        self._point(s, name, attrs, dp)

    def _series_state(self, key: SeriesKey) -> SeriesState | None:
        sid = series_id(key)
        s = self._series.get(sid)
        if s is None:
            if len(self._series) >= self.max_series:
                self.dropped_series += 1
                return None
            s = self._series[sid] = SeriesState(key, deque(maxlen=self.history_windows))
        return s

    @staticmethod
    def _new_window(s: SeriesState, t: int) -> None:
        s.last_ns = t
        s.calls_prev_total, s.calls_total = s.calls_total, 0.0
        s.calls = s.error_rate = s.p95_s = s.cost_per_call_usd = s.drift = s.anomaly = s.relevance = None
        s.quality = None
        s.exemplars = ()

    def _point(self, s: SeriesState, name: str, attrs: Mapping[str, Any], dp: Any) -> None:
        if name == "gensight.calls":
            if dp.start_time_unix_nano != s.calls_start_ns:  # first seen, or restarted after expiry
                s.calls_start_ns, s.calls_prev_total = dp.start_time_unix_nano, 0.0
            s.calls_total += dp.as_double  # one point per outcome / error type: they add up
            s.calls = max(0, round(s.calls_total - s.calls_prev_total))
        elif name == "gensight.sli.availability":
            s.error_rate = 1.0 - dp.as_double
            s.window_min = max(dp.time_unix_nano - dp.start_time_unix_nano, 1) / NS_PER_MIN
        elif name == "gensight.sli.latency" and attrs.get("quantile") == "0.95":
            s.p95_s = dp.as_double
        elif name == "gensight.sli.cost_per_call":
            s.cost_per_call_usd = dp.as_double
        elif name == "gensight.drift.score":
            s.drift = dp.as_double
        elif name == "gensight.anomaly.score":
            s.anomaly = dp.as_double
        elif name == "gensight.sli.relevance":
            s.relevance = dp.as_double
        elif name == "gensight.sli.quality":  # one point per evaluation name: show the worst
            s.quality = dp.as_double if s.quality is None else min(s.quality, dp.as_double)
        elif name == "gensight.call.duration":
            s.exemplars = tuple((e.trace_id.hex(), e.as_double) for e in dp.exemplars if e.trace_id)
        else:
            return
        self._record_window(s, dp)

    @staticmethod
    def _record_window(s: SeriesState, dp: Any) -> None:
        cost_rate = None
        if s.cost_per_call_usd is not None and s.calls is not None and s.window_min:
            cost_rate = s.cost_per_call_usd * s.calls / s.window_min  # cost per minute of the window
        wp = WindowPoint(s.last_ns, s.calls, s.error_rate, s.p95_s, cost_rate, s.anomaly)
        if s.history and s.history[-1].time_ns == s.last_ns:
            s.history[-1] = wp
        else:
            s.history.append(wp)

    def _slo(self, service: str, name: str, attrs: Mapping[str, Any], dp: Any) -> None:
        slo = attrs.get("slo")
        if not isinstance(slo, str):
            return
        st = self._slos.get(slo)
        if st is None:
            if len(self._slos) >= MAX_SERIES:
                return
            st = self._slos[slo] = SLOState(slo, service)
        st.time_ns = max(st.time_ns, dp.time_unix_nano)
        if name == "gensight.slo.burn_rate":
            st.burn_rates[str(attrs.get("window", ""))] = dp.as_double
        else:
            st.budget_remaining = dp.as_double

    # -- alert transitions -----------------------------------------------------------------------------
    def _transition(self, service: str, time_ns: int, attrs: Mapping[str, Any]) -> None:
        alert, series = str(attrs["gensight.alert.name"]), str(attrs.get("gensight.alert.series", ""))
        state = str(attrs.get("gensight.alert.state", ""))
        key = (alert, series)
        a = self._alerts.get(key)
        if a is None:
            while len(self._alerts) >= MAX_ALERT_KEYS:
                resolved = next((k for k, v in self._alerts.items() if v.state == "resolved"), None)
                self._alerts.pop(resolved if resolved is not None else next(iter(self._alerts)))
            a = self._alerts[key] = AlertState(alert, series, state, "", 0.0, 0.0, service, "", time_ns, time_ns)
        else:
            self._alerts.move_to_end(key)
        ids = attrs.get("gensight.alert.example_trace_ids") or ()
        a.state = state
        a.severity = str(attrs.get("gensight.alert.severity", ""))
        a.value = float(attrs.get("gensight.alert.value") or 0.0)
        a.threshold = float(attrs.get("gensight.alert.threshold") or 0.0)
        a.runbook_url = str(attrs.get("runbook_url") or "")
        a.service = service
        a.time_ns = time_ns
        if ids:
            a.example_trace_ids = tuple(str(x) for x in ids)
        a.explanation = tuple((k, _text(v)) for k, v in attrs.items()
                              if k not in _ALERT_KNOWN and k.startswith("gensight."))
        if state == "pending" or (state == "firing" and (not a.periods or a.periods[-1][1] is not None)):
            a.since_ns = time_ns
            a.periods.append([time_ns, None])
        elif state == "resolved" and a.periods and a.periods[-1][1] is None:
            a.periods[-1][1] = time_ns
        self._history.append(AlertState(alert, series, state, a.severity, a.value, a.threshold, service,
                                        a.runbook_url, a.since_ns, time_ns, a.example_trace_ids, a.explanation))

    # -- reading (the page) --------------------------------------------------------------------------------
    def affected(self, a: AlertState) -> list[str]:
        """Series ids an alert is about: its own series id, the series an SLO or budget selects,
        or every series of a service (cost spike)."""
        try:
            return [series_id(parse_series_id(a.series))]
        except ValueError:
            pass
        sel = self.slo_selectors.get(a.series) if a.alert.startswith("slo_") else None
        if a.alert == "budget":
            sel = self.budget_selectors.get(a.series.split(":", 1)[0])
        if sel is not None:
            return [sid for sid, s in self._series.items()
                    if s.key.service != OVERFLOW and sel.matches(s.key)]  # type: ignore[arg-type]
        return [sid for sid, s in self._series.items() if s.key.service == (a.series or a.service)]

    def snapshot(self) -> Snapshot:
        """A consistent copy for one page view: O(series + alerts), no chart work."""
        with self._lock:
            active = [a for a in self._alerts.values() if a.state in ("pending", "firing")]
            ranks: dict[str, int] = {}
            alerts_of: dict[str, list[AlertState]] = {}
            for a in active:
                rank = RANK_PENDING if a.state == "pending" else (
                    RANK_FIRING_PAGE if a.severity == "page" else RANK_FIRING_TICKET)
                for sid in self.affected(a):
                    ranks[sid] = max(ranks.get(sid, RANK_OK), rank)
                    alerts_of.setdefault(sid, []).append(a)
            rows = [SeriesRow(sid, s.key, s.calls, s.error_rate, s.p95_s, s.cost_per_call_usd, s.drift, s.anomaly,
                              s.relevance if s.quality is None else s.quality, s.last_ns, ranks.get(sid, RANK_OK), tuple(alerts_of.get(sid, ())))
                    for sid, s in self._series.items()]
            slos = [SLOState(s.name, s.service, dict(s.burn_rates), s.budget_remaining, s.time_ns)
                    for s in self._slos.values()]
            return Snapshot(sort_rows(rows), sorted(active, key=_alert_order), sorted(slos, key=lambda s: s.name),
                            self.dropped_series, self.version)

    def series_detail(self, sid: str) -> SeriesDetail | None:
        with self._lock:
            s = self._series.get(sid)
            if s is None:
                return None
            periods: list[tuple[int, int | None, str]] = []
            history = []
            for a in self._alerts.values():
                if sid in self.affected(a):
                    periods.extend((p[0] or 0, p[1], a.alert) for p in a.periods)
            for h in self._history:
                if sid in self.affected(h):
                    history.append(h)
            return SeriesDetail(sid, s.key, list(s.history), periods, history[-50:][::-1], s.exemplars)

    def series_count(self) -> int:
        with self._lock:
            return len(self._series)


class SeriesRow(NamedTuple):
    sid: str
    key: SeriesKey
    calls: int | None
    error_rate: float | None
    p95_s: float | None
    cost_per_call_usd: float | None
    drift: float | None
    anomaly: float | None
    quality: float | None  # evaluation quality (lowest over evaluation names), else retrieval relevance
    last_ns: int
    rank: int  # RANK_*: the worst active alert on the series
    alerts: tuple[AlertState, ...]


class Snapshot(NamedTuple):
    rows: list[SeriesRow]  # sorted by severity
    alerts: list[AlertState]  # active (pending or firing), worst first
    slos: list[SLOState]
    dropped_series: int
    version: int


class SeriesDetail(NamedTuple):
    sid: str
    key: SeriesKey
    history: list[WindowPoint]
    periods: list[tuple[int, int | None, str]]  # (start, end or None = still active, alert name)
    alert_history: list[AlertState]  # newest first
    exemplars: tuple[tuple[str, float], ...]


def sort_rows(rows: Iterable[SeriesRow]) -> list[SeriesRow]:
    """Worst first: alert rank, then error rate, anomaly score, p95 latency; series id breaks ties."""
    return sorted(rows, key=lambda r: (-r.rank, -(r.error_rate or 0.0), -(r.anomaly or 0.0), -(r.p95_s or 0.0), r.sid))


def _alert_order(a: AlertState) -> tuple[int, int, str, str]:
    return (0 if a.state == "firing" else 1, 0 if a.severity == "page" else 1, a.alert, a.series)


def _text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Sequence) and not isinstance(v, str):
        return ", ".join(_text(x) for x in v)
    return str(v)
