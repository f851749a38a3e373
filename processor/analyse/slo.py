"""Service level objectives: exact good/total counts, burn rates and multiwindow burn-rate alerts.

Counts are kept exactly, per SLO, in fixed event-time buckets (default 5 min) in a ring as long as
the SLO period (30 d -> 8,640 buckets, two int64 arrays). A window of length W evaluated at event
time t covers the ``ceil(W / bucket)`` buckets ending with the bucket that holds ``t - 1 ns``: at
bucket-aligned times that is exactly the last W; in between, the newest bucket is still filling.

Burn rate = error ratio / (1 - target); budget remaining = 1 - bad / ((1 - target) x total) over
the period (SRE workbook). Alerts (SRE workbook, chapter 5):

* page   when burn > 14.4 over 1h AND 5m, or burn > 6 over 6h AND 30m;
* ticket when burn > 1 over 3d AND 6h.

Low-traffic guard: a burn-rate condition over a (long, short) window pair only counts when the long
window holds at least ``min_events`` calls (default 30), the short one at least
``min_short_events`` (default 5), and the short window holds at least ``min_bad_events`` bad calls
(default 3). One error at 3 a.m. in a quiet hour is a 100 % error ratio, but it does not page.
And a rule is only evaluated once the SLO has counted calls for at least its short window (6 h for
the ticket): right after start-up, the "3d" window holds minutes of data, not three days.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gensight.processor.analyse.alerts import PAGE, TICKET, AlertEngine
from gensight.processor.config_fields import Section, build_section, check, check_positive, fmt
from gensight.processor.labels import Selector, with_selector
from gensight.processor.points import GAUGE, Analyser, MetricPoint, Window
from gensight.processor.records import CallRecord

AVAILABILITY = "availability"
LATENCY = "latency"
COST = "cost"
QUALITY = "quality"  # good = the named evaluation passes (counted at the evaluation's own time)
SLO_TYPES = (AVAILABILITY, LATENCY, COST, QUALITY)

# name -> seconds; the burn-rate windows exported as the ``window`` attribute
WINDOWS_S: dict[str, int] = {"5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200}

# (alert, severity, long window, short window, burn threshold) — SRE workbook defaults
ALERT_RULES: tuple[tuple[str, str, str, str, float], ...] = (
    ("slo_burn_fast", PAGE, "1h", "5m", 14.4),
    ("slo_burn_medium", PAGE, "6h", "30m", 6.0),
    ("slo_burn_slow", TICKET, "3d", "6h", 1.0),
)

DEFAULT_PERIOD_S = 30 * 86400
DEFAULT_BUCKET_S = 300


@dataclass(frozen=True)
class SLOConfig(Section):
    """One entry of ``analytics.slos`` (named ``analytics.slos[i]``)."""

    name: str
    target: float = field(metadata={"required": "e.g. 0.995"})
    type: str = AVAILABILITY
    selector: Selector = field(default_factory=Selector)
    threshold_s: float | None = None  # latency SLOs: good = duration <= threshold
    threshold_usd: float | None = None  # cost SLOs: good = cost per call <= threshold
    evaluation: str | None = None  # quality SLOs: the gen_ai.evaluation.name whose pass ratio is the SLI
    period_s: int = DEFAULT_PERIOD_S
    bucket_s: int = DEFAULT_BUCKET_S
    min_events: int = 30
    min_short_events: int = 5
    min_bad_events: int = 3

    @classmethod
    def from_mapping(cls, data: Any, key: str) -> SLOConfig:
        """As ``Section.from_mapping``; ``period`` is an alias of ``period_s``, both durations
        (``30d``) and ``bucket_s`` take durations; a target in (1, 100) is a percentage."""
        data = with_selector(data, key)
        if isinstance(data, Mapping):
            data = dict(data)
            if "period" in data:
                data.setdefault("period_s", data.pop("period"))
            for name in ("period_s", "bucket_s"):
                if name in data:
                    data[name] = parse_duration_s(data[name], f"{key}.{name}")
            target = data.get("target")
            if isinstance(target, (int, float)) and not isinstance(target, bool) and 1 < target < 100:
                data["target"] = target / 100.0  # "99.5" means percent
        cfg = build_section(cls, data, key)
        return cfg if cfg.type == QUALITY else replace(cfg, evaluation=None)  # only a quality SLO has one

    def validate(self, key: str) -> None:
        check(bool(self.name), f"{key}.name", "required, a non-empty string")
        check(self.type in SLO_TYPES, f"{key}.type", f"must be one of {', '.join(SLO_TYPES)}, got {self.type!r}")
        check(0 < self.target < 1, f"{key}.target", f"must be in (0, 1) (or a percentage), got {fmt(self.target)}")
        check_positive(self, key, skip=("min_events", "min_short_events", "min_bad_events"))
        check(self.type != LATENCY or self.threshold_s is not None, f"{key}.threshold_s", "required for a latency SLO")
        check(self.type != COST or self.threshold_usd is not None, f"{key}.threshold_usd", "required for a cost SLO")
        check(self.type != QUALITY or bool(self.evaluation), f"{key}.evaluation",
              "required for a quality SLO (a gen_ai.evaluation.name)")
        check(self.period_s % self.bucket_s == 0 and self.period_s >= max(WINDOWS_S.values()), f"{key}.period_s",
              f"must be a multiple of bucket_s and at least 3d, got {self.period_s}")
        for name in ("min_events", "min_short_events", "min_bad_events"):
            value = getattr(self, name)
            check(value >= 0, f"{key}.{name}", f"must be a non-negative integer, got {value!r}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration_s(v: Any, where: str) -> int:
    """Seconds from a number or a string such as ``30d``, ``6h``, ``300``."""
    if isinstance(v, bool):
        raise ValueError(f"{where}: must be a duration such as 300, '5m' or '30d', got {v!r}")
    if isinstance(v, (int, float)):
        secs = float(v)
    elif isinstance(v, str) and v.strip():
        s = v.strip().lower()
        try:
            secs = float(s[:-1]) * _UNITS[s[-1]] if s[-1] in _UNITS else float(s)
        except ValueError:
            raise ValueError(f"{where}: must be a duration such as 300, '5m' or '30d', got {v!r}") from None
    else:
        raise ValueError(f"{where}: must be a duration such as 300, '5m' or '30d', got {v!r}")
    if not secs >= 1 or secs != int(secs) or math.isinf(secs):
        raise ValueError(f"{where}: must be a whole number of seconds >= 1, got {v!r}")
    return int(secs)


class SLOCounter:
    """Exact good/total counts of one SLO in a ring of event-time buckets."""

    def __init__(self, config: SLOConfig) -> None:
        self.config = config
        self.bucket_ns = config.bucket_s * 1_000_000_000
        self.n = config.period_s // config.bucket_s
        self.good = np.zeros(self.n, dtype=np.int64)
        self.total = np.zeros(self.n, dtype=np.int64)
        self.bucket_no = np.full(self.n, -1, dtype=np.int64)  # which absolute bucket each slot holds
        self.newest = -1
        self.oldest = -1  # first bucket ever counted: how much history the SLO really has
        self.dropped_old = 0  # records older than the period

    def is_good(self, rec: CallRecord) -> bool:
        c = self.config
        if c.type == AVAILABILITY:
            return not rec.error
        if c.type == LATENCY:
            return (not rec.error) and rec.duration_s <= (c.threshold_s or 0.0)
        cost = rec.cost_usd
        return cost is None or cost <= (c.threshold_usd or 0.0)

    def add(self, end_ns: int, good: bool) -> None:
        b = end_ns // self.bucket_ns
        if self.newest >= 0 and b <= self.newest - self.n:
            self.dropped_old += 1
            return
        i = b % self.n
        if self.bucket_no[i] != b:
            self.bucket_no[i] = b
            self.good[i] = 0
            self.total[i] = 0
        self.total[i] += 1
        if good:
            self.good[i] += 1
        if b > self.newest:
            self.newest = b
        if self.oldest < 0 or b < self.oldest:
            self.oldest = b

    def counts(self, now_ns: int, span_s: int) -> tuple[int, int]:
        """(good, total) over the last ``span_s`` ending at ``now_ns`` (bucket granularity)."""
        last = (now_ns - 1) // self.bucket_ns
        k = min(self.n, -(-span_s // self.config.bucket_s))
        first = last - k + 1
        mask = (self.bucket_no >= first) & (self.bucket_no <= last)
        return int(self.good[mask].sum()), int(self.total[mask].sum())

    def history_s(self, now_ns: int) -> float:
        """Seconds of event time since the first counted bucket began (0 when nothing was counted)."""
        if self.oldest < 0:
            return 0.0
        return (now_ns - self.oldest * self.bucket_ns) / 1e9

    def burn_rate(self, now_ns: int, span_s: int) -> tuple[float, int, int]:
        good, total = self.counts(now_ns, span_s)
        bad = total - good
        if total == 0:
            return 0.0, 0, 0
        return (bad / total) / (1.0 - self.config.target), total, bad

    def budget_remaining(self, now_ns: int) -> float:
        good, total = self.counts(now_ns, self.config.period_s)
        if total == 0:
            return 1.0
        return 1.0 - (total - good) / ((1.0 - self.config.target) * total)

    def export_state(self) -> dict[str, Any]:
        live = self.bucket_no >= 0
        return {"bucket_s": self.config.bucket_s, "period_s": self.config.period_s,
                "buckets": self.bucket_no[live].tolist(), "good": self.good[live].tolist(),
                "total": self.total[live].tolist(), "newest": int(self.newest), "oldest": int(self.oldest)}

    def import_state(self, data: Mapping[str, Any]) -> None:
        if data.get("bucket_s") != self.config.bucket_s:
            return  # bucket size changed in config: the old counts cannot be re-bucketed exactly
        for b, g, t in zip(data["buckets"], data["good"], data["total"], strict=True):
            if self.newest >= 0 and b <= self.newest - self.n:
                continue
            i = b % self.n
            self.bucket_no[i], self.good[i], self.total[i] = b, g, t
        self.newest = max(self.newest, int(data.get("newest", -1)))
        old = int(data.get("oldest", -1))
        if old >= 0 and (self.oldest < 0 or old < self.oldest):
            self.oldest = old


class SLOAnalyser(Analyser):
    """Counts every configured SLO and, at each window close, emits burn rates and budgets."""

    def __init__(self, slos: Sequence[SLOConfig], alerts: AlertEngine | None = None) -> None:
        self.counters = {s.name: SLOCounter(s) for s in slos}
        self.alerts = alerts

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        for c in self.counters.values():
            if c.config.type == QUALITY:
                continue
            sel = c.config.selector
            for rec in records:
                if sel.matches(rec):
                    c.add(rec.end_ns, c.is_good(rec))

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        """Quality SLOs: joined evaluations of the SLO's name whose call matches the selector;
        good = ``pass``, bad = ``fail`` (a judge's ``error`` counts as neither)."""
        for c in self.counters.values():
            if c.config.type != QUALITY:
                continue
            sel, name = c.config.selector, c.config.evaluation
            for ev in evaluations:
                if ev.name == name and ev.outcome in ("pass", "fail") and ev.call is not None and sel.matches(ev.call):
                    c.add(ev.end_ns, ev.outcome == "pass")

    def close(self, window: Window) -> list[MetricPoint]:
        now = window.end_ns
        out: list[MetricPoint] = []
        for name, c in self.counters.items():
            if c.oldest < 0:
                # no call ever matched: say nothing, so that with the service routed to another
                # replica (scale-out by service) only that replica exports the objective
                continue
            svc = c.config.selector.resource_service()
            burns = {}
            for wname, span_s in WINDOWS_S.items():
                burns[wname] = c.burn_rate(now, span_s)
                out.append(MetricPoint("gensight.slo.burn_rate", GAUGE, "1", svc,
                                       (("slo", name), ("window", wname)), burns[wname][0], window.start_ns, now))
            out.append(MetricPoint("gensight.slo.error_budget.remaining", GAUGE, "1", svc, (("slo", name),),
                                   c.budget_remaining(now), window.start_ns, now))
            if self.alerts is not None:
                history_s = c.history_s(now)
                for alert, sev, long_w, short_w, thr in ALERT_RULES:
                    # a "3d" burn over the first minutes of data is not a 3d burn: a rule starts once the
                    # SLO has counted for at least its short window
                    active = history_s >= WINDOWS_S[short_w] and \
                        self.condition(c.config, burns[long_w], burns[short_w], thr)
                    self.alerts.evaluate(alert, name, active, value=min(burns[long_w][0], burns[short_w][0]),
                                         threshold=thr, time_ns=now, severity=sev, service=svc,
                                         attributes=(("slo", name),))
        return out

    @staticmethod
    def condition(cfg: SLOConfig, long_b: tuple[float, int, int], short_b: tuple[float, int, int], thr: float) -> bool:
        """Multiwindow condition with the low-traffic guard (see the module docstring)."""
        (lb, ltotal, _), (sb, stotal, sbad) = long_b, short_b
        if ltotal < cfg.min_events or stotal < cfg.min_short_events or sbad < cfg.min_bad_events:
            return False
        return lb > thr and sb > thr

    def export_state(self) -> dict[str, Any]:
        return {name: c.export_state() for name, c in self.counters.items()}

    def import_state(self, data: Mapping[str, Any]) -> None:
        for name, d in data.items():
            if name in self.counters:
                self.counters[name].import_state(d)
