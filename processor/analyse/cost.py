"""Cost: USD per minute per service (and per hashed tenant), monthly budgets, cost spikes.

* ``gensight.cost.rate`` (USD/min) = cost of the calls that ended in the window / window length.
  With ``per_tenant: true`` the top ``max_tenants`` tenants of each window get their own point with
  attribute ``tenant`` (the keyed hash the normaliser stored; raw ids never reach this module), the
  rest are folded into ``tenant=_overflow``.
* Budgets: ``{name, limit_usd, selector, tenant}`` per calendar month (UTC, event time). Emits
  ``gensight.budget.used`` = spent / limit; alerts ``budget`` on series ``<name>:80%`` and
  ``<name>:95%`` (ticket) and ``<name>:100%`` (page), resolved when a new month starts.
* Cost spike (alert ``cost_spike``, page): the service's rate in the latest window is at least
  ``spike_factor`` (2x) its trailing baseline — the mean rate over the ``baseline_s`` (1 h) before
  the last ``spike_window_s`` (5 min) — once at least ``min_baseline_s`` (30 min) of baseline
  exists and the current rate is at least ``min_rate_usd_per_min``. Leaving the last 5 min out of
  the baseline keeps a spike from raising its own baseline while it is being detected.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from gensight.processor.analyse.alerts import PAGE, TICKET, AlertEngine
from gensight.processor.config_fields import fields_from_mapping, reject_unknown
from gensight.processor.labels import Selector
from gensight.processor.points import GAUGE, Analyser, MetricPoint, Window
from gensight.processor.records import F_COST_USD, F_SERVICE, CallRecord

BUDGET_LEVELS = ((0.8, "80%", TICKET), (0.95, "95%", TICKET), (1.0, "100%", PAGE))
OVERFLOW_TENANT = "_overflow"


@dataclass(frozen=True)
class BudgetConfig:
    name: str
    limit_usd: float
    selector: Selector = field(default_factory=Selector)
    tenant: str | None = None  # hashed tenant id

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> BudgetConfig:
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: must be a mapping")
        unknown = sorted(set(d) - {"name", "limit_usd", "selector", "tenant"})
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown key (known: limit_usd, name, selector, tenant)")
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}.name: required, a non-empty string")
        try:
            limit = float(d["limit_usd"])
        except KeyError:
            raise ValueError(f"{where}.limit_usd: required (USD per calendar month)") from None
        except (TypeError, ValueError):
            raise ValueError(f"{where}.limit_usd: must be a positive number, got {d['limit_usd']!r}") from None
        if not 0 < limit < math.inf:
            raise ValueError(f"{where}.limit_usd: must be a positive number, got {d['limit_usd']!r}")
        tenant = d.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise ValueError(f"{where}.tenant: must be a hashed tenant id string")
        return cls(name, limit, Selector.from_dict(d.get("selector"), f"{where}.selector"), tenant)


@dataclass(frozen=True)
class CostConfig:
    budgets: tuple[BudgetConfig, ...] = ()
    spike_factor: float = 2.0
    spike_window_s: float = 300.0
    baseline_s: float = 3600.0
    min_baseline_s: float = 1800.0
    min_rate_usd_per_min: float = 0.001
    per_tenant: bool = False
    max_tenants: int = 100
    max_services: int = 500

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, budgets: Any = None, where: str = "cost") -> CostConfig:
        data = dict(data or {})
        reject_unknown(data, [f.name for f in fields(cls)], where)
        if budgets is None:
            raw_budgets = data.pop("budgets", None)
        elif "budgets" in data:
            raise ValueError(f"{where}.budgets: budgets are configured under analytics.budgets, not here")
        else:
            raw_budgets = budgets
        if raw_budgets is not None and not isinstance(raw_budgets, list):
            raise ValueError(f"{where}.budgets: must be a list")
        bl = tuple(BudgetConfig.from_dict(b, f"budgets[{i}]") for i, b in enumerate(raw_budgets or []))
        names = [b.name for b in bl]
        if len(set(names)) != len(names):
            raise ValueError("budgets: budget names must be unique")
        kw = fields_from_mapping(cls, data, where)
        return cls(budgets=bl, **kw)


def month_of(ns: int) -> str:
    d = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return f"{d.year:04d}-{d.month:02d}"


class CostAnalyser(Analyser):
    def __init__(self, config: CostConfig | None = None, alerts: AlertEngine | None = None) -> None:
        self.config = config or CostConfig()
        self.alerts = alerts
        self._open: dict[int, tuple[dict[str, float], dict[tuple[str, str], float]]] = {}
        # service -> deque of (window_start_ns, window_end_ns, cost_usd)
        self._ring: dict[str, deque[tuple[int, int, float]]] = {}
        self._budget_month: dict[str, str] = {}
        self._budget_spent: dict[str, float] = {b.name: 0.0 for b in self.config.budgets}
        self.overflowed_services = 0

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        per_service, per_tenant = self._open.setdefault(window.start_ns, ({}, {}))
        budgets = self.config.budgets
        if not budgets and not self.config.per_tenant:
            self._observe_services(per_service, records)
            return
        for r in records:
            cost = r.cost_usd
            if cost is None or not math.isfinite(cost) or cost < 0:
                cost = 0.0
            per_service[r.service] = per_service.get(r.service, 0.0) + cost
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
    def _observe_services(per_service: dict[str, float], records: Sequence[CallRecord]) -> None:
        """The loop above without tenants and budgets: fields read by position (a NamedTuple
        property costs more than the rest of the loop body)."""
        get, isfinite = per_service.get, math.isfinite
        for r in records:
            cost = r[F_COST_USD]
            if cost is None or not isfinite(cost) or cost < 0:
                cost = 0.0
            svc = r[F_SERVICE]
            per_service[svc] = get(svc, 0.0) + cost

    def close(self, window: Window) -> list[MetricPoint]:
        cfg = self.config
        per_service, per_tenant = self._open.pop(window.start_ns, ({}, {}))
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
            ring.append((window.start_ns, window.end_ns, cost))
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
                base = self._baseline_rate(ring, now)
                if base is not None:
                    active = rate >= cfg.spike_factor * base and rate >= cfg.min_rate_usd_per_min
                    self.alerts.evaluate("cost_spike", svc, active, value=rate, threshold=cfg.spike_factor * base,
                                         time_ns=now, severity=PAGE, service=svc)
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

    def _baseline_rate(self, ring: deque[tuple[int, int, float]], now: int) -> float | None:
        cfg = self.config
        cut = now - cfg.spike_window_s * 1e9
        lo = now - (cfg.spike_window_s + cfg.baseline_s) * 1e9
        cost = 0.0
        span_ns = 0
        for start, end, c in ring:
            if lo < end <= cut:
                cost += c
                span_ns += end - start
        if span_ns < cfg.min_baseline_s * 1e9:
            return None
        # windows with no traffic are not in the ring: divide by the whole baseline span instead
        covered_ns = min(cfg.baseline_s * 1e9, max(span_ns, cut - ring[0][0]))
        return cost / (covered_ns / 60e9)

    def budget_used(self, name: str) -> float:
        b = next(b for b in self.config.budgets if b.name == name)
        return self._budget_spent[name] / b.limit_usd

    def export_state(self) -> dict[str, Any]:
        return {
            "budgets": {n: {"month": self._budget_month.get(n), "spent_usd": s} for n, s in self._budget_spent.items()},
            "ring": {svc: [list(x) for x in ring] for svc, ring in self._ring.items()},
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        for name, d in data.get("budgets", {}).items():
            if name in self._budget_spent:
                self._budget_spent[name] = float(d["spent_usd"])
                if d.get("month"):
                    self._budget_month[name] = str(d["month"])
        for svc, items in data.get("ring", {}).items():
            self._ring[svc] = deque((int(a), int(b), float(c)) for a, b, c in items)
