"""Alert state machines: pending -> firing -> resolved, with cooldown and de-duplication.

The detectors (SLO burn, drift, anomaly, cost) only say, once per window, whether a condition
holds for a series. This module turns those evaluations into *transitions*, which are what an
on-call engineer wants to be told about: one record when an alert starts pending, one when it
fires, one when it resolves. Everything keys off event time (the window end), so a replay of
the same spans produces the same transitions.

Rules (per alert name and series; one state each, which is the de-duplication):

* condition true while inactive -> ``pending`` (transition record);
* still true ``for_s`` after it became pending -> ``firing`` (with ``for_s`` = 0, the default,
  both transitions happen in the same evaluation);
* condition false while pending or firing -> ``resolved``;
* no evaluation at all for ``stale_after_s`` (the series stopped sending) -> ``resolved``;
* after a resolve, the same alert on the same series cannot go pending again for
  ``cooldown_s`` (default 15 min); evaluations suppressed that way are counted, not reported.

Transitions leave as OTLP log records, as the ``gensight.alerts.active`` gauge, and optionally as
an Alertmanager-compatible webhook, which runs in a background thread with a bounded queue and
never blocks the pipeline; the two output formats live in ``alert_delivery.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from gensight.processor.config_fields import reject_unknown
from gensight.processor.points import GAUGE, Analyser, Attributes, MetricPoint, Window
from gensight.processor.records import CallRecord

if TYPE_CHECKING:
    from gensight.processor.analyse.alert_delivery import WebhookSender

log = logging.getLogger(__name__)

INACTIVE = "inactive"
PENDING = "pending"
FIRING = "firing"
RESOLVED = "resolved"

PAGE = "page"
TICKET = "ticket"
SEVERITIES = (PAGE, TICKET)


DEFAULT_COOLDOWN_S = 900.0
DEFAULT_STALE_AFTER_S = 900.0
DEFAULT_MAX_ALERTS = 10_000


@dataclass(frozen=True)
class RuleConfig:
    runbook_url: str = ""
    for_s: float = 0.0
    cooldown_s: float = DEFAULT_COOLDOWN_S
    enabled: bool = True


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    timeout_s: float = 5.0
    max_queue: int = 1000
    max_attempts: int = 3


@dataclass(frozen=True)
class AlertsConfig:
    cooldown_s: float = DEFAULT_COOLDOWN_S
    for_s: float = 0.0
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    runbook_base_url: str = ""
    rules: Mapping[str, RuleConfig] = field(default_factory=dict)
    webhook: WebhookConfig | None = None
    max_alerts: int = DEFAULT_MAX_ALERTS
    trace_url_template: str = ""  # e.g. http://jaeger:16686/trace/{trace_id}: example-trace links

    def rule(self, name: str) -> RuleConfig:
        r = self.rules.get(name)
        if r is not None:
            return r
        url = f"{self.runbook_base_url.rstrip('/')}/{name}" if self.runbook_base_url else ""
        return RuleConfig(runbook_url=url, for_s=self.for_s, cooldown_s=self.cooldown_s)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "alerts") -> AlertsConfig:
        data = dict(data or {})
        known = {"cooldown_s", "for_s", "stale_after_s", "runbook_base_url", "rules", "webhook", "max_alerts",
                 "trace_url_template"}
        reject_unknown(data, known, where)
        cooldown = _nonneg(data.get("cooldown_s", DEFAULT_COOLDOWN_S), f"{where}.cooldown_s")
        for_s = _nonneg(data.get("for_s", 0.0), f"{where}.for_s")
        rules: dict[str, RuleConfig] = {}
        base = str(data.get("runbook_base_url", "") or "")
        raw_rules = data.get("rules") or {}
        if not isinstance(raw_rules, Mapping):
            raise ValueError(f"{where}.rules: must be a mapping of alert name -> settings")
        for name, rd in raw_rules.items():
            w = f"{where}.rules.{name}"
            rd = dict(rd or {})
            reject_unknown(rd, {"runbook_url", "for_s", "cooldown_s", "enabled"}, w)
            url = str(rd.get("runbook_url") or (f"{base.rstrip('/')}/{name}" if base else ""))
            rules[str(name)] = RuleConfig(
                runbook_url=url,
                for_s=_nonneg(rd.get("for_s", for_s), f"{w}.for_s"),
                cooldown_s=_nonneg(rd.get("cooldown_s", cooldown), f"{w}.cooldown_s"),
                enabled=bool(rd.get("enabled", True)),
            )
        webhook = None
        if data.get("webhook"):
            wd = dict(data["webhook"])
            reject_unknown(wd, {"url", "timeout_s", "max_queue", "max_attempts"}, f"{where}.webhook")
            webhook_url: Any = wd.get("url")
            if not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://")):
                raise ValueError(f"{where}.webhook.url: must be an http:// or https:// URL")
            webhook = WebhookConfig(
                url=webhook_url,
                timeout_s=_positive(wd.get("timeout_s", 5.0), f"{where}.webhook.timeout_s"),
                max_queue=int(_positive(wd.get("max_queue", 1000), f"{where}.webhook.max_queue")),
                max_attempts=int(_positive(wd.get("max_attempts", 3), f"{where}.webhook.max_attempts")),
            )
        return cls(
            cooldown_s=cooldown,
            for_s=for_s,
            stale_after_s=_positive(data.get("stale_after_s", DEFAULT_STALE_AFTER_S), f"{where}.stale_after_s"),
            runbook_base_url=base,
            rules=rules,
            webhook=webhook,
            max_alerts=int(_positive(data.get("max_alerts", DEFAULT_MAX_ALERTS), f"{where}.max_alerts")),
            trace_url_template=_trace_url_template(data.get("trace_url_template"), f"{where}.trace_url_template"),
        )


def _trace_url_template(value: Any, where: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or "{trace_id}" not in value:
        raise ValueError(f"{where}: must be a URL containing {{trace_id}}, got {value!r}")
    return value


def _nonneg(value: Any, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: must be a number, got {value!r}") from None
    if not v >= 0:
        raise ValueError(f"{where}: must be >= 0, got {value!r}")
    return v


def _positive(value: Any, where: str) -> float:
    v = _nonneg(value, where)
    if v == 0:
        raise ValueError(f"{where}: must be > 0")
    return v


class Transition(NamedTuple):
    """One state change of one alert on one series: what the log record and webhook carry."""

    alert: str
    series: str
    state: str  # pending | firing | resolved
    severity: str  # page | ticket
    value: float
    threshold: float
    time_ns: int  # event time of the evaluation that caused it
    starts_ns: int  # when the alert went pending
    service: str
    attributes: Attributes
    runbook_url: str
    reason: str = ""
    example_trace_ids: tuple[str, ...] = ()  # hex trace ids of calls that explain it (analyse/examples.py)


class _State:
    __slots__ = ("state", "severity", "since_ns", "last_eval_ns", "resolved_ns", "value", "threshold",
                 "service", "attributes")

    def __init__(self) -> None:
        self.state = INACTIVE
        self.severity = TICKET
        self.since_ns = 0
        self.last_eval_ns = 0
        self.resolved_ns: int | None = None
        self.value = 0.0
        self.threshold = 0.0
        self.service = ""
        self.attributes: Attributes = ()


class AlertEngine(Analyser):
    """Holds every alert's state; fed by detectors, closed last in each window.

    It is also an ``Analyser``: ``observe`` does nothing, ``close`` checks staleness and emits
    ``gensight.alerts.active``. Register it after the detectors so it sees their evaluations.
    """

    def __init__(self, config: AlertsConfig | None = None) -> None:
        self.config = config or AlertsConfig()
        self._states: dict[tuple[str, str], _State] = {}
        self._pending_out: list[Transition] = []
        self._lock = threading.Lock()
        self.suppressed = 0  # evaluations held back by a cooldown
        self.dropped_states = 0  # alerts not tracked because max_alerts was reached
        self.webhook: WebhookSender | None = None
        if self.config.webhook:
            from gensight.processor.analyse.alert_delivery import WebhookSender

            self.webhook = WebhookSender(self.config.webhook, self.config.trace_url_template)
        # (alert, series, service, attributes, time_ns) -> example trace ids; None = none attached
        self.examples: Callable[[str, str, str, Attributes, int], tuple[str, ...]] | None = None
        # where transitions go at each close (the pipeline: OTLP log records); None = keep them
        # for drain_transitions()
        self.sink: Callable[[list[Transition]], None] | None = None

    # -- detectors call this ------------------------------------------------------------
    def evaluate(
        self,
        alert: str,
        series: str,
        active: bool,
        *,
        value: float,
        threshold: float,
        time_ns: int,
        severity: str = TICKET,
        service: str = "",
        attributes: Attributes = (),
    ) -> None:
        rule = self.config.rule(alert)
        if not rule.enabled:
            return
        key = (alert, series)
        with self._lock:
            st = self._states.get(key)
            if st is None:
                if not active:
                    return
                if len(self._states) >= self.config.max_alerts and not self._evict():
                    self.dropped_states += 1
                    return
                st = self._states[key] = _State()
            st.last_eval_ns = time_ns
            st.value = float(value)
            st.threshold = float(threshold)
            if service:
                st.service = service
            if attributes:
                st.attributes = attributes
            if active:
                if st.state in (INACTIVE, RESOLVED):
                    if st.resolved_ns is not None and time_ns - st.resolved_ns < rule.cooldown_s * 1e9:
                        self.suppressed += 1
                        return
                    st.severity = severity
                    st.state = PENDING
                    st.since_ns = time_ns
                    self._emit(alert, series, st, rule, time_ns)
                if st.state == PENDING and time_ns - st.since_ns >= rule.for_s * 1e9:
                    st.state = FIRING
                    self._emit(alert, series, st, rule, time_ns)
                elif st.state == FIRING and severity == PAGE and st.severity != PAGE:
                    st.severity = PAGE  # escalation keeps one state; the next record says page
                    self._emit(alert, series, st, rule, time_ns)
            elif st.state in (PENDING, FIRING):
                self._resolve(alert, series, st, rule, time_ns, "condition cleared")

    def _resolve(self, alert: str, series: str, st: _State, rule: RuleConfig, time_ns: int, reason: str) -> None:
        st.state = RESOLVED
        st.resolved_ns = time_ns
        self._emit(alert, series, st, rule, time_ns, reason)

    def _emit(self, alert: str, series: str, st: _State, rule: RuleConfig, time_ns: int, reason: str = "") -> None:
        examples = self.examples(alert, series, st.service, st.attributes, time_ns) if self.examples else ()
        t = Transition(alert, series, st.state, st.severity, st.value, st.threshold, time_ns, st.since_ns,
                       st.service, st.attributes, rule.runbook_url, reason, examples)
        self._pending_out.append(t)
        if self.webhook is not None and st.state in (FIRING, RESOLVED):
            self.webhook.submit(t)

    def _evict(self) -> bool:
        """Forget one resolved alert whose cooldown is over, to make room; False when none is."""
        for key, st in self._states.items():
            if st.state in (INACTIVE, RESOLVED):
                del self._states[key]
                return True
        return False

    # -- Analyser ---------------------------------------------------------------------
    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        return None

    def close(self, window: Window) -> list[MetricPoint]:
        now = window.end_ns
        stale_ns = self.config.stale_after_s * 1e9
        counts: dict[tuple[str, str, str], int] = {}
        with self._lock:
            for (alert, series), st in list(self._states.items()):
                if st.state in (PENDING, FIRING) and now - st.last_eval_ns > stale_ns:
                    self._resolve(alert, series, st, self.config.rule(alert), now, "no data")
                if st.state == RESOLVED and st.resolved_ns is not None and \
                        now - st.resolved_ns > self.config.rule(alert).cooldown_s * 1e9:
                    del self._states[(alert, series)]
                    continue
                if st.state == FIRING:
                    k = (st.service or "gensight", alert, st.severity)
                    counts[k] = counts.get(k, 0) + 1
            # every alert name ever seen keeps a (possibly zero) point so the gauge drops to 0
            for (alert, _), st in self._states.items():
                counts.setdefault((st.service or "gensight", alert, st.severity), 0)
        if self.sink is not None:
            transitions = self.drain_transitions()
            if transitions:
                self.sink(transitions)
        return [
            MetricPoint("gensight.alerts.active", GAUGE, "{alert}", svc, (("alert", alert), ("severity", sev)),
                        float(n), window.start_ns, window.end_ns)
            for (svc, alert, sev), n in sorted(counts.items())
        ]

    def drain_transitions(self) -> list[Transition]:
        """Transitions since the last call, in the order they happened."""
        with self._lock:
            out, self._pending_out = self._pending_out, []
        return out

    def active(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [(a, s, st.severity) for (a, s), st in self._states.items() if st.state == FIRING]

    def state_of(self, alert: str, series: str) -> str:
        st = self._states.get((alert, series))
        return st.state if st else INACTIVE

    # -- state --------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "alerts": [
                    [a, s, st.state, st.severity, st.since_ns, st.last_eval_ns, st.resolved_ns, st.value,
                     st.threshold, st.service, [list(kv) for kv in st.attributes]]
                    for (a, s), st in self._states.items()
                ],
                "suppressed": self.suppressed,
            }

    def import_state(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._states.clear()
            for a, s, state, sev, since, last, resolved, value, thr, svc, attrs in data.get("alerts", []):
                st = _State()
                st.state, st.severity, st.since_ns, st.last_eval_ns = state, sev, int(since), int(last)
                st.resolved_ns = None if resolved is None else int(resolved)
                st.value, st.threshold, st.service = float(value), float(thr), svc
                st.attributes = tuple((str(k), v) for k, v in attrs)
                self._states[(a, s)] = st
            self.suppressed = int(data.get("suppressed", 0))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        if self.webhook is not None:
            self.webhook.shutdown(timeout_s)
