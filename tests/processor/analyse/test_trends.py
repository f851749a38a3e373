"""Trend alerts: Theil–Sen and Mann–Kendall against scipy; quality_trending_down fires on a 3 %/h
decline and not on seeded noise (false-alarm rate within the documented bound); cost_per_call_trending_up alike."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gensight.processor.analyse.alerts import FIRING, AlertEngine
from gensight.processor.analyse.trends import (
    COST_PER_CALL_TRENDING_UP,
    QUALITY_TRENDING_DOWN,
    TrendAnalyser,
    TrendConfig,
    mann_kendall_z,
    theil_sen_slope,
)
from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.pipeline.series import RecordBatch
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

S = 1_000_000_000
BUCKET_S = 600
T0 = 1_700_000_400 * S - (1_700_000_400 * S) % (BUCKET_S * S)
BUCKETS_PER_DAY = 144


def test_theil_sen_slope_equals_scipy():
    rng = np.random.default_rng(1)
    x = np.arange(18, dtype=float)
    y = 0.8 - 0.01 * x + rng.normal(0, 0.02, 18)
    y[5] = 3.0  # an outlier bucket barely moves it
    assert theil_sen_slope(x, y) == pytest.approx(stats.theilslopes(y, x).slope)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mann_kendall_p_equals_scipy_kendalltau(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 1, 18) + 0.05 * np.arange(18)
    z = mann_kendall_z(y, continuity=False)
    p_two_sided = 2 * stats.norm.sf(abs(z))
    assert p_two_sided == pytest.approx(stats.kendalltau(np.arange(18), y, method="asymptotic").pvalue, rel=1e-9)


def test_mann_kendall_with_ties_equals_scipy():
    y = np.array([1, 1, 2, 2, 2, 3, 1, 4, 4, 5, 5, 6], dtype=float)
    z = mann_kendall_z(y, continuity=False)
    assert 2 * stats.norm.sf(abs(z)) == pytest.approx(
        stats.kendalltau(np.arange(len(y)), y, method="asymptotic").pvalue, rel=1e-2)  # tau-b vs MK ties


CALL = CallRecord("chat", "app", "openai", "m", 0, 1, 1.0)


def run_quality(levels_per_bucket, *, series: int = 1, per_bucket: int = 20, sd: float = 0.1, seed: int = 0,
                config: TrendConfig | None = None):
    """Drive the analyser bucket by bucket (window = bucket); returns (engine, firing transitions)."""
    rng = np.random.default_rng(seed)
    alerts = AlertEngine()
    analyser = TrendAnalyser(config or TrendConfig(), alerts)
    calls = [CALL._replace(target=f"m{i}") for i in range(series)]
    fired = []
    for b, level in enumerate(levels_per_bucket):
        w = Window(T0 + b * BUCKET_S * S, T0 + (b + 1) * BUCKET_S * S)
        evals = [Evaluation("relevance", float(v), None, None, "judge", w.start_ns + S, b"", b"", None, c, "pass")
                 for c in calls for v in rng.normal(level, sd, per_bucket)]
        analyser.observe_evaluations(w, evals)
        analyser.close(w)
        alerts.close(w)
        fired += [t for t in alerts.drain_transitions() if t.state == FIRING]
    return analyser, fired


def test_fires_on_a_three_percent_per_hour_decline_within_three_hours():
    flat = [0.8] * 24  # 4 h of steady quality
    decline = [0.8 * (1 - 0.03 * (b + 1) / 6) for b in range(18)]  # then -3 %/h of the start level
    _, fired = run_quality(flat + decline)
    assert fired and fired[0].alert == QUALITY_TRENDING_DOWN
    onset_ns = T0 + 24 * BUCKET_S * S
    assert onset_ns < fired[0].time_ns <= onset_ns + 3 * 3600 * S


def test_does_not_fire_on_a_one_percent_per_hour_decline():
    decline = [0.8 * (1 - 0.01 * (b + 1) / 6) for b in range(36)]
    _, fired = run_quality(decline)
    assert fired == []


def test_does_not_fire_on_a_rising_quality():
    _, fired = run_quality([0.6 * (1 + 0.05 * b / 6) for b in range(36)])
    assert fired == []


def test_false_alarm_rate_on_sixty_seeded_days_of_noise_is_within_the_documented_bound():
    """Trendless noise, few evaluations per bucket (noisy bucket means): 5 series x 60 days.
    The documented bound is 144 tests x alpha = 0.072 false alarms per series and day."""
    days, series = 60, 5
    _, fired = run_quality([0.8] * (days * BUCKETS_PER_DAY), series=series, per_bucket=6, sd=0.15, seed=7)
    series_days = days * series
    bound = BUCKETS_PER_DAY * TrendConfig().alpha * series_days
    assert len(fired) <= bound
    assert len(fired) / series_days < 0.05  # measured: well under the bound (tests overlap)


def run_cost(cost_per_bucket, *, seed: int = 0, calls_per_bucket: int = 300):
    rng = np.random.default_rng(seed)
    alerts = AlertEngine()
    analyser = TrendAnalyser(TrendConfig(), alerts)
    fired = []
    for b, level in enumerate(cost_per_bucket):
        w = Window(T0 + b * BUCKET_S * S, T0 + (b + 1) * BUCKET_S * S)
        costs = rng.lognormal(np.log(level), 0.3, calls_per_bucket)
        analyser.observe(w, RecordBatch(CALL._replace(cost_usd=float(c), end_ns=w.start_ns + S) for c in costs))
        analyser.close(w)
        alerts.close(w)
        fired += [t for t in alerts.drain_transitions() if t.state == FIRING]
    return fired


def test_cost_per_call_trending_up_fires_on_a_rising_cost():
    fired = run_cost([0.01] * 12 + [0.01 * (1 + 0.04 * (b + 1) / 6) for b in range(24)])
    assert fired and fired[0].alert == COST_PER_CALL_TRENDING_UP


def test_cost_per_call_trending_up_stays_quiet_on_noise():
    assert run_cost([0.01] * (10 * BUCKETS_PER_DAY), seed=3) == []


def test_too_few_buckets_never_fire():
    _, fired = run_quality([0.8 * (1 - 0.2 * b / 6) for b in range(8)])  # steep, but under 2 h of data
    assert fired == []


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"analytics.trends.alpha"):
        TrendConfig.from_mapping({"alpha": 2.0}, "analytics.trends")
    with pytest.raises(ValueError, match=r"analytics.trends.min_buckets"):
        TrendConfig.from_mapping({"min_buckets": 40}, "analytics.trends")


def test_analytics_runs_the_trend_analyser_before_the_alert_engine_and_validates_its_section():
    from gensight.processor.analyse.analytics import Analytics, AnalyticsConfig

    analytics = Analytics(AnalyticsConfig.from_dict({"trends": {"bucket_s": 300, "lookback_s": 3600}}))
    order = analytics.analysers
    assert order.index(analytics.trends) < order.index(analytics.alerts)
    assert analytics.trends.n_buckets == 12
    with pytest.raises(ValueError, match=r"analytics.trends.bucket_s"):
        AnalyticsConfig.from_dict({"trends": {"bucket_s": -1}})
