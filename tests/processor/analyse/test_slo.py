"""SLO counting, burn rates, budgets and multiwindow alerts against hand-counted fixtures."""

import pytest

from gensight.processor.analyse.alerts import FIRING, INACTIVE, RESOLVED, AlertEngine
from gensight.processor.analyse.analytics import run_windows
from gensight.processor.analyse.slo import SLOAnalyser, SLOConfig, SLOCounter
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

MIN = 60 * 10**9
T0 = 1_700_000_000 * 10**9 // (300 * 10**9) * (300 * 10**9)  # bucket-aligned


def rec(t_ns, error=False, duration_s=0.5, cost=0.001, service="checkout", kind="chat", target="gpt-4o-mini"):
    return CallRecord(kind, service, "openai", target, t_ns - int(duration_s * 1e9), t_ns, duration_s,
                      cost_usd=cost, error=error)


def slo(**kw):
    base = {"name": "avail", "type": "availability", "target": 0.99}
    base.update(kw)
    return SLOConfig.from_mapping(base, "slos[0]")


def test_counts_are_exact_per_bucket():
    c = SLOCounter(slo())
    # bucket 0: 3 good 1 bad; bucket 1: 2 bad
    for t, good in [(T0 + 1, True), (T0 + MIN, True), (T0 + 2 * MIN, True), (T0 + 4 * MIN, False),
                    (T0 + 5 * MIN, False), (T0 + 6 * MIN, False)]:
        c.add(t, good)
    assert c.counts(T0 + 5 * MIN, 300) == (3, 4)
    assert c.counts(T0 + 10 * MIN, 300) == (0, 2)
    assert c.counts(T0 + 10 * MIN, 1800) == (3, 6)


def test_burn_rate_is_error_ratio_over_budget():
    c = SLOCounter(slo(target=0.99))
    for i in range(100):
        c.add(T0 + i * 10**9, good=i >= 5)  # 5 % errors in the first bucket
    burn, total, bad = c.burn_rate(T0 + 5 * MIN, 300)
    assert (total, bad) == (100, 5)
    assert burn == pytest.approx(5.0)


def test_one_hour_window_sums_twelve_buckets():
    c = SLOCounter(slo())
    for b in range(13):  # 13 buckets, one call each, the oldest one bad
        c.add(T0 + b * 5 * MIN + 1, good=b != 0)
    assert c.counts(T0 + 13 * 5 * MIN, 3600) == (12, 12)
    assert c.counts(T0 + 13 * 5 * MIN, 7200) == (12, 13)


def test_error_budget_remaining_over_period():
    c = SLOCounter(slo(target=0.99))
    for i in range(1000):
        c.add(T0 + i * 10**9, good=i >= 4)  # 4 errors of 1000: 40 % of a 1 % budget
    assert c.budget_remaining(T0 + 30 * MIN) == pytest.approx(0.6)


def test_records_older_than_the_period_are_dropped_and_counted():
    c = SLOCounter(slo(period_s="3d"))
    c.add(T0 + 4 * 86400 * 10**9, True)
    c.add(T0, False)
    assert c.dropped_old == 1
    assert c.counts(T0 + 4 * 86400 * 10**9 + MIN, 259200) == (1, 1)


def test_latency_slo_counts_slow_calls_as_bad():
    c = SLOCounter(slo(type="latency", threshold_s=1.0))
    assert c.is_good(rec(T0, duration_s=0.9))
    assert not c.is_good(rec(T0, duration_s=1.5))


def test_cost_slo_counts_expensive_calls_as_bad():
    c = SLOCounter(slo(type="cost", threshold_usd=0.01))
    assert c.is_good(rec(T0, cost=0.005))
    assert not c.is_good(rec(T0, cost=0.02))


def test_selector_limits_the_slo_to_its_service():
    a = SLOAnalyser([slo(selector={"service": "checkout"})])
    w = Window(T0, T0 + MIN)
    a.observe(w, [rec(T0 + 1, service="checkout"), rec(T0 + 2, service="search", error=True)])
    assert a.counters["avail"].counts(T0 + MIN, 300) == (1, 1)


def test_close_emits_every_window_and_the_budget():
    a = SLOAnalyser([slo()])
    a.observe(Window(T0, T0 + MIN), [rec(T0 + 1)])
    pts = a.close(Window(T0, T0 + MIN))
    windows = sorted(dict(p.attributes)["window"] for p in pts if p.name == "gensight.slo.burn_rate")
    assert windows == sorted(["5m", "30m", "1h", "2h", "6h", "1d", "3d"])
    assert [p.value for p in pts if p.name == "gensight.slo.error_budget.remaining"] == [1.0]


def test_slo_without_any_matching_call_emits_nothing():
    # scale-out by service: the replica that never sees the service must not export zeros
    a = SLOAnalyser([slo(selector={"service": "checkout"})])
    a.observe(Window(T0, T0 + MIN), [rec(T0 + 1, service="search")])
    assert a.close(Window(T0, T0 + MIN)) == []


def _traffic(minutes, per_min, error_every=None, start=T0, errors_from=None, errors_to=None):
    out = []
    for m in range(minutes):
        for i in range(per_min):
            t = start + m * MIN + (i + 1) * (MIN // (per_min + 1))
            burst = errors_from is not None and errors_from <= m < errors_to and i % 2 == 0
            out.append(rec(t, error=burst or bool(error_every and i % error_every == 0)))
    return out


def test_error_burst_pages_and_then_resolves():
    alerts = AlertEngine()
    a = SLOAnalyser([slo(target=0.995)], alerts)
    records = _traffic(120, 20, errors_from=60, errors_to=70)  # 50 % errors for 10 min
    states = []
    run_windows([a, alerts], records, 60, on_close=lambda w, p: states.append(alerts.state_of("slo_burn_fast", "avail")))
    # 1h burn > 14.4 needs 7.2 % errors over the hour: at 50 % errors that takes about 9 min
    assert FIRING not in states[:60]
    assert FIRING in states[60:70]
    first = states.index(FIRING)
    assert RESOLVED in states[first:]


def test_single_error_in_quiet_hour_does_not_page():
    alerts = AlertEngine()
    a = SLOAnalyser([slo(target=0.995)], alerts)
    records = [rec(T0 + m * 10 * MIN) for m in range(6)] + [rec(T0 + 61 * MIN, error=True)]
    run_windows([a, alerts], records, 60)
    assert alerts.drain_transitions() == []


def test_low_traffic_guard_is_what_stops_the_page():
    cfg = slo(target=0.995, min_events=0, min_short_events=0, min_bad_events=0)
    alerts = AlertEngine()
    a = SLOAnalyser([cfg], alerts)
    run_windows([a, alerts], [rec(T0 + MIN), rec(T0 + 6 * MIN, error=True)], 60)
    assert any(t.alert == "slo_burn_fast" for t in alerts.drain_transitions())


def test_slow_burn_raises_a_ticket_not_a_page():
    alerts = AlertEngine()
    a = SLOAnalyser([slo(target=0.99)], alerts)
    records = _traffic(7 * 60, 10, error_every=5)  # 2 % errors for 7 h: burn 2
    run_windows([a, alerts], records, 60)
    assert alerts.state_of("slo_burn_slow", "avail") == FIRING
    assert alerts.state_of("slo_burn_fast", "avail") != FIRING


@pytest.mark.parametrize("bad, msg", [
    ({"name": "x", "target": 150}, "slos[0].target"),
    ({"name": "x", "target": 0.9, "type": "speed"}, "slos[0].type"),
    ({"name": "x", "target": 0.9, "type": "latency"}, "slos[0].threshold_s"),
    ({"name": "x", "target": 0.9, "colour": 1}, "slos[0].colour"),
    ({"name": "x", "target": 0.9, "selector": {"region": "eu"}}, "slos[0].selector.region"),
    ({"name": "x", "target": 0.9, "period_s": "1h"}, "slos[0].period_s"),
])
def test_bad_config_names_the_key(bad, msg):
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        SLOConfig.from_mapping(bad, "slos[0]")


def test_percentage_target_is_accepted():
    assert SLOConfig.from_mapping({"name": "x", "target": 99.5}, "s").target == pytest.approx(0.995)


def test_snapshot_restores_counts():
    a = SLOAnalyser([slo()])
    a.observe(Window(T0, T0 + MIN), [rec(T0 + 1), rec(T0 + 2, error=True)])
    b = SLOAnalyser([slo()])
    b.import_state(a.export_state())
    assert b.counters["avail"].counts(T0 + MIN, 300) == (1, 2)


def test_slow_burn_waits_for_six_hours_of_history():
    alerts = AlertEngine()
    a = SLOAnalyser([slo(target=0.99)], alerts)
    run_windows([a, alerts], _traffic(60, 20, error_every=5), 60)  # 20 % errors, but only 1 h of data
    assert alerts.state_of("slo_burn_slow", "avail") == INACTIVE
    assert alerts.state_of("slo_burn_fast", "avail") == FIRING
