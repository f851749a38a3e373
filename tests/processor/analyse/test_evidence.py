"""The tests behind every anomaly and drift decision, against scipy, and the CUSUM's calibration."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from gensight.processor.analyse import evidence as ev


def scipy_betabinom_logsf(k, n, a, b):
    """ln P(K >= k), summed in log space (scipy's own logsf loses the far tail to 1 - cdf)."""
    return float(logsumexp(stats.betabinom.logpmf(np.arange(k, n + 1), n, a, b))) if k > 0 else 0.0


@pytest.mark.parametrize("k, n, a, b", [(3, 40, 1, 199), (1, 3, 1.5, 300), (10, 40, 3.5, 30), (40, 40, 5, 100),
                                        (5, 200, 21, 181), (150, 1000, 10, 90), (90, 1000, 10, 90), (0, 5, 2, 3)])
def test_betabinomial_tail_matches_scipy(k, n, a, b):
    assert ev.betabinom_logsf(k, n, a, b) == pytest.approx(scipy_betabinom_logsf(k, n, a, b), rel=1e-9, abs=1e-12)


def scipy_binom_logsf(k, n, p):
    return float(logsumexp(stats.binom.logpmf(np.arange(k, n + 1), n, p))) if k > 0 else 0.0


@pytest.mark.parametrize("k, n, p", [(3, 40, 0.005), (1, 3, 0.01), (12, 40, 0.02), (40, 40, 0.1), (5, 200, 0.1),
                                     (150, 1000, 0.1), (90, 1000, 0.1), (0, 5, 0.3)])
def test_binomial_tail_matches_scipy(k, n, p):
    assert ev.binom_logsf(k, n, p) == pytest.approx(scipy_binom_logsf(k, n, p), rel=1e-9, abs=1e-12)


def test_error_rate_is_tested_against_the_upper_bound_of_the_reference_rate():
    # 3 errors in 40 calls after 5 errors in 1000 reference calls, Beta(1, 199) prior
    got = ev.rate_logp(3, 40, 5, 1000, (1.0, 199.0), 0.999)
    upper = stats.beta.ppf(0.999, 6.0, 1194.0)
    assert got == pytest.approx(scipy_binom_logsf(3, 40, upper))
    assert math.exp(got) > stats.binom.sf(2, 40, 6 / 1200)  # more cautious than the point estimate


def test_exceedance_counts_values_over_the_reference_order_statistic():
    rng = np.random.default_rng(0)
    ref = np.sort(rng.lognormal(0, 0.3, 199))
    window = rng.lognormal(0.2, 0.3, 30)
    lp, t = ev.exceedance_logp(window, ref, 0.9, True, 0.999)
    j = math.ceil(0.9 * 200)  # 180th smallest of 199
    assert t == ref[j - 1]
    k = int((window > t).sum())
    assert lp == pytest.approx(scipy_binom_logsf(k, 30, stats.beta.ppf(0.999, 200 - j, j)))


def test_downward_exceedance_counts_values_under_the_low_order_statistic():
    rng = np.random.default_rng(1)
    ref = np.sort(rng.normal(0.8, 0.08, 299))
    window = rng.normal(0.62, 0.08, 20)
    lp, t = ev.exceedance_logp(window, ref, 0.1, False, 0.999)
    j = math.floor(0.1 * 300)
    k = int((window < t).sum())
    assert t == ref[j - 1]
    assert lp == pytest.approx(scipy_binom_logsf(k, 20, stats.beta.ppf(0.999, j, 299 - j + 1)))


def test_exceedance_p_values_are_conservative_under_the_null_even_per_reference():
    """One reference, many windows (the accumulated case): P(p <= x) <= x for most references."""
    rng = np.random.default_rng(2)
    bad = 0
    for _ in range(40):
        ref = np.sort(rng.exponential(1.0, 200))
        ps = np.asarray([math.exp(ev.exceedance_logp(rng.exponential(1.0, 25), ref, 0.9, True, 0.999)[0])
                         for _ in range(300)])
        bad += (ps <= 0.05).mean() > 0.05 + 4 * math.sqrt(0.05 * 0.95 / 300)
    assert bad <= 1


def test_category_test_is_the_bonferroni_min_of_binomial_rises_at_upper_shares():
    ref = {"stop": 980.0, "length": 20.0}
    window = {"stop": 28, "length": 12}
    lp, cat = ev.category_logp(window, ref, 0.999)
    assert cat == "length"
    cells = 3  # stop, length, _new
    upper = stats.beta.ppf(0.999, 20.5, 1000 + 1.5 - 20.5)
    assert lp == pytest.approx(scipy_binom_logsf(12, 40, upper) + math.log(cells))


def test_a_category_the_reference_never_saw_is_tested_in_the_new_cell():
    lp, cat = ev.category_logp({"stop": 30, "content_filter": 10}, {"stop": 1000.0}, 0.999)
    assert cat == "_new" and lp < -20


def test_two_sample_chi_square_matches_scipy():
    r = np.array([100.0, 95, 105, 0, 100])
    c = np.array([30.0, 50, 20, 0, 15])
    stat, df = ev.chi2_two_sample(r, c)
    chi2, p, dof, _ = stats.chi2_contingency(np.vstack([r[r + c > 0], c[r + c > 0]]), correction=False)
    assert (stat, df) == (pytest.approx(chi2), dof)
    assert ev.chi2_logsf(stat, df) == pytest.approx(math.log(p))


def test_cusum_tail_is_exact_for_uniform_p_values():
    """The D/M/1 closed form against a long simulated CUSUM of -ln U - k."""
    rng = np.random.default_rng(3)
    e = rng.exponential(1.0, 400_000)
    k, h = 2.0, 4.0
    s, above = 0.0, 0
    for x in e:
        s = max(0.0, s + x - k)
        above += s >= h
    frac = above / len(e)
    expected = ev.cusum_tail(h, k)
    se = math.sqrt(expected / len(e)) * 4  # runs above h are correlated: a generous band
    assert abs(frac - expected) < 4 * se


def test_threshold_inverts_the_tail():
    h = ev.cusum_threshold(7.7e-6, 2.0)
    assert ev.cusum_tail(h, 2.0) == pytest.approx(7.7e-6)
    assert 12 < h < 14


def test_score_mapping_puts_h_at_0_7_and_is_monotone():
    h = 12.0
    xs = np.linspace(0, 40, 200)
    ys = [ev.evidence_score(x, h) for x in xs]
    assert ev.evidence_score(h, h) == pytest.approx(0.7)
    assert all(b >= a for a, b in zip(ys, ys[1:], strict=False)) and ys[0] == 0 and ys[-1] < 1


def test_conformal_p_value_is_the_rank_among_normal_scores():
    hist = [0.1, 0.2, 0.3, 0.4]
    assert ev.conformal_logp(0.35, hist) == pytest.approx(math.log(2 / 5))
    assert ev.conformal_logp(0.9, hist) == pytest.approx(math.log(1 / 5))


@pytest.mark.parametrize("k, n, r0, r1", [(0, 40, 0.0055, 0.0455), (2, 40, 0.0055, 0.0455), (4, 40, 0.006, 0.126),
                                          (1, 3, 0.01, 0.31), (30, 30, 0.2, 0.99), (0, 0, 0.01, 0.05)])
def test_binomial_log_likelihood_ratio_matches_scipy(k, n, r0, r1):
    expected = float(stats.binom.logpmf(k, n, r1) - stats.binom.logpmf(k, n, r0))
    assert ev.binom_llr(k, n, r0, r1) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_rate_alternatives_rise_by_a_factor_or_an_absolute_step():
    assert ev.rate_alternatives(0.005) == pytest.approx([0.045, 0.125, 0.305])
    assert ev.rate_alternatives(0.1) == pytest.approx([0.4, 0.99, 0.99])  # capped below 1


@pytest.mark.parametrize("per_window", [2, 40])
def test_likelihood_ratio_cusum_exceeds_h_at_most_at_the_stated_rate(per_window):
    """Ville: under a rate at the reference bound r0, P(S >= ln(1/alpha)) <= alpha in every window.
    A bank of three CUSUMs at h = ln(3/alpha) on 100,000 stationary windows (Poisson traffic, quiet
    and busy) exceeds h on at most alpha of the windows (+ 4 s.e.), and its first alarm comes no
    sooner than the average run length the bound promises would make likely."""
    alpha = 2e-3
    h = ev.llr_cusum_threshold(alpha / len(ev.LR_ALTERNATIVES))
    r0 = 0.005
    rng = np.random.default_rng(per_window)
    windows = 100_000
    n = rng.poisson(per_window, windows)
    k = rng.binomial(n, r0)
    r1s = ev.rate_alternatives(r0)
    s = np.zeros(len(r1s))
    over = 0
    for kk, nn in zip(k.tolist(), n.tolist(), strict=True):
        s = np.maximum(0.0, s + [ev.binom_llr(kk, nn, r0, r1) for r1 in r1s])
        over += bool((s >= h).any())
    assert over / windows <= alpha + 4 * math.sqrt(alpha / windows)


def test_likelihood_ratio_cusum_is_not_vacuous_under_a_rise():
    """The same bank on a rise 0.5 % -> 5 % at 40 calls a window crosses h within 8 windows."""
    h = ev.llr_cusum_threshold(4.3e-6 / len(ev.LR_ALTERNATIVES))
    r0 = 0.0055
    rng = np.random.default_rng(3)
    delays = []
    for _ in range(200):
        s = np.zeros(len(ev.LR_ALTERNATIVES))
        for w in range(1, 100):
            nn = int(rng.poisson(40))
            kk = int(rng.binomial(nn, 0.05))
            s = np.maximum(0.0, s + [ev.binom_llr(kk, nn, r0, r1) for r1 in ev.rate_alternatives(r0)])
            if (s >= h).any():
                delays.append(w)
                break
    assert len(delays) == 200 and float(np.median(delays)) <= 8


def test_likelihood_ratio_threshold_is_ln_one_over_alpha():
    assert ev.llr_cusum_threshold(1e-3) == pytest.approx(math.log(1000))
    with pytest.raises(ValueError):
        ev.llr_cusum_threshold(0.0)
