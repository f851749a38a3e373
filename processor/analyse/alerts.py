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

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from gensight.processor.config_fields import Section, build_section, check, check_positive, fmt
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
class RuleConfig(Section):
    """``analytics.alerts.rules.<alert>``; absent keys default to the section's values."""

    runbook_url: str = ""
    for_s: float = 0.0
    cooldown_s: float = DEFAULT_COOLDOWN_S
    enabled: bool = True

    def validate(self, key: str) -> None:
        _non_negative(self, key, ("for_s", "cooldown_s"))


@dataclass(frozen=True)
class WebhookConfig(Section):
    url: str = ""
    timeout_s: float = 5.0
    max_queue: int = 1000
    max_attempts: int = 3

    def validate(self, key: str) -> None:
        check(self.url.startswith(("http://", "https://")), f"{key}.url", "must be an http:// or https:// URL")
        check_positive(self, key)


@dataclass(frozen=True)
class AlertsConfig(Section):
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
    def from_mapping(cls, data: Any, key: str = "alerts") -> AlertsConfig:
        """As ``Section.from_mapping``; each rule's absent keys take the section's ``for_s``,
        ``cooldown_s`` and ``runbook_base_url/<alert>``; an empty ``webhook`` is none."""
        data = dict(data or {})
        raw_rules = data.pop("rules", None) or {}
        webhook = data.pop("webhook", None) or None
        data["trace_url_template"] = data.get("trace_url_template") or ""
        cfg = build_section(cls, data, key)
        check(isinstance(raw_rules, Mapping), f"{key}.rules", "must be a mapping of alert name -> settings")
        rules = {}
        for name, rd in raw_rules.items():
            check(isinstance(rd or {}, Mapping), f"{key}.rules.{name}", f"must be a mapping, got {rd!r}")
            defaults = dataclasses.asdict(cfg.rule(str(name)))
            rules[str(name)] = RuleConfig.from_mapping({**defaults, **(rd or {})}, f"{key}.rules.{name}")
        hook = None if webhook is None else WebhookConfig.from_mapping(webhook, f"{key}.webhook")
        return dataclasses.replace(cfg, rules=rules, webhook=hook)

    def validate(self, key: str = "alerts") -> None:
        _non_negative(self, key, ("cooldown_s", "for_s"))
        check_positive(self, key, skip=("cooldown_s", "for_s"))
        template = self.trace_url_template
        check(not template or "{trace_id}" in template, f"{key}.trace_url_template",
              f"must be a URL containing {{trace_id}}, got {template!r}")


def _non_negative(section: Any, key: str, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(section, name)
        check(value >= 0, f"{key}.{name}", f"must be >= 0, got {fmt(value)}")


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
