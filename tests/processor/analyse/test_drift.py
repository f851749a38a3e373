"""Drift statistics against independent computations, frozen references, baseline management."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from gensight.processor.analyse.alerts import FIRING, AlertEngine
from gensight.processor.analyse.analytics import run_windows
from gensight.processor.analyse.drift import DriftAnalyser, DriftConfig
from gensight.processor.analyse.drift_refs import (
    NumericRef,
    bin_index,
    js_distance,
    ks_binned,
    normalise_model,
    psi,
    quantile_edges,
    wasserstein_binned,
)
from gensight.processor.records import CallRecord

MIN = 60 * 10**9
T0 = 1_700_000_000 * 10**9


def binned(ref, cur, bins=20):
    r = NumericRef()
    r.sample.extend(ref)
    r.freeze(bins)
    k = len(r.edges) + 1
    idx = bin_index(r.edges, cur)
    counts = np.bincount(idx, minlength=k).astype(float)
    sums = np.bincount(idx, weights=cur, minlength=k)
    cur_p = counts / counts.sum()
    cur_x = np.where(counts > 0, sums / np.maximum(counts, 1), r.means)
    return r, cur_p, cur_x


def test_psi_matches_the_textbook_formula():
    r = np.array([0.25, 0.25, 0.25, 0.25])
    c = np.array([0.1, 0.2, 0.3, 0.4])
    expected = sum((ci - ri) * np.log(ci / ri) for ri, ci in zip(r, c, strict=True))
    assert psi(r, c) == pytest.approx(expected)


def test_psi_floors_empty_bins():
    assert np.isfinite(psi(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])))


def test_psi_of_identical_distributions_is_zero():
    p = np.array([0.1, 0.3, 0.6])
    assert psi(p, p) == 0.0


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_binned_ks_is_close_to_scipy(shift):
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 5000), rng.normal(shift, 1, 5000)
    r, cur_p, _ = binned(ref, cur)
    exact = ks_2samp(ref, cur).statistic
    assert ks_binned(r.probs, cur_p) == pytest.approx(exact, abs=0.03)
    assert ks_binned(r.probs, cur_p) <= exact + 0.01  # binned CDFs can only miss the maximum


@pytest.mark.parametrize("shift, scale", [(0.0, 1.0), (0.5, 1.0), (2.0, 1.5)])
def test_binned_wasserstein_is_close_to_scipy(shift, scale):
    rng = np.random.default_rng(2)
    ref, cur = rng.lognormal(0, 0.5, 5000), rng.lognormal(shift, 0.5 * scale, 5000)
    r, cur_p, cur_x = binned(ref, cur)
    exact = wasserstein_distance(ref, cur)
    got = wasserstein_binned(r.probs, r.means, cur_p, cur_x)
    assert got == pytest.approx(exact, rel=0.1, abs=0.02 * ref.std())


def test_js_distance_matches_scipy():
    p, q = np.array([10.0, 5.0, 0.0, 1.0]), np.array([2.0, 5.0, 7.0, 0.0])
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))


def test_edges_are_reference_quantiles():
    edges = quantile_edges(np.arange(1, 101, dtype=float), 4)
    assert edges.tolist() == pytest.approx([25.75, 50.5, 75.25])


def test_values_outside_the_reference_land_in_open_outer_bins():
    edges = np.array([1.0, 2.0])
    assert bin_index(edges, np.array([-100.0, 1.5, 1e9])).tolist() == [0, 1, 2]


def test_model_names_lose_their_snapshot_dates():
    assert [normalise_model(m) for m in ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "claude-3-5-haiku-20241022",
                                         "gpt-4-0613", "gpt-4o-mini", "o3")] == [
        "gpt-4o", "gpt-4o", "claude-3-5-haiku", "gpt-4", "gpt-4o-mini", "o3"]


def rec(t, duration, out_tokens=100, finish="stop", model="gpt-4o-mini", service="chat-svc"):
    return CallRecord("chat", service, "openai", model, t - int(duration * 1e9), t, duration,
                      input_tokens=200, output_tokens=out_tokens, cost_usd=0.001, finish_reason=finish)


def stream(minutes, per_min, seed, start_min=0, dur_mu=0.0, finish_stop=0.9, model="gpt-4o-mini"):
    rng = np.random.default_rng(seed)
    out = []
    for m in range(start_min, start_min + minutes):
        for i in range(per_min):
            t = T0 + m * MIN + (i + 1) * (MIN // (per_min + 1))
            out.append(rec(t, float(rng.lognormal(dur_mu, 0.3)), int(rng.integers(50, 150)),
                           "stop" if rng.random() < finish_stop else "length", model))
    return out


def drift_points(points, feature, method):
    return [p.value for p in points if p.name == "gensight.drift" and ("feature", feature) in p.attributes
            and ("method", method) in p.attributes]


def test_reference_is_frozen_after_n_calls():
    d = DriftAnalyser(DriftConfig(reference_calls=100))
    run_windows([d], stream(3, 40, 0), 60)
    rows = {r["feature"]: r for r in d.show()}
    assert rows["duration"]["status"] == "frozen"
    assert rows["duration"]["n"] >= 100  # the window that completes the sample is taken whole


def test_stable_traffic_stays_below_the_warn_threshold():
    d = DriftAnalyser(DriftConfig())
    pts = run_windows([d], stream(60, 50, 3), 60)
    values = drift_points(pts, "duration", "psi")
    assert values and max(values) < 0.1


def test_latency_shift_raises_psi_and_the_drift_alert():
    alerts = AlertEngine()
    d = DriftAnalyser(DriftConfig(), alerts)
    records = stream(30, 50, 4) + stream(10, 50, 5, start_min=30, dur_mu=0.7)
    pts = run_windows([d, alerts], records, 60)
    assert drift_points(pts, "duration", "psi")[-1] > 0.2
    assert alerts.state_of("drift", "chat-svc|chat|openai|gpt-4o-mini") == FIRING


def test_finish_reason_mix_change_shows_in_js():
    d = DriftAnalyser(DriftConfig())
    pts = run_windows([d], stream(25, 50, 6) + stream(15, 50, 7, start_min=25, finish_stop=0.3), 60)
    assert drift_points(pts, "finish_reason", "js")[-1] > 0.1


def test_silent_model_swap_within_a_service_shows_in_model_js():
    d = DriftAnalyser(DriftConfig(reference_calls=300))
    pts = run_windows([d], stream(20, 30, 8) + stream(10, 30, 9, start_min=20, model="gpt-4.1"), 60)
    assert drift_points(pts, "model", "js")[-1] > 0.5


def test_drift_score_is_in_unit_interval():
    d = DriftAnalyser(DriftConfig(reference_calls=300))
    pts = run_windows([d], stream(20, 30, 10) + stream(10, 30, 11, start_min=20, dur_mu=3.0), 60)
    scores = [p.value for p in pts if p.name == "gensight.drift.score"]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)
    assert max(scores) > 0.3


def test_reset_relearns_and_pinned_survive_reset():
    d = DriftAnalyser(DriftConfig(reference_calls=100))
    run_windows([d], stream(3, 50, 12), 60)
    assert d.pin(["chat-svc|chat|*"]) > 0
    assert d.reset() == 0 or all(r["status"] == "frozen" for r in d.show(["chat-svc|chat|*"]))
    assert d.reset(["chat-svc|chat|*"], force=True) > 0
    assert {r["status"] for r in d.show(["chat-svc|chat|*"])} == {"learning"}


def test_pin_freezes_a_learning_reference():
    d = DriftAnalyser(DriftConfig(reference_calls=10_000))
    run_windows([d], stream(2, 30, 13), 60)
    d.pin()
    rows = d.show(["chat-svc|chat|*"])
    assert rows and all(r["status"] == "frozen" and r["pinned"] for r in rows)


def test_snapshot_round_trip_keeps_frozen_bins():
    d = DriftAnalyser(DriftConfig(reference_calls=100))
    run_windows([d], stream(3, 50, 14), 60)
    e = DriftAnalyser(DriftConfig(reference_calls=100))
    e.import_state(d.export_state())
    assert e.show() == d.show()


@pytest.mark.parametrize("bad, key", [({"bins": 1}, "drift.bins"), ({"psi_alert": -1}, "drift.psi_alert"),
                                      ({"psi_warn": 0.5}, "drift.psi_warn"), ({"foo": 1}, "drift.foo")])
def test_bad_config_names_the_key(bad, key):
    with pytest.raises(ValueError, match=key):
        DriftConfig.from_mapping(bad, "drift")


def _model_counts(d):
    return d.export_state()["svc|*|*|*"]["model"]["counts"]


def test_learning_model_mix_counts_calls_in_record_order_up_to_the_cap():
    """Series are grouped, but a learning reference still counts the first calls in record order
    (categories in order of first call) and stops exactly at its cap."""
    from gensight.processor.points import Window

    def call(model, provider):
        return CallRecord("chat", "svc", provider, model, T0, T0 + 1, 0.1)

    d = DriftAnalyser(DriftConfig(reference_calls=5))
    w = Window(T0, T0 + MIN)
    d.observe(w, [call("b", "p"), call("a", "q")])
    assert list(_model_counts(d).items()) == [("b", 1), ("a", 1)]
    d.observe(w, [call("a", "q"), call("c", "q"), call("b", "p"), call("c", "q"), call("a", "q")])
    # grouped, the batch is a x2, c x2, b x1; in record order the cap comes after a, c, b
    assert list(_model_counts(d).items()) == [("b", 2), ("a", 2), ("c", 1)]
    d.observe(w, [call("b", "p")])
    assert sum(_model_counts(d).values()) == 5


def test_a_snapshot_rename_with_the_same_behaviour_scores_low():
    d = DriftAnalyser(DriftConfig(reference_calls=300))
    pts = run_windows([d], stream(20, 30, 20, model="gpt-4o-2024-08-06")
                      + stream(20, 30, 21, start_min=20, model="gpt-4o-2024-11-20"), 60)
    assert max(drift_points(pts, "model", "js")) < 0.05
    assert max(p.value for p in pts if p.name == "gensight.drift.score") < 0.5


def test_stationary_drift_scores_stay_under_the_alert_level_at_the_stated_rate():
    """0.1 false alarms per series-day at 60 s windows: with five features over a few hundred
    windows of a seeded stationary stream, no window may reach 0.5 (expected count < 0.03)."""
    alerts = AlertEngine()
    d = DriftAnalyser(DriftConfig(reference_calls=500, min_eval_count=200), alerts)
    pts = run_windows([d, alerts], stream(400, 25, 22), 60)
    scores = [p.value for p in pts if p.name == "gensight.drift.score"]
    assert len(scores) > 300 and max(scores) < 0.5
    assert alerts.active() == []


def test_a_small_sample_does_not_make_a_large_psi_an_alert():
    """PSI of a small horizon is biased up; the significance half of the score keeps it quiet."""
    d = DriftAnalyser(DriftConfig(reference_calls=100, min_eval_count=20, bins=10))
    pts = run_windows([d], stream(40, 5, 23), 60)
    psis = drift_points(pts, "duration", "psi")
    scores = [p.value for p in pts if p.name == "gensight.drift.score"]
    assert max(psis) > 0.2  # the effect-size alone would alert
    assert max(scores) < 0.5


def tight_stream(minutes, per_min, seed, start_min=0, scale=1.0):
    """A near-constant latency (a fake or cached backend): 0.395 s +- 1 %, times ``scale``."""
    rng = np.random.default_rng(seed)
    out = []
    for m in range(start_min, start_min + minutes):
        for i in range(per_min):
            t = T0 + m * MIN + (i + 1) * (MIN // (per_min + 1))
            out.append(rec(t, float(0.395 * scale * rng.lognormal(0.0, 0.01))))
    return out


def test_a_two_percent_shift_of_a_near_constant_latency_is_no_drift_alert():
    """PSI reads such a shift as large (the frozen bins are narrow) and the chi-square as
    significant; it is not 5 % of the mean, so the score stays under 0.5."""
    alerts = AlertEngine()
    d = DriftAnalyser(DriftConfig(), alerts)
    pts = run_windows([d, alerts], tight_stream(30, 50, 24) + tight_stream(20, 50, 25, start_min=30, scale=1.02), 60)
    assert drift_points(pts, "duration", "psi")[-1] > 0.2  # PSI alone would alert
    scores = [p.value for p in pts if p.name == "gensight.drift.score"]
    assert max(scores) < 0.5
    assert alerts.state_of("drift", "chat-svc|chat|openai|gpt-4o-mini") != FIRING


def test_a_twenty_percent_shift_of_a_near_constant_latency_is_a_drift_alert():
    alerts = AlertEngine()
    d = DriftAnalyser(DriftConfig(), alerts)
    run_windows([d, alerts], tight_stream(30, 50, 26) + tight_stream(20, 50, 27, start_min=30, scale=1.2), 60)
    assert alerts.state_of("drift", "chat-svc|chat|openai|gpt-4o-mini") == FIRING


@pytest.mark.parametrize("bad", [0, -0.05])
def test_a_non_positive_min_relative_shift_names_the_key(bad):
    with pytest.raises(ValueError, match="drift.min_relative_shift"):
        DriftConfig.from_mapping({"min_relative_shift": bad}, "drift")
