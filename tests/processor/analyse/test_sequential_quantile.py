"""Quantile confidence sequences (live latency_p50_s / latency_p95_s): the mixture against scipy's
distributions, the sequence against scipy's fixed-sample interval, time-uniform coverage on seeded
streams, and the bounded histogram behind it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gensight.processor.analyse import sequential_quantile as sq


@pytest.mark.parametrize("n,q,k", [(500, 0.95, 450), (500, 0.95, 490), (80, 0.5, 31), (2000, 0.95, 1900)])
def test_mixture_is_the_beta_binomial_over_the_binomial(n, q, k):
    m = sq._Mixture.of(n, q)
    expected = stats.betabinom.logpmf(k, n, m.a, m.b) - stats.binom.logpmf(k, n, q)
    assert m.log_m(k) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("n,q", [(50, 0.95), (400, 0.5), (1000, 0.95)])
def test_mixture_has_mean_one_under_the_null(n, q):
    """E[M_n] = 1 when the share below the quantile is q: what makes it a test martingale."""
    m = sq._Mixture.of(n, q)
    ks = np.arange(n + 1)
    mean = sum(math.exp(stats.binom.logpmf(k, n, q) + m.log_m(int(k))) for k in ks)
    assert mean == pytest.approx(1.0, rel=1e-9)


def _hist(values) -> sq.LogHistogram:
    h = sq.LogHistogram()
    h.add_batch(list(values))
    return h


@pytest.mark.parametrize("n,q", [(300, 0.5), (2000, 0.95), (10000, 0.95)])
def test_sequence_contains_scipys_fixed_sample_interval(n, q):
    """Valid at every n at once, the sequence is wider than the interval valid at this n only."""
    x = np.random.default_rng(n).lognormal(0.0, 0.6, n)
    low, high = sq.quantile_confidence_sequence(_hist(x), q, 0.05)
    fixed = stats.quantile_test(x, q=np.quantile(x, q), p=q).confidence_interval(0.95)
    assert low <= fixed.low and fixed.high <= high
    assert high / low < 1.5  # but not uselessly so


def test_sequence_covers_the_true_quantile_at_every_look():
    """Over 300 seeded streams of 3,000 exponential values looked at every 50: the true p95 left
    the sequence in at most alpha of them (Ville's inequality, here well below)."""
    q, alpha, seeds = 0.95, 0.05, 300
    true = -math.log(1 - q)
    missed = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        h = sq.LogHistogram()
        for _ in range(60):
            h.add_batch(list(rng.exponential(1.0, 50)))
            low, high = sq.quantile_confidence_sequence(h, q, alpha)
            if not low <= true <= high:
                missed += 1
                break
    assert missed / seeds <= alpha


def test_p_value_is_the_smallest_alpha_whose_interval_excludes_zero():
    rng = np.random.default_rng(3)
    c, t = _hist(rng.lognormal(0, 0.6, 1500)), _hist(rng.lognormal(0, 0.6, 1500) * 1.15)
    look = sq.quantile_difference(c, t, 0.95, 0.05)
    assert look is not None and 0 < look.p_value < 1
    above = sq.quantile_difference(c, t, 0.95, min(1.0, look.p_value * 1.01))
    below = sq.quantile_difference(c, t, 0.95, look.p_value * 0.99)
    assert above is not None and above.low > 0
    assert below is not None and below.low <= 0


def test_difference_waits_until_both_sequences_are_bounded():
    small = _hist([1.0, 1.1, 1.2])
    assert sq.quantile_difference(small, small, 0.95, 0.05) is None  # U = +inf: the top rank is too close


def test_histogram_quantile_is_within_half_a_bucket_of_numpys():
    x = np.random.default_rng(4).lognormal(0, 1.0, 20000)
    h = _hist(x)
    for q in (0.5, 0.95, 0.99):
        assert h.quantile(q) == pytest.approx(np.quantile(x, q), rel=0.006)


def test_rank_bounds_enclose_the_order_statistics():
    x = np.random.default_rng(5).lognormal(0, 1.0, 1000)
    h, xs = _hist(x), np.sort(x)
    for rank in (1, 10, 500, 950, 1000):
        low, high = h.rank_bounds(rank, rank)
        assert low <= xs[rank - 1] <= high and high / low <= sq.BUCKET_GROWTH * (1 + 1e-12)
    assert h.rank_bounds(0, 1001) == (0.0, math.inf)


def test_histogram_is_bounded_and_survives_hostile_values():
    h = _hist([0.0, -1.0, 1e-12, 1e300, math.inf, math.nan, 5.0])
    assert h.n == 5  # inf and nan are not values
    h.add_batch(list(np.logspace(-9, 12, 100_000)))
    assert len(h.counts) <= sq.MAX_BUCKETS
    assert sq.LogHistogram.from_list(h.to_list()).counts == h.counts
