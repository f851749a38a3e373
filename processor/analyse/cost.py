"""Cost: USD per minute per service (and per hashed tenant), monthly budgets, cost spikes.

* ``gensight.cost.rate`` (USD/min) = cost of the calls that ended in the window / window length.
  With ``per_tenant: true`` the top ``max_tenants`` tenants of each window get their own point with
  attribute ``tenant`` (the keyed hash the normaliser stored; raw ids never reach this module), the
  rest are folded into ``tenant=_overflow``.
* Budgets: ``{name, limit_usd, selector, tenant}`` per calendar month (UTC, event time). Emits
  ``gensight.budget.used`` = spent / limit; alerts ``budget`` on series ``<name>:80%`` and
  ``<name>:95%`` (ticket) and ``<name>:100%`` (page), resolved when a new month starts.
* Cost spike (alert ``cost_spike``, page), held to a stated false-alarm rate: over the latest
  window, or over the last ``spike_window_s`` (5 min), the service's spend is at least
  ``spike_factor`` (2x) the baseline rate (the ``baseline_s`` (1 h) before those 5 minutes, once
  ``min_baseline_s`` (30 min) of it exists, and at least ``min_rate_usd_per_min``) **and** it is
  improbable under the baseline: calls arriving as a Poisson process at the baseline call rate
  with per-call costs drawn from the baseline's calls (a sample of up to ``COST_SAMPLE_PER_WINDOW``
  per window), the Chernoff bound ``min_t exp(-t C + lambda (M(t) - 1))`` of the compound-Poisson
  tail must be at most ``false_alarms_per_series_per_day / (2 x windows per day)`` (two horizons
  tested). One expensive call on a quiet service (2 calls a minute) doubles a minute's rate but is
  not improbable; a price or token blow-up sustained for a few minutes is. Leaving the last 5 min
  out of the baseline keeps a spike from raising its own baseline while it is being detected.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from gensight.processor.analyse.alerts import PAGE, TICKET, AlertEngine
from gensight.processor.config_fields import Section, build_section, check, check_positive
from gensight.processor.labels import Selector, with_selector
from gensight.processor.points import GAUGE, Analyser, MetricPoint, Window
from gensight.processor.records import F_COST_USD, F_SERVICE, CallRecord

# per-call costs kept per service and window for the spike test's cost distribution
COST_SAMPLE_PER_WINDOW = 32
# Chernoff bound: t x (largest sampled cost) runs over this grid (exp(700) is near float's limit)
_CHERNOFF_GRID = np.geomspace(1e-3, 700.0, 64)
BUDGET_LEVELS = ((0.8, "80%", TICKET), (0.95, "95%", TICKET), (1.0, "100%", PAGE))
OVERFLOW_TENANT = "_overflow"


@dataclass(frozen=True)
class BudgetConfig(Section):
    """One entry of ``analytics.budgets`` (named ``budgets[i]``)."""

    name: str
    limit_usd: float = field(metadata={"required": "USD per calendar month"})
    selector: Selector = field(default_factory=Selector)
    tenant: str | None = None  # hashed tenant id

    @classmethod
    def from_mapping(cls, data: Any, key: str) -> BudgetConfig:
        return build_section(cls, with_selector(data, key), key)

    def validate(self, key: str) -> None:
        check(bool(self.name), f"{key}.name", "required, a non-empty string")
        check_positive(self, key)


@dataclass(frozen=True)
class CostConfig(Section):
    budgets: tuple[BudgetConfig, ...] = ()
    spike_factor: float = 2.0
    spike_window_s: float = 300.0
    baseline_s: float = 3600.0
    min_baseline_s: float = 1800.0
    min_rate_usd_per_min: float = 0.001
    per_tenant: bool = False
    max_tenants: int = 100
    max_services: int = 500
    false_alarms_per_series_per_day: float = 0.1

    @classmethod
    def from_mapping(cls, data: Any, key: str = "cost", budgets: Any = None) -> CostConfig:
        """As ``Section.from_mapping``; the budgets are the list ``analytics.budgets`` (``budgets``),
        each entry named ``budgets[i]``. ``budgets=None``: a ``budgets`` key of ``data`` is used."""
        data = dict(data or {})
        if budgets is None:
            raw_budgets = data.pop("budgets", None)
        elif "budgets" in data:
            raise ValueError(f"{key}.budgets: budgets are configured under analytics.budgets, not here")
        else:
            raw_budgets = budgets
        if raw_budgets is not None and not isinstance(raw_budgets, list):
            raise ValueError(f"{key}.budgets: must be a list")
        bl = tuple(BudgetConfig.from_mapping(b, f"budgets[{i}]") for i, b in enumerate(raw_budgets or []))
        names = [b.name for b in bl]
        if len(set(names)) != len(names):
            raise ValueError("budgets: budget names must be unique")
        return build_section(cls, {**data, "budgets": bl}, key)

    def validate(self, key: str = "cost") -> None:
        check_positive(self, key)


def month_of(ns: int) -> str:
    d = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return f"{d.year:04d}-{d.month:02d}"


class CostAnalyser(Analyser):
    def __init__(self, config: CostConfig | None = None, alerts: AlertEngine | None = None) -> None:
        self.config = config or CostConfig()
        self.alerts = alerts
        self._open: dict[int, tuple[dict[str, float], dict[tuple[str, str], float], dict[str, list[float]]]] = {}
        # service -> deque of (window_start_ns, window_end_ns, cost_usd, calls, sampled call costs)
        self._ring: dict[str, deque[tuple[int, int, float, int, tuple[float, ...]]]] = {}
        self._budget_month: dict[str, str] = {}
        self._budget_spent: dict[str, float] = {b.name: 0.0 for b in self.config.budgets}
        self.overflowed_services = 0

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        per_service, per_tenant, calls = self._open.setdefault(window.start_ns, ({}, {}, {}))
        budgets = self.config.budgets
        if not budgets and not self.config.per_tenant:
            self._observe_services(per_service, calls, records)
            return
        for r in records:
            cost = r.cost_usd
            if cost is None or not math.isfinite(cost) or cost < 0:
                cost = 0.0
            per_service[r.service] = per_service.get(r.service, 0.0) + cost
            _count_call(calls, r.service, cost)
            if self.config.per_tenant and r.tenant:
                k = (r.service, r.tenant)
                per_tenant[k] = per_tenant.get(k, 0.0) + cost
            if budgets:
                month = month_of(r.end_ns)
                for b in budgets:
                    if (b.tenant is None or b.tenant == r.tenant) and b.selector.matches(r):
                        if self._budget_month.get(b.name) != month:
                            if self._budget_month.get(b.name, "") > month:
                                continue  # a late record from a month already closed
                            self._budget_month[b.name] = month
                            self._budget_spent[b.name] = 0.0
                        self._budget_spent[b.name] += cost

    @staticmethod
    def _observe_services(per_service: dict[str, float], calls: dict[str, list[float]],
                          records: Sequence[CallRecord]) -> None:
        """The loop above without tenants and budgets: fields read by position (a NamedTuple
        property costs more than the rest of the loop body)."""
        get, isfinite = per_service.get, math.isfinite
        for r in records:
            cost = r[F_COST_USD]
            if cost is None or not isfinite(cost) or cost < 0:
                cost = 0.0
            svc = r[F_SERVICE]
            per_service[svc] = get(svc, 0.0) + cost
            _count_call(calls, svc, cost)

    def close(self, window: Window) -> list[MetricPoint]:
        cfg = self.config
        per_service, per_tenant, calls = self._open.pop(window.start_ns, ({}, {}, {}))
        for start in [s for s in self._open if s < window.start_ns]:
            del self._open[start]
        now = window.end_ns
        minutes = (window.end_ns - window.start_ns) / 60e9 or 1.0
        keep_ns = (cfg.baseline_s + cfg.spike_window_s) * 1e9
        out: list[MetricPoint] = []
        for svc, cost in per_service.items():
            ring = self._ring.get(svc)
            if ring is None:
                if len(self._ring) >= cfg.max_services:
                    self.overflowed_services += 1
                    continue
                ring = self._ring[svc] = deque()
            c = calls.get(svc) or [0.0]
            ring.append((window.start_ns, window.end_ns, cost, int(c[0]), tuple(c[1:])))
        for svc in list(self._ring):
            ring = self._ring[svc]
            while ring and ring[0][1] <= now - keep_ns:
                ring.popleft()
            if not ring:
                del self._ring[svc]
                continue
            cost = per_service.get(svc, 0.0)
            rate = cost / minutes
            out.append(MetricPoint("gensight.cost.rate", GAUGE, "USD/min", svc, (), rate, window.start_ns, now))
            if self.alerts is not None:
                self._spike(svc, ring, window, rate)
        if per_tenant:
            by_svc: dict[str, list[tuple[float, str]]] = {}
            for (svc, tenant), cost in per_tenant.items():
                by_svc.setdefault(svc, []).append((cost, tenant))
            for svc, items in by_svc.items():
                items.sort(key=lambda x: (-x[0], x[1]))
                top, rest = items[: cfg.max_tenants], items[cfg.max_tenants:]
                for cost, tenant in top:
                    out.append(MetricPoint("gensight.cost.rate", GAUGE, "USD/min", svc, (("tenant", tenant),),
                                           cost / minutes, window.start_ns, now))
                if rest:
                    out.append(MetricPoint("gensight.cost.rate", GAUGE, "USD/min", svc,
                                           (("tenant", OVERFLOW_TENANT),), sum(c for c, _ in rest) / minutes,
                                           window.start_ns, now))
        month = month_of(max(now - 1, 0))
        for b in cfg.budgets:
            if b.name not in self._budget_month:
                continue  # no matching call seen yet: another replica may own this budget's services
            if self._budget_month[b.name] < month:  # new month, nothing spent yet
                self._budget_month[b.name] = month
                self._budget_spent[b.name] = 0.0
            used = self._budget_spent[b.name] / b.limit_usd
            svc = b.selector.resource_service()
            out.append(MetricPoint("gensight.budget.used", GAUGE, "1", svc, (("budget", b.name),), used,
                                   window.start_ns, now))
            if self.alerts is not None:
                for level, label, sev in BUDGET_LEVELS:
                    self.alerts.evaluate("budget", f"{b.name}:{label}", used >= level, value=used, threshold=level,
                                         time_ns=now, severity=sev, service=svc, attributes=(("budget", b.name),))
        return out

    def _baseline(self, ring: deque[tuple[int, int, float, int, tuple[float, ...]]], now: int
                  ) -> tuple[float, float, list[float]] | None:
        """(USD per minute, calls per minute, sampled call costs) of the baseline, or None while
        shorter than ``min_baseline_s``."""
        cfg = self.config
        cut = now - cfg.spike_window_s * 1e9
        lo = now - (cfg.spike_window_s + cfg.baseline_s) * 1e9
        cost = 0.0
        n = 0
        span_ns = 0
        sample: list[float] = []
        for start, end, c, k, costs in ring:
            if lo < end <= cut:
                cost += c
                n += k
                span_ns += end - start
                sample.extend(costs)
        if span_ns < cfg.min_baseline_s * 1e9:
            return None
        # windows with no traffic are not in the ring: divide by the whole baseline span instead
        minutes = min(cfg.baseline_s * 1e9, max(span_ns, cut - ring[0][0])) / 60e9
        return cost / minutes, n / minutes, sample

    def _spike(self, svc: str, ring: deque[tuple[int, int, float, int, tuple[float, ...]]], window: Window,
               rate: float) -> None:
        cfg = self.config
        now = window.end_ns
        base = self._baseline(ring, now)
        if base is None or self.alerts is None:
            return
        base_rate, calls_per_min, sample = base
        window_min = (window.end_ns - window.start_ns) / 60e9 or 1.0
        alpha = cfg.false_alarms_per_series_per_day / (2 * 1440.0 / window_min)
        recent = [(s, e, c) for s, e, c, _, _ in ring if e > now - cfg.spike_window_s * 1e9]
        recent_min = sum(e - s for s, e, _ in recent) / 60e9 or window_min
        recent_cost = sum(c for _, _, c in recent)
        active = False
        for cost, minutes in ((rate * window_min, window_min), (recent_cost, recent_min)):
            r = cost / minutes
            if r >= cfg.spike_factor * base_rate and r >= cfg.min_rate_usd_per_min and \
                    compound_poisson_log_bound(cost, calls_per_min * minutes, sample) <= math.log(alpha):
                active = True
                break
        self.alerts.evaluate("cost_spike", svc, active, value=rate, threshold=cfg.spike_factor * base_rate,
                             time_ns=now, severity=PAGE, service=svc,
                             attributes=(("gensight.alert.signal", "cost_rate"), ("gensight.alert.signal_value", rate),
                                         ("gensight.alert.baseline", base_rate)))

    def budget_used(self, name: str) -> float:
        b = next(b for b in self.config.budgets if b.name == name)
        return self._budget_spent[name] / b.limit_usd

    def export_state(self) -> dict[str, Any]:
        return {
            "budgets": {n: {"month": self._budget_month.get(n), "spent_usd": s} for n, s in self._budget_spent.items()},
            "ring": {svc: [[a, b, c, k, list(costs)] for a, b, c, k, costs in ring] for svc, ring in self._ring.items()},
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        for name, d in data.get("budgets", {}).items():
            if name in self._budget_spent:
                self._budget_spent[name] = float(d["spent_usd"])
                if d.get("month"):
                    self._budget_month[name] = str(d["month"])
        for svc, items in data.get("ring", {}).items():
            self._ring[svc] = deque((int(x[0]), int(x[1]), float(x[2]), int(x[3]) if len(x) > 3 else 0,
                                     tuple(float(v) for v in x[4]) if len(x) > 4 else ()) for x in items)


def _count_call(calls: dict[str, list[float]], svc: str, cost: float) -> None:
    """calls[svc] = [number of calls, first COST_SAMPLE_PER_WINDOW call costs...]."""
    c = calls.get(svc)
    if c is None:
        calls[svc] = [1.0, cost]
        return
    c[0] += 1
    if len(c) <= COST_SAMPLE_PER_WINDOW:
        c.append(cost)


def compound_poisson_log_bound(total: float, lam: float, costs: Sequence[float]) -> float:
    """Chernoff bound on ``ln P(C >= total)`` for ``C`` the sum of ``Poisson(lam)`` call costs
    drawn from ``costs``: ``min_t -t total + lam (mean(exp(t x)) - 1)`` over a grid of ``t``.
    0 when nothing can be said (no sample, or ``total`` at most the mean)."""
    if not costs or lam <= 0:
        return 0.0 if lam > 0 or total <= 0 else -math.inf
    x = np.asarray(costs, dtype=float)
    top = float(x.max())
    if total <= lam * float(x.mean()):
        return 0.0
    if top <= 0:
        return -math.inf  # every baseline call was free: any spend is off the baseline
    t = _CHERNOFF_GRID / top
    m = np.exp(np.outer(t, x)).mean(axis=1)
    return min(0.0, float(np.min(-t * total + lam * (m - 1.0))))
