"""The demo's view-model: the latest value of every signal, per series, built from metric points.

The processor hands each closed window's ``MetricPoint`` list to ``DemoView.update``; the
renderers (``gensight.demo.render``) only read the view. Keeping the maths here (deltas of
cumulative sums, error rates, detection bookkeeping) makes it testable without a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gensight.processor.points import HistogramValue, MetricPoint, Window

# Contract names (docs/metrics.md).
CALLS = "gensight.calls"
COST = "gensight.cost"
TOKENS = "gensight.tokens"
LATENCY = "gensight.sli.latency"
COST_PER_CALL = "gensight.sli.cost_per_call"
RELEVANCE = "gensight.sli.relevance"
QUALITY = "gensight.sli.quality"  # the services' concision judge (gen_ai.evaluation.result)
BURN_RATE = "gensight.slo.burn_rate"
BUDGET_REMAINING = "gensight.slo.error_budget.remaining"
DRIFT_SCORE = "gensight.drift.score"
ANOMALY_SCORE = "gensight.anomaly.score"
ALERTS_ACTIVE = "gensight.alerts.active"
PROCESSOR_SPANS = "gensight.processor.spans"
COST_RATE = "gensight.cost.rate"
SELF_TELEMETRY_PREFIX = "gensight.processor."

ATTR_OPERATION = "gen_ai.operation.name"
TARGET_ATTRS = ("gen_ai.request.model", "gen_ai.tool.name", "gen_ai.data_source.id")
ATTR_OVERFLOW = "otel.metric.overflow"

ANOMALY_ALERT_THRESHOLD = 0.7  # the processor's default anomaly alert level (issue 4)
DRIFT_ALERT_THRESHOLD = 0.5


class SeriesId(NamedTuple):
    service: str
    operation: str
    target: str

    def label(self) -> str:
        return f"{self.service} / {self.operation} {self.target}".rstrip()


@dataclass
class SeriesState:
    """What the live table shows for one series."""

    calls_total: float = 0.0
    errors_total: float = 0.0
    cost_total_usd: float = 0.0
    tokens_total: float = 0.0
    window_calls: float = 0.0
    window_errors: float = 0.0
    window_cost_usd: float = 0.0
    p95_s: float | None = None
    cost_per_call_usd: float | None = None
    relevance: float | None = None
    quality: float | None = None  # mean evaluation score (the demo judges one name: concision)
    drift: float | None = None
    anomaly: float | None = None
    updated_window: int = -1  # index of the last window that carried a point for this series
    calls_by_outcome: dict[tuple[str, str], float] = field(default_factory=dict)  # cumulative
    tokens_by_type: dict[str, float] = field(default_factory=dict)  # cumulative

    @property
    def error_rate(self) -> float | None:
        return self.window_errors / self.window_calls if self.window_calls else None


class AlertId(NamedTuple):
    name: str
    severity: str
    service: str
    target: str


@dataclass
class SloState:
    service: str
    burn: dict[str, float] = field(default_factory=dict)  # window label -> burn rate
    budget_remaining: float | None = None


@dataclass
class Detection:
    """When the incident was first visible, and through which signals."""

    window_index: int  # index of the first window, after injection, with a signal
    windows_after_injection: int  # 1 = the first window that contains incident traffic
    signals: list[str]


def series_of(point: MetricPoint) -> SeriesId:
    attrs = dict(point.attributes)
    if attrs.get(ATTR_OVERFLOW):
        return SeriesId(point.service, "overflow", "")
    target = next((str(attrs[a]) for a in TARGET_ATTRS if a in attrs), "")
    return SeriesId(point.service, str(attrs.get(ATTR_OPERATION, "")), target)


class DemoView:
    """Latest values per series / SLO / alert, fed window by window, in window order."""

    def __init__(
        self,
        incident_start_ns: int | None = None,
        incident_model: str | None = None,
        incident_services: Iterable[str] | None = None,
    ) -> None:
        self.series: dict[SeriesId, SeriesState] = {}
        self.slos: dict[str, SloState] = {}
        self.active_alerts: dict[AlertId, float] = {}
        self.fired_alerts: dict[AlertId, int] = {}  # alert -> first window index it was active
        self.windows: list[Window] = []
        self.spans: dict[str, float] = {}  # processor self-telemetry: outcome -> cumulative count
        self.service_cost_rate: dict[str, float] = {}  # service -> USD per minute (latest)
        self.service_drift: dict[str, float] = {}  # service -> drift score of its model mix
        self.incident_start_ns = incident_start_ns
        self.incident_model = incident_model
        self.detection: Detection | None = None
        # services that call the incident model (None: any service counts)
        self.incident_services = set(incident_services) if incident_services is not None else None
        self.false_alarms: set[AlertId] = set()  # alerts active before the incident started
        self._active_before_incident: set[AlertId] = set()

    # -- feeding -----------------------------------------------------------------------------

    @property
    def window_index(self) -> int:
        return len(self.windows) - 1

    @property
    def last_window(self) -> Window | None:
        return self.windows[-1] if self.windows else None

    def update(self, window: Window, points: Iterable[MetricPoint]) -> None:
        """Apply one closed window's points. Windows must arrive in order."""
        if self.windows and window.end_ns <= self.windows[-1].end_ns:
            return  # a duplicate or out-of-order window: keep the view monotonic
        self.windows.append(window)
        index = self.window_index
        touched: set[SeriesId] = set()
        alerts_now: dict[AlertId, float] = {}
        for point in points:
            name = point.name
            if name in (BURN_RATE, BUDGET_REMAINING):
                self._apply_slo(point)
                continue
            if name == ALERTS_ACTIVE:
                attrs = dict(point.attributes)
                alert = AlertId(
                    str(attrs.get("alert", "?")),
                    str(attrs.get("severity", "")),
                    point.service,
                    series_of(point).target,
                )
                if _number(point.value) > 0:
                    alerts_now[alert] = _number(point.value)
                continue
            if name.startswith(SELF_TELEMETRY_PREFIX):
                if name == PROCESSOR_SPANS:
                    outcome = str(dict(point.attributes).get("outcome", "?"))
                    self.spans[outcome] = _number(point.value)
                continue
            sid = series_of(point)
            if not sid.operation:  # a per-service point (cost rate, model-mix drift)
                if name == COST_RATE:
                    self.service_cost_rate[point.service] = _number(point.value)
                elif name == DRIFT_SCORE:
                    self.service_drift[point.service] = _number(point.value)
                continue
            state = self.series.setdefault(sid, SeriesState())
            if sid not in touched:
                touched.add(sid)
                state.window_calls = state.window_errors = state.window_cost_usd = 0.0
                state.updated_window = index
            self._apply_series(state, point)
        self.active_alerts = alerts_now  # the gauge is re-exported every window while firing
        for alert in alerts_now:
            self.fired_alerts.setdefault(alert, index)
        self._track_detection(window, index)

    def apply_self_telemetry(self, points: Iterable[MetricPoint]) -> None:
        """Take only the processor's own counters from ``points`` (a window not shown)."""
        for point in points:
            if point.name == PROCESSOR_SPANS:
                self.spans[str(dict(point.attributes).get("outcome", "?"))] = _number(point.value)

    def _apply_slo(self, point: MetricPoint) -> None:
        attrs = dict(point.attributes)
        slo = self.slos.setdefault(str(attrs.get("slo", "?")), SloState(point.service))
        if point.name == BURN_RATE:
            slo.burn[str(attrs.get("window", "?"))] = _number(point.value)
        else:
            slo.budget_remaining = _number(point.value)

    def _apply_series(self, state: SeriesState, point: MetricPoint) -> None:
        attrs = dict(point.attributes)
        name, value = point.name, point.value
        if name == CALLS:
            # cumulative monotonic sum, one point per outcome/error.type: the window's share is
            # the increase since the previous window.
            total = _number(value)
            is_error = attrs.get("outcome") == "error"
            key = ("err", str(attrs.get("error.type", ""))) if is_error else ("ok", "")
            delta = _increase(state.calls_by_outcome.get(key, 0.0), total)
            state.calls_by_outcome[key] = total
            state.window_calls += delta
            state.calls_total += delta
            if is_error:
                state.window_errors += delta
                state.errors_total += delta
        elif name == COST:
            total = _number(value)
            state.window_cost_usd = _increase(state.cost_total_usd, total)
            state.cost_total_usd = total
        elif name == TOKENS:
            state.tokens_by_type[str(attrs.get("gen_ai.token.type", ""))] = _number(value)
            state.tokens_total = sum(state.tokens_by_type.values())
        elif name == LATENCY:
            if str(attrs.get("quantile")) in ("0.95", "0.95000"):
                state.p95_s = _number(value)
        elif name == COST_PER_CALL:
            state.cost_per_call_usd = _number(value)
        elif name == RELEVANCE:
            state.relevance = _number(value)
        elif name == QUALITY:
            state.quality = _number(value)
        elif name == DRIFT_SCORE:
            state.drift = _number(value)
        elif name == ANOMALY_SCORE:
            state.anomaly = _number(value)

    # -- incident bookkeeping -------------------------------------------------------------------

    def incident_active(self, window: Window | None = None) -> bool:
        window = window or self.last_window
        return (
            self.incident_start_ns is not None and window is not None and window.end_ns > self.incident_start_ns
        )

    def is_incident_series(self, sid: SeriesId) -> bool:
        return self.incident_model is not None and sid.target == self.incident_model

    def affected_service(self, service: str) -> bool:
        return self.incident_services is None or service in self.incident_services

    def signals(self) -> list[str]:
        """Signals in the latest window that point at the incident.

        Counted: alerts on a service that calls the incident model which were not already
        firing before the injection, and anomaly or drift scores over their alert levels on a
        series of the incident model.
        """
        found: list[str] = []
        for alert in sorted(self.active_alerts):
            if alert in self._active_before_incident or not self.affected_service(alert.service):
                continue
            label = f"alert {alert.name}" + (f" ({alert.severity})" if alert.severity else "")
            found.append(f"{label} on {alert.service}")
        index = self.window_index
        for sid, state in sorted(self.series.items()):
            if not self.is_incident_series(sid) or state.updated_window != index:
                continue
            if state.anomaly is not None and state.anomaly >= ANOMALY_ALERT_THRESHOLD:
                found.append(f"anomaly {state.anomaly:.2f} on {sid.label()}")
            if state.drift is not None and state.drift >= DRIFT_ALERT_THRESHOLD:
                found.append(f"drift {state.drift:.2f} on {sid.label()}")
        return found

    def _track_detection(self, window: Window, index: int) -> None:
        if self.incident_start_ns is None:
            return
        if not self.incident_active(window):
            self.false_alarms.update(self.active_alerts)
            self._active_before_incident = set(self.active_alerts)
            return
        if self.detection is not None:
            return
        signals = self.signals()
        if signals:
            first = next(i for i, w in enumerate(self.windows) if w.end_ns > self.incident_start_ns)
            self.detection = Detection(index, index - first + 1, signals)

    # -- summaries ------------------------------------------------------------------------------

    def totals(self) -> tuple[float, float, float]:
        """(calls, errors, cost USD) over all series so far."""
        calls = sum(s.calls_total for s in self.series.values())
        errors = sum(s.errors_total for s in self.series.values())
        cost = sum(s.cost_total_usd for s in self.series.values())
        return calls, errors, cost

    def window_totals(self) -> tuple[float, float]:
        index = self.window_index
        live = [s for s in self.series.values() if s.updated_window == index]
        return sum(s.window_calls for s in live), sum(s.window_errors for s in live)

    def worst_series(self) -> tuple[SeriesId, SeriesState] | None:
        """The series with the highest anomaly score in the latest window (ties: highest p95)."""
        index = self.window_index
        live = [(sid, s) for sid, s in self.series.items() if s.updated_window == index]
        if not live:
            return None
        return max(live, key=lambda item: (item[1].anomaly or 0.0, item[1].p95_s or 0.0))


def _number(value: float | HistogramValue) -> float:
    if isinstance(value, HistogramValue):
        return float(value.total)
    return float(value)


def _increase(previous: float, current: float) -> float:
    """The increase of a cumulative sum; a value below the previous one means it restarted."""
    return current - previous if current >= previous else current


# --- from the exported OTLP request ---------------------------------------------------------


def _any_value(value: Any) -> str | int | float | bool:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "int_value", "double_value", "bool_value"):
        return getattr(value, kind)  # type: ignore[no-any-return]
    return str(value)


def windows_from_request(request: Any, window_ns: int) -> list[tuple[Window, list[MetricPoint]]]:
    """Split an OTLP ``ExportMetricsServiceRequest`` back into per-window ``MetricPoint`` lists.

    The demo's view listens where any OTLP backend would — on the exported metrics — so it
    shows exactly what was exported. Points of one window share their time (the window end, in
    event time); the processor's self-telemetry is stamped in wall time in live mode, so it is
    attached to the latest window of the request.
    """
    by_end: dict[int, list[MetricPoint]] = {}
    self_points: list[MetricPoint] = []
    for rm in request.resource_metrics:
        service = ""
        for kv in rm.resource.attributes:
            if kv.key == "service.name":
                service = str(_any_value(kv.value))
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind not in ("sum", "gauge", "histogram"):
                    continue
                data = getattr(metric, kind)
                monotonic = bool(getattr(data, "is_monotonic", True))
                for dp in data.data_points:
                    attrs = tuple((kv.key, _any_value(kv.value)) for kv in dp.attributes)
                    value: float | HistogramValue
                    if kind == "histogram":
                        value = HistogramValue(
                            int(dp.count), float(dp.sum), tuple(dp.bucket_counts), tuple(dp.explicit_bounds),
                            dp.min if dp.HasField("min") else None, dp.max if dp.HasField("max") else None,
                        )
                    else:
                        value = float(dp.as_int) if dp.WhichOneof("value") == "as_int" else float(dp.as_double)
                    point = MetricPoint(
                        metric.name, kind, metric.unit, service, attrs, value,
                        int(dp.start_time_unix_nano), int(dp.time_unix_nano), monotonic,
                    )
                    if metric.name.startswith(SELF_TELEMETRY_PREFIX):
                        self_points.append(point)
                    else:
                        by_end.setdefault(point.time_ns, []).append(point)
    out = [(Window(end - window_ns, end), pts) for end, pts in sorted(by_end.items())]
    if self_points and out:
        out[-1][1].extend(self_points)
    return out
