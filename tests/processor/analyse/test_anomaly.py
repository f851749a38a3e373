"""Anomaly scores: calibrated evidence per signal, accumulation, explanations, determinism, state."""

import json
import math

import numpy as np
import pytest

from gensight.processor.analyse.alert_delivery import summary
from gensight.processor.analyse.alerts import FIRING, AlertEngine
from gensight.processor.analyse.analytics import run_windows
from gensight.processor.analyse.anomaly import N_TESTS, AnomalyAnalyser, AnomalyConfig
from gensight.processor.config_fields import ConfigError
from gensight.processor.records import CallRecord, SeriesKey

MIN = 60 * 10**9
T0 = 1_700_000_000 * 10**9


def traffic(minutes, seed, services=2, per_min=20, start_min=0, lat_factor=1.0, error_p=0.01, shifted=("svc0",)):
    rng = np.random.default_rng(seed)
    out = []
    for m in range(start_min, start_min + minutes):
        for i in range(per_min):
            for s in range(services):
                svc = f"svc{s}"
                t = T0 + m * MIN + (i * services + s + 1) * (MIN // (per_min * services + 1))
                d = float(rng.lognormal(0, 0.3)) * (lat_factor if svc in shifted else 1.0)
                out.append(CallRecord("chat", svc, "openai", "m", t - int(d * 1e9), t, d, input_tokens=100,
                                      output_tokens=int(rng.integers(50, 150)), cost_usd=0.001,
                                      error=bool(rng.random() < (error_p if svc in shifted else 0.01))))
    return out


def scores_by_window(analyser, records, service="svc0"):
    out = []
    run_windows([analyser], records, 60, on_close=lambda w, pts: out.extend(
        p.value for p in pts if p.name == "gensight.anomaly.score" and p.service == service))
    return out


def test_sync_refit_is_deterministic():
    records = traffic(80, 6) + traffic(5, 7, start_min=80, lat_factor=2.0)
    cfg = AnomalyConfig(refit="sync", min_fit_rows=100, refit_every=20, n_estimators=30)
    assert scores_by_window(AnomalyAnalyser(cfg), records) == scores_by_window(AnomalyAnalyser(cfg), records)


def test_background_refit_swaps_in_a_model():
    a = AnomalyAnalyser(AnomalyConfig(refit="background", min_fit_rows=100, refit_every=10))
    try:
        scores_by_window(a, traffic(80, 8))
        a.wait_for_refit()
        assert a.model is not None
    finally:
        a.shutdown()


def test_restore_refits_the_same_model_from_history():
    cfg = AnomalyConfig(refit="sync", min_fit_rows=100, refit_every=1000)
    a = AnomalyAnalyser(cfg)
    scores_by_window(a, traffic(80, 9))
    b = AnomalyAnalyser(cfg)
    b.import_state(a.export_state())
    a2 = AnomalyAnalyser(cfg)
    a2.import_state(a.export_state())
    tail = traffic(5, 10, start_min=80, lat_factor=2.0)
    assert scores_by_window(b, tail) == scores_by_window(a2, tail)
    assert b.model is not None


@pytest.mark.parametrize("bad, key", [({"threshold": 2}, "anomaly.threshold"), ({"refit": "never"}, "anomaly.refit"),
                                      ({"iforest": "yes"}, "anomaly.iforest"), ({"bogus": 1}, "anomaly.bogus")])
def test_bad_config_names_the_key(bad, key):
    with pytest.raises(ValueError, match=key):
        AnomalyConfig.from_mapping(bad, "anomaly")




@pytest.mark.parametrize("bad, key", [({"false_alarms_per_series_per_day": 0}, "false_alarms_per_series_per_day"),
                                      ({"cusum_k": 1.0}, "anomaly.cusum_k"), ({"quantile": 1.5}, "anomaly.quantile"),
                                      ({"min_reference_values": 50, "reference_values": 40},
                                       "anomaly.min_reference_values")])
def test_bad_calibration_config_names_the_key(bad, key):
    with pytest.raises(ValueError, match=key):
        AnomalyConfig.from_mapping(bad, "anomaly")


KEY = SeriesKey("svc", "chat", "openai", "gpt-4o")


def calls(minutes, seed, per_min=30, start_min=0, lat=1.0, err=0.005, length=0.01, model="gpt-4o", poisson=True):
    """A chat series: lognormal latency (median 1 s), tokens and cost, streamed (ttfc), finish reasons."""
    rng = np.random.default_rng(seed)
    out = []
    for m in range(start_min, start_min + minutes):
        n = int(rng.poisson(per_min)) if poisson else per_min
        for i in range(n):
            t = T0 + m * MIN + (i + 1) * (MIN // (n + 1))
            d = float(rng.lognormal(0, 0.3)) * lat
            out.append(CallRecord("chat", "svc", "openai", model, t - int(d * 1e9), t, d,
                                  input_tokens=int(rng.lognormal(6, 0.25)), output_tokens=int(rng.lognormal(5, 0.3)),
                                  cost_usd=float(rng.lognormal(-7, 0.3)), error=bool(rng.random() < err),
                                  finish_reason="length" if rng.random() < length else "stop", ttfc_s=0.2 * d))
    return out


def window_scores(analyser, records, start_min=0):
    """{minute: (score, {signal: score})} for series svc."""
    out = {}

    def on_close(w, pts):
        mine = [p for p in pts if p.service == "svc"]
        score = [p.value for p in mine if p.name == "gensight.anomaly.score"]
        if score:
            sig = {dict(p.attributes)["signal"]: p.value for p in mine if p.name == "gensight.anomaly.signal"}
            out[(w.start_ns - T0) // MIN] = (score[0], sig)

    run_windows([analyser], records, 60, on_close=on_close)
    return out


def first_alarm(scores, after):
    return next((m - after + 1 for m, (s, _) in sorted(scores.items()) if m >= after and s >= 0.7), None)


def test_stationary_traffic_crosses_the_threshold_at_most_at_the_stated_rate():
    """Calibration: with the knob at 144 false alarms per series-day (alpha = 0.011 per signal and
    window, observable in a few thousand windows), the fraction of windows at or over 0.7 stays
    within sampling error of at most 144 / 1440 = 0.1; each signal at most its share of it (+ 4 s.e.).
    The default (0.1 a day) gives no such window at all over 2,000 minutes."""
    records = calls(2000, 11)
    cfg = AnomalyConfig(iforest=False, false_alarms_per_series_per_day=144)
    loose = window_scores(AnomalyAnalyser(cfg), records)
    n = len(loose)
    frac = sum(s >= 0.7 for s, _ in loose.values()) / n
    assert n > 1800
    assert frac <= 0.1 + 4 * math.sqrt(0.1 * 0.9 / n)
    for signal in ("latency", "output_tokens", "cost", "error_rate"):
        # a numeric signal is two tests; the error rate's bank holds its whole share
        alpha = cfg.alpha_error_rate(60.0) if signal == "error_rate" else 2 * cfg.alpha(60.0)
        f = sum(sig.get(signal, 0) >= 0.7 for _, sig in loose.values()) / n
        assert f <= alpha + 4 * math.sqrt(alpha / n) * 3  # runs over h are correlated: x3 the s.e.
    default = window_scores(AnomalyAnalyser(AnomalyConfig(iforest=False)), records)
    assert max(s for s, _ in default.values()) < 0.7


def test_every_point_carries_one_gauge_per_signal():
    scores = window_scores(AnomalyAnalyser(AnomalyConfig(iforest=False)), calls(20, 12))
    _, signals = scores[max(scores)]
    assert {"error_rate", "latency", "ttfc", "input_tokens", "output_tokens", "cost", "finish_reason"} <= set(signals)
    assert all(0 <= v <= 1 for v in signals.values())


def test_small_sustained_latency_shift_accumulates_to_an_alarm():
    """x1.2 latency: no single window is conclusive, the CUSUM adds the windows up."""
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    scores = window_scores(a, calls(60, 13) + calls(60, 14, start_min=60, lat=1.2))
    latency = [scores[m][1]["latency"] for m in range(60, 120)]
    assert latency[0] < 0.7
    assert first_alarm(scores, 60) is not None and first_alarm(scores, 60) <= 45
    assert max(latency[:3]) < max(latency[-3:])  # evidence grew


def test_error_rise_to_10_percent_is_caught_within_two_windows_and_named():
    alerts = AlertEngine()
    a = AnomalyAnalyser(AnomalyConfig(iforest=False), alerts)
    scores = window_scores(a, calls(200, 15, per_min=40) + calls(5, 16, per_min=40, start_min=200, err=0.10))
    assert first_alarm(scores, 200) <= 2
    fired = [t for t in alerts.drain_transitions() if t.state == FIRING]
    assert fired
    attrs = dict(fired[0].attributes)
    assert attrs["gensight.alert.signal"] == "error_rate"
    assert attrs["gensight.alert.signal_value"] > 0.05 and attrs["gensight.alert.baseline"] < 0.01
    assert "error_rate 0." in summary(fired[0])


def test_one_error_in_three_calls_on_a_quiet_series_scores_low():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    quiet = calls(200, 17, per_min=3, err=0.0, poisson=False)
    last = [r._replace(error=True) if i == 0 else r for i, r in enumerate(calls(1, 18, per_min=3, start_min=200,
                                                                                 err=0.0, poisson=False))]
    scores = window_scores(a, quiet + last)
    assert scores[200][1]["error_rate"] < 0.3


def test_latency_x3_on_a_quiet_series_is_caught_within_ten_windows():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    scores = window_scores(a, calls(200, 19, per_min=2) + calls(20, 20, per_min=2, start_min=200, lat=3.0))
    assert first_alarm(scores, 200) <= 10


def test_a_snapshot_rename_with_the_same_behaviour_scores_low():
    """The renamed model is a new series: it learns its own reference and never alarms."""
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    out = []
    run_windows([a], calls(150, 21, model="gpt-4o-2024-08-06") + calls(150, 22, start_min=150, model="gpt-4o-2024-11-20"),
                60, on_close=lambda w, pts: out.extend(p.value for p in pts if p.name == "gensight.anomaly.score"))
    assert out and max(out) < 0.7


def test_an_ongoing_incident_is_not_learnt_as_normal():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False, refreeze_windows=30))
    scores = window_scores(a, calls(100, 23) + calls(120, 24, start_min=100, lat=2.0))
    assert all(scores[m][0] >= 0.7 for m in range(110, 220))


def test_finish_reason_length_rise_is_caught_within_three_windows():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    scores = window_scores(a, calls(150, 25) + calls(5, 26, start_min=150, length=0.3))
    assert first_alarm(scores, 150) <= 3
    assert scores[150 + first_alarm(scores, 150) - 1][1]["finish_reason"] >= 0.7


def test_state_round_trip_continues_with_the_same_scores():
    cfg = AnomalyConfig(iforest=False)
    a = AnomalyAnalyser(cfg)
    window_scores(a, calls(120, 27))
    b = AnomalyAnalyser(cfg)
    b.import_state(json.loads(json.dumps(a.export_state())))
    tail = calls(10, 28, start_min=120, lat=1.5)
    assert window_scores(a, tail) == window_scores(b, tail)


def test_the_score_drops_under_the_threshold_soon_after_the_incident_ends():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    scores = window_scores(a, calls(100, 29) + calls(30, 30, start_min=100, lat=3.0) + calls(40, 31, start_min=130))
    assert scores[129][0] >= 0.7
    assert all(scores[m][0] < 0.7 for m in range(145, 170))


def test_a_signal_that_stops_being_tested_drains_instead_of_sticking():
    """ttfc high during an incident, then the series stops streaming: its evidence must not stay."""
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    slow_ttfc = [r._replace(ttfc_s=r.ttfc_s * 5) for r in calls(10, 33, start_min=100)]
    no_ttfc = [r._replace(ttfc_s=None) for r in calls(30, 34, start_min=110)]
    scores = window_scores(a, calls(100, 32) + slow_ttfc + no_ttfc)
    assert scores[109][1]["ttfc"] >= 0.7
    assert scores[139][0] < 0.7 and scores[139][1]["ttfc"] == 0.0


def test_error_rise_to_5_percent_accumulates_as_likelihood_ratios():
    """0.5 % -> 5 % at 40 calls a window: 1-3 errors a window, each window's likelihood ratio
    against the bank's first alternative adds up to h within a few windows."""
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    scores = window_scores(a, calls(200, 35, per_min=40) + calls(15, 36, per_min=40, start_min=200, err=0.05))
    assert first_alarm(scores, 200) is not None and first_alarm(scores, 200) <= 10
    assert scores[200 + first_alarm(scores, 200) - 1][1]["error_rate"] >= 0.7


def test_an_old_snapshot_with_the_error_rates_p_value_sum_still_loads():
    """Snapshots from before the likelihood-ratio CUSUMs hold cusum["error_rate"] in -ln p nats:
    they load, and that sum is dropped rather than read on the new scale."""
    cfg = AnomalyConfig(iforest=False)
    a = AnomalyAnalyser(cfg)
    window_scores(a, calls(120, 37))
    state = json.loads(json.dumps(a.export_state()))
    for series in state["series"].values():
        series["cusum"] = {k: v for k, v in series["cusum"].items() if "_lr" not in k} | {"error_rate": 20.0}
    b = AnomalyAnalyser(cfg)
    b.import_state(state)
    scores = window_scores(b, calls(1, 38, start_min=120))
    assert scores[120][1]["error_rate"] < 0.7
    assert "error_rate" not in b.cusum(SeriesKey("svc", "chat", "openai", "gpt-4o"))
    assert any("_lr" in k for k in b.cusum(SeriesKey("svc", "chat", "openai", "gpt-4o")))


def test_the_error_rate_share_of_the_budget_moves_both_thresholds_and_keeps_the_total():
    """Weighted Bonferroni: the error rate's bank and the other tests split one budget."""
    cfg = AnomalyConfig()
    total = cfg.alpha_error_rate(60.0) + (N_TESTS - 1) * cfg.alpha(60.0)
    assert total == pytest.approx(0.1 / 1440)
    assert cfg.alpha_error_rate(60.0) == pytest.approx(0.1 / 1440 / 3)
    equal = AnomalyConfig(error_rate_budget_share=1 / N_TESTS)
    assert cfg.h_lr(60.0) < equal.h_lr(60.0) and cfg.h(60.0) > equal.h(60.0)
    assert equal.h_lr(60.0) == pytest.approx(math.log(1440 * N_TESTS * 3 / 0.1))


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1])
def test_an_error_rate_share_outside_zero_one_is_named(share):
    with pytest.raises(ConfigError, match="anomaly.error_rate_budget_share"):
        AnomalyConfig(error_rate_budget_share=share).validate()
