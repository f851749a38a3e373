"""Anomaly scores: robust z warm start, isolation forest, mappings to [0, 1], determinism."""

import numpy as np
import pytest

from gensight.processor.analyse.alerts import FIRING, AlertEngine
from gensight.processor.analyse.analytics import run_windows
from gensight.processor.analyse.anomaly import (
    AnomalyAnalyser,
    AnomalyConfig,
    directional_max,
    iforest_score,
    robust_score,
    robust_z,
)
from gensight.processor.records import CallRecord

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


def test_robust_z_uses_median_and_mad():
    hist = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]] * 20)
    hist = np.hstack([hist, np.full((100, 4), np.nan)])
    x = np.array([5.0, 0, 0, 0, 0])
    med, mad = 3.0, 1.0
    expected = (5.0 - med) / max(1.4826 * mad, 0.1 * med, 0.05) / (1 + 10 / 100)  # latency column
    assert robust_z(hist, x)[0] == pytest.approx(expected)
    assert np.isnan(robust_z(hist, x)[1])


def test_error_rate_only_counts_rises_and_relevance_only_drops():
    z = np.array([0.0, -9.0, 0.0, 0.0, 9.0])
    assert directional_max(z) == 0.0
    assert directional_max(np.array([0.0, 9.0, 0.0, 0.0, -8.0])) == 9.0


def test_score_mappings():
    assert robust_score(0.0) == 0.0
    assert robust_score(3.0) == pytest.approx(0.5)
    assert robust_score(7.0) == pytest.approx(0.7)
    assert iforest_score(np.array([-0.5, -0.745, -0.85, -1.0])).tolist() == pytest.approx([0.0, 0.7, 1.0, 1.0])


def test_scores_start_after_min_history_windows():
    a = AnomalyAnalyser(AnomalyConfig(min_history=10, iforest=False))
    windows = []
    run_windows([a], traffic(12, 0), 60, on_close=lambda w, pts: windows.append(
        any(p.service == "svc0" for p in pts)))
    assert windows.index(True) == 10  # 10 windows of history, then scores


def test_clean_traffic_stays_below_threshold():
    a = AnomalyAnalyser(AnomalyConfig(refit="sync", min_fit_rows=100, refit_every=30, n_estimators=30))
    s = scores_by_window(a, traffic(80, 1))
    assert a.fits >= 1
    assert max(s) < 0.7
    assert all(0.0 <= v <= 1.0 for v in s)


def test_latency_shift_scores_high_and_alerts():
    alerts = AlertEngine()
    a = AnomalyAnalyser(AnomalyConfig(refit="sync", min_fit_rows=100), alerts)
    records = traffic(60, 2) + traffic(3, 3, start_min=60, lat_factor=3.0)
    s = scores_by_window(a, records)
    assert s[-3] >= 0.7
    assert alerts.state_of("anomaly", "svc0|chat|openai|m") == FIRING
    assert alerts.state_of("anomaly", "svc1|chat|openai|m") != FIRING


def test_error_burst_scores_high():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    s = scores_by_window(a, traffic(30, 4) + traffic(2, 5, start_min=30, error_p=0.5))
    assert s[-2] >= 0.7


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
        AnomalyConfig.from_dict(bad)


def test_two_errors_in_a_quiet_window_do_not_score_high():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    quiet = [r for r in traffic(30, 11, per_min=5, error_p=0.0, services=1)]
    last = quiet[-5:]
    bad = [r._replace(error=True) if i < 2 else r for i, r in enumerate(last)]
    s = scores_by_window(a, quiet[:-5] + bad)
    assert s[-1] < 0.7


def test_p95_equals_numpy_percentile_bit_for_bit():
    import math
    import random

    from gensight.processor.analyse.anomaly import P95_PYTHON_MAX_VALUES, p95

    rng = random.Random(7)
    for trial in range(3000):
        n = rng.choice([1, 2, 3, 20, 21, 40, rng.randrange(1, 300), P95_PYTHON_MAX_VALUES + 1])
        pick = [lambda: rng.lognormvariate(-1, 1), lambda: rng.choice([0.0, 0.5, 2.5, 1e-300]),
                lambda: rng.uniform(-5, 5), lambda: rng.random() * 10.0 ** rng.randrange(-300, 300)][trial % 4]
        vals = [pick() for _ in range(n)]
        got, want = p95(vals), float(np.percentile(vals, 95))
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), vals
    assert math.copysign(1.0, p95([-0.0, -0.0, 0.0])) == math.copysign(1.0, float(np.percentile([-0.0, -0.0, 0.0], 95)))
