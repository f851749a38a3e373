"""Cost rate, tenant costs, monthly budgets and the cost spike rule."""

from datetime import datetime, timezone

import pytest

from gensight.processor.analyse.alerts import FIRING, AlertEngine
from gensight.processor.analyse.analytics import run_windows
from gensight.processor.analyse.cost import CostAnalyser, CostConfig
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

MIN = 60 * 10**9
T0 = int(datetime(2026, 3, 31, 20, 0, tzinfo=timezone.utc).timestamp()) * 10**9


def rec(t, cost, service="checkout", tenant=None, model="gpt-4o"):
    return CallRecord("chat", service, "openai", model, t - 10**9, t, 1.0, cost_usd=cost, tenant=tenant)


def values(points, name, **attrs):
    return [p.value for p in points if p.name == name and all((k, v) in p.attributes for k, v in attrs.items())]


def test_rate_is_usd_per_minute_per_service():
    c = CostAnalyser()
    w = Window(T0, T0 + 2 * MIN)
    c.observe(w, [rec(T0 + 1, 0.5), rec(T0 + 2, 0.3), rec(T0 + 3, 1.0, service="search")])
    pts = c.close(w)
    rates = {p.service: p.value for p in pts if p.name == "gensight.cost.rate"}
    assert rates == {"checkout": pytest.approx(0.4), "search": pytest.approx(0.5)}
    assert all(p.unit == "USD/min" for p in pts)


def test_missing_negative_and_nan_costs_count_as_zero():
    c = CostAnalyser()
    w = Window(T0, T0 + MIN)
    c.observe(w, [rec(T0 + 1, None), rec(T0 + 2, -1.0), rec(T0 + 3, float("nan")), rec(T0 + 4, 0.2)])
    assert values(c.close(w), "gensight.cost.rate") == [pytest.approx(0.2)]


def test_per_tenant_rates_use_hashed_ids_and_cap_with_overflow():
    c = CostAnalyser(CostConfig(per_tenant=True, max_tenants=2))
    w = Window(T0, T0 + MIN)
    c.observe(w, [rec(T0 + 1, 0.3, tenant="aa11"), rec(T0 + 2, 0.2, tenant="bb22"), rec(T0 + 3, 0.1, tenant="cc33"),
                  rec(T0 + 4, 0.05, tenant="dd44")])
    pts = c.close(w)
    tenants = {dict(p.attributes)["tenant"]: p.value for p in pts if p.attributes}
    assert tenants == {"aa11": pytest.approx(0.3), "bb22": pytest.approx(0.2), "_overflow": pytest.approx(0.15)}


def budget_cfg(limit=10.0, **sel):
    return CostConfig.from_mapping({}, budgets=[{"name": "team-a", "limit_usd": limit, "selector": sel or None}])


def test_budget_used_and_levels_fire_at_80_95_100():
    alerts = AlertEngine()
    c = CostAnalyser(budget_cfg(10.0), alerts)
    fired = []
    for i, cost in enumerate([8.0, 1.5, 0.6]):
        w = Window(T0 + i * MIN, T0 + (i + 1) * MIN)
        c.observe(w, [rec(w.start_ns + 1, cost)])
        pts = c.close(w)
        alerts.close(w)
        fired.append(sorted(s for a, s, _ in alerts.active() if a == "budget"))
    assert values(pts, "gensight.budget.used", budget="team-a") == [pytest.approx(1.01)]
    assert fired == [["team-a:80%"], ["team-a:80%", "team-a:95%"], ["team-a:100%", "team-a:80%", "team-a:95%"]]
    assert ("budget", "team-a:100%", "page") in alerts.active()


def test_budget_selector_counts_only_matching_calls():
    c = CostAnalyser(budget_cfg(1.0, model="gpt-4o"))
    w = Window(T0, T0 + MIN)
    c.observe(w, [rec(T0 + 1, 0.5), rec(T0 + 2, 0.5, model="gpt-4o-mini")])
    c.close(w)
    assert c.budget_used("team-a") == pytest.approx(0.5)


def test_budget_restarts_with_the_calendar_month_in_event_time():
    c = CostAnalyser(budget_cfg(10.0))
    w1 = Window(T0, T0 + MIN)
    c.observe(w1, [rec(T0 + 1, 5.0)])
    c.close(w1)
    april = T0 + 4 * 3600 * 10**9  # 2026-04-01 00:00 UTC
    w2 = Window(april, april + MIN)
    c.observe(w2, [rec(april + 1, 1.0)])
    pts = c.close(w2)
    assert values(pts, "gensight.budget.used") == [pytest.approx(0.1)]


def test_cost_spike_fires_when_rate_doubles():
    alerts = AlertEngine()
    c = CostAnalyser(CostConfig(), alerts)
    records = [rec(T0 + m * MIN + s * 10**9 + 1, 0.01) for m in range(60) for s in range(0, 60, 6)]
    records += [rec(T0 + m * MIN + s * 10**9 + 1, 0.03) for m in range(60, 62) for s in range(0, 60, 6)]
    run_windows([c, alerts], records, 60)
    assert alerts.state_of("cost_spike", "checkout") == FIRING


def test_steady_cost_does_not_spike():
    alerts = AlertEngine()
    c = CostAnalyser(CostConfig(), alerts)
    records = [rec(T0 + m * MIN + s * 10**9 + 1, 0.01 * (1 + (m % 3) * 0.2)) for m in range(120) for s in range(0, 60, 6)]
    run_windows([c, alerts], records, 60)
    assert alerts.drain_transitions() == []


@pytest.mark.parametrize("budgets, key", [([{"name": "x"}], "budgets[0].limit_usd"),
                                          ([{"name": "x", "limit_usd": -5}], "budgets[0].limit_usd"),
                                          ([{"limit_usd": 5}], "budgets[0].name"),
                                          ([{"name": "x", "limit_usd": 5, "cap": 1}], "budgets[0].cap")])
def test_bad_budget_config_names_the_key(budgets, key):
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        CostConfig.from_mapping({}, budgets=budgets)


@pytest.mark.parametrize("stray", [5, [{"name": "y", "limit_usd": 1}]])
def test_cost_budgets_key_beside_analytics_budgets_is_a_clear_error(stray):
    with pytest.raises(ValueError, match=r"analytics\.cost\.budgets: budgets are configured under analytics\.budgets"):
        CostConfig.from_mapping({"budgets": stray}, "analytics.cost", budgets=[{"name": "x", "limit_usd": 5}])


def test_snapshot_keeps_budget_spend():
    c = CostAnalyser(budget_cfg(10.0))
    w = Window(T0, T0 + MIN)
    c.observe(w, [rec(T0 + 1, 4.0)])
    c.close(w)
    d = CostAnalyser(budget_cfg(10.0))
    d.import_state(c.export_state())
    assert d.budget_used("team-a") == pytest.approx(0.4)


def test_budget_without_any_matching_call_emits_nothing():
    c = CostAnalyser(budget_cfg(10.0, service="support"))
    w = Window(T0, T0 + MIN)
    c.observe(w, [rec(T0 + 1, 0.5)])
    assert values(c.close(w), "gensight.budget.used") == []
    w2 = Window(T0 + MIN, T0 + 2 * MIN)
    c.observe(w2, [rec(T0 + MIN + 1, 0.0, service="support")])
    assert values(c.close(w2), "gensight.budget.used") == [0.0]


def test_one_expensive_call_on_a_quiet_service_does_not_page():
    """2 calls a minute: one call at 3x the usual price doubles a minute's rate, but is not improbable."""
    alerts = AlertEngine()
    c = CostAnalyser(CostConfig(), alerts)
    records = [rec(T0 + m * MIN + s * 10**9 + 1, 0.01) for m in range(120) for s in (10, 40)]
    records += [rec(T0 + 120 * MIN + 10**9, 0.03), rec(T0 + 120 * MIN + 31 * 10**9, 0.01)]
    run_windows([c, alerts], records, 60)
    assert alerts.drain_transitions() == []


def test_chernoff_bound_is_above_the_simulated_compound_poisson_tail():
    import math
    import random

    from gensight.processor.analyse.cost import compound_poisson_log_bound

    rng = random.Random(5)
    costs = [rng.lognormvariate(-7, 0.5) for _ in range(200)]
    lam, runs = 10.0, 20_000
    sims = []
    for _ in range(runs):
        n = _poisson(rng, lam)
        sims.append(sum(rng.choice(costs) for _ in range(n)))
    for total in (0.02, 0.025, 0.03):
        tail = sum(s >= total for s in sims) / runs
        assert tail <= math.exp(compound_poisson_log_bound(total, lam, costs)) + 3 * math.sqrt(tail / runs + 1e-9)


def _poisson(rng, lam):
    import math

    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
