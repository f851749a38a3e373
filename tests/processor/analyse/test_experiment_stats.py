"""The fixed-horizon experiment statistics against scipy.stats on the same data."""

from __future__ import annotations

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


def test_bootstrap_interval_agrees_with_scipy_bootstrap(rng):
    a = rng.lognormal(0, 0.6, 400)
    b = rng.lognormal(0.2, 0.6, 400)

    def diff(x, y, axis=-1):
        return np.mean(y, axis=axis) - np.mean(x, axis=axis)

    ref = stats.bootstrap((a, b), diff, n_resamples=4000, method="percentile", random_state=1,
                          confidence_level=0.95).confidence_interval
    ours = st.bootstrap_difference(a, b, resamples=4000)
    width = ref.high - ref.low
    # two Monte-Carlo estimates of the same interval: equal within a few percent of its width
    assert ours.ci_low == pytest.approx(ref.low, abs=0.1 * width)
    assert ours.ci_high == pytest.approx(ref.high, abs=0.1 * width)
    assert ours.difference == pytest.approx(diff(a, b))


def test_bootstrap_is_reproducible(rng):
    a, b = rng.normal(size=50), rng.normal(size=60)
    assert st.bootstrap_difference(a, b) == st.bootstrap_difference(a, b)


@pytest.mark.parametrize("table", [
    ((8, 2), (1, 5)), ((3, 7), (7, 3)), ((15, 285), (15, 285)), ((10, 290), (20, 280)), ((0, 30), (4, 26)),
    ((12, 288), (3, 27)), ((1480, 28520), (1620, 28380)), ((150_300, 149_700), (149_000, 151_000)),
])
def test_fisher_exact_p_matches_scipy(table):
    assert st.fisher_exact_p(table) == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-7)


def test_fisher_exact_p_of_a_table_with_an_empty_margin_is_one():
    assert st.fisher_exact_p(((0, 5), (0, 7))) == 1.0


@pytest.mark.parametrize("ties", [False, True])
def test_median_test_table_is_scipys(rng, ties):
    a, b = rng.lognormal(0, 0.6, 301), rng.lognormal(0.1, 0.6, 250)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    expected = stats.median_test(a, b).table  # rows above / not above the grand median, ties below
    assert np.array_equal(np.array(st.median_test_table(a, b, 0.5)), expected)


def test_median_p_value_is_fisher_exact_on_scipys_median_test_table(rng):
    a, b = rng.lognormal(0, 0.6, 300), rng.lognormal(0.15, 0.6, 280)
    table = stats.median_test(a, b).table
    e = st.quantile_difference(a, b, quantile=0.5)
    assert e.p_value == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-7)


def test_p95_table_counts_values_above_scipys_pooled_percentile(rng):
    a, b = rng.lognormal(0, 0.6, 300), rng.lognormal(0.15, 0.6, 280)
    cut = stats.scoreatpercentile(np.concatenate([a, b]), 95)
    expected = (((a > cut).sum(), (b > cut).sum()), ((a <= cut).sum(), (b <= cut).sum()))
    assert st.median_test_table(a, b, 0.95) == expected
    assert st.quantile_difference(a, b, quantile=0.95).p_value == pytest.approx(
        stats.fisher_exact(expected).pvalue, rel=1e-7)


@pytest.mark.parametrize("n,quantile", [(80, 0.95), (301, 0.95), (300, 0.5), (5000, 0.9), (7, 0.5)])
def test_quantile_interval_matches_scipy_quantile_test(rng, n, quantile):
    x = rng.lognormal(0, 0.6, n)
    ci = stats.quantile_test(x, p=quantile).confidence_interval(0.95)
    assert st.quantile_interval(x, quantile, 0.05) == (ci.low, ci.high)


def test_quantile_interval_without_a_bound_stops_at_the_sample_extreme(rng):
    x = rng.lognormal(0, 0.6, 30)  # 0.95 ** 30 > 0.025: no distribution-free 95 % upper bound of p95
    assert np.isnan(stats.quantile_test(x, p=0.95).confidence_interval(0.95).high)
    assert st.quantile_interval(x, 0.95, 0.05)[1] == x.max()


@pytest.mark.parametrize("quantile", [0.5, 0.95])
def test_quantile_difference_interval_brackets_the_difference(rng, quantile):
    a, b = rng.lognormal(0, 0.6, 500), rng.lognormal(0.3, 0.6, 500)
    e = st.quantile_difference(a, b, quantile=quantile)
    assert e.difference == pytest.approx(np.quantile(b, quantile) - np.quantile(a, quantile))
    assert 0 < e.ci_low < e.difference < e.ci_high
    assert e.p_value < 0.05


def test_quantile_difference_is_symmetric_in_its_arms(rng):
    a, b = rng.lognormal(0, 0.6, 200), rng.lognormal(0.1, 0.6, 240)
    ab, ba = st.quantile_difference(a, b, quantile=0.95), st.quantile_difference(b, a, quantile=0.95)
    assert ab.p_value == pytest.approx(ba.p_value, rel=1e-9)
    assert (ab.ci_low, ab.ci_high) == pytest.approx((-ba.ci_high, -ba.ci_low))


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


def test_large_sample_interval_agrees_with_the_bootstrap(rng, monkeypatch):
    a = rng.lognormal(0, 0.6, 12_000)
    b = rng.lognormal(0.05, 0.6, 12_000)
    large = st.bootstrap_difference(a, b)
    monkeypatch.setattr(st, "BOOTSTRAP_MAX_N", 10**9)
    boot = st.bootstrap_difference(a, b, resamples=1000)
    width = boot.ci_high - boot.ci_low
    assert large.ci_low == pytest.approx(boot.ci_low, abs=0.15 * width)
    assert large.ci_high == pytest.approx(boot.ci_high, abs=0.15 * width)
    assert large.difference == boot.difference
