"""The fixed-horizon experiment statistics against scipy.stats on the same data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gensight.processor.analyse import experiment_stats as st


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("successes,n", [(0, 50), (3, 40), (20, 40), (997, 1000)])
def test_wilson_interval_matches_scipy(successes, n):
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert st.wilson_interval(successes, n, 0.05) == pytest.approx((ci.low, ci.high), abs=1e-9)


@pytest.mark.parametrize("x1,n1,x2,n2", [(10, 200, 25, 210), (50, 1000, 52, 990), (0, 300, 4, 300)])
def test_two_proportion_p_value_equals_chi_square_without_correction(x1, n1, x2, n2):
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert st.two_proportions(x1, n1, x2, n2).p_value == pytest.approx(expected, rel=1e-9)


def test_newcombe_interval_contains_the_difference_and_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, table II example (56/70 vs 48/80): 0.0524, 0.3339
    e = st.two_proportions(48, 80, 56, 70)
    assert e.difference == pytest.approx(0.2)
    assert (e.ci_low, e.ci_high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


@pytest.mark.parametrize("ties", [False, True])
def test_mann_whitney_matches_scipy_asymptotic(rng, ties):
    a = rng.lognormal(0, 1, 300)
    b = rng.lognormal(0.1, 1, 250)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    expected = stats.mannwhitneyu(b, a, alternative="two-sided", method="asymptotic").pvalue
    assert st.mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-9)


def test_mann_whitney_is_symmetric_in_its_arms(rng):
    a, b = rng.normal(0, 1, 100), rng.normal(0.3, 1, 120)
    assert st.mann_whitney_p(a, b) == pytest.approx(st.mann_whitney_p(b, a), rel=1e-12)


@pytest.mark.parametrize("statistic,quantile", [("mean", 0.5), ("quantile", 0.5), ("quantile", 0.95)])
def test_bootstrap_interval_agrees_with_scipy_bootstrap(rng, statistic, quantile):
    a = rng.lognormal(0, 0.6, 400)
    b = rng.lognormal(0.2, 0.6, 400)

    def diff(x, y, axis=-1):
        if statistic == "mean":
            return np.mean(y, axis=axis) - np.mean(x, axis=axis)
        return np.quantile(y, quantile, axis=axis) - np.quantile(x, quantile, axis=axis)

    ref = stats.bootstrap((a, b), diff, n_resamples=4000, method="percentile", random_state=1,
                          confidence_level=0.95).confidence_interval
    ours = st.bootstrap_difference(a, b, statistic=statistic, quantile=quantile, resamples=4000)
    width = ref.high - ref.low
    # two Monte-Carlo estimates of the same interval: equal within a few percent of its width
    assert ours.ci_low == pytest.approx(ref.low, abs=0.1 * width)
    assert ours.ci_high == pytest.approx(ref.high, abs=0.1 * width)
    assert ours.difference == pytest.approx(diff(a, b))


def test_bootstrap_is_reproducible(rng):
    a, b = rng.normal(size=50), rng.normal(size=60)
    assert st.bootstrap_difference(a, b) == st.bootstrap_difference(a, b)


def test_bootstrap_quantile_p_value_is_never_zero(rng):
    a, b = rng.normal(0, 1, 500), rng.normal(5, 1, 500)
    e = st.bootstrap_difference(a, b, statistic="quantile", quantile=0.5, resamples=500)
    assert e.p_value == pytest.approx(1 / 500)


def test_holm_matches_the_definition():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone: 0.06
    assert st.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one():
    assert st.holm([0.5, 0.6]) == [1.0, 1.0]


@pytest.mark.parametrize("nc,nt,share", [(5000, 5000, 0.5), (5100, 4900, 0.5), (7000, 3000, 0.25)])
def test_sample_ratio_p_matches_scipy_chisquare(nc, nt, share):
    n = nc + nt
    expected = stats.chisquare([nc, nt], [n * (1 - share), n * share]).pvalue
    assert st.sample_ratio_p(nc, nt, share) == pytest.approx(expected, rel=1e-9)


def test_sample_ratio_share_outside_zero_one_is_rejected():
    with pytest.raises(ValueError, match="share"):
        st.sample_ratio_p(10, 10, 1.0)


def test_minimum_detectable_effect_gives_the_intended_power():
    se = 0.02
    mde = st.minimum_detectable_effect(se, alpha=0.05, power=0.8)
    # a true difference of mde is detected (|z| > z_crit) with probability 0.8
    power = stats.norm.sf(stats.norm.ppf(0.975) - mde / se)
    assert power == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize("statistic,quantile", [("mean", 0.5), ("quantile", 0.5), ("quantile", 0.95)])
def test_large_sample_interval_agrees_with_the_bootstrap(rng, statistic, quantile, monkeypatch):
    a = rng.lognormal(0, 0.6, 12_000)
    b = rng.lognormal(0.05, 0.6, 12_000)
    large = st.bootstrap_difference(a, b, statistic=statistic, quantile=quantile)
    monkeypatch.setattr(st, "BOOTSTRAP_MAX_N", 10**9)
    boot = st.bootstrap_difference(a, b, statistic=statistic, quantile=quantile, resamples=1000)
    width = boot.ci_high - boot.ci_low
    assert large.ci_low == pytest.approx(boot.ci_low, abs=0.15 * width)
    assert large.ci_high == pytest.approx(boot.ci_high, abs=0.15 * width)
    assert large.difference == boot.difference


def test_quantile_standard_error_matches_the_asymptotic_formula(rng):
    """SE of the median of N(0, 1) samples: sqrt(q(1 − q) / n) / pdf(median) (scipy.stats.norm)."""
    x = rng.normal(size=40_000)
    expected = math.sqrt(0.25 / len(x)) / stats.norm.pdf(0.0)
    assert st.quantile_standard_error(x, 0.5) == pytest.approx(expected, rel=0.1)
