"""The mSPRT statistics: the likelihood ratio against scipy's normal densities, the confidence
sequence against its definition, and the running moments against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gensight.processor.analyse import sequential as sq


@pytest.mark.parametrize("estimate,variance,tau2", [(0.0, 1.0, 0.5), (0.3, 0.01, 0.04), (-2.0, 0.5, 2.0)])
def test_likelihood_ratio_is_the_ratio_of_normal_densities(estimate, variance, tau2):
    expected = stats.norm.pdf(estimate, 0, math.sqrt(variance + tau2)) / stats.norm.pdf(estimate, 0, math.sqrt(variance))
    assert sq.mixture_likelihood_ratio(estimate, variance, tau2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("variance,tau2,alpha", [(1.0, 0.5, 0.05), (0.01, 0.04, 0.01)])
def test_confidence_sequence_edge_is_where_the_ratio_reaches_one_over_alpha(variance, tau2, alpha):
    w = sq.half_width(variance, tau2, alpha)
    # a null exactly one half-width away from the estimate gives Λ = 1/alpha
    assert sq.mixture_likelihood_ratio(w, variance, tau2) == pytest.approx(1 / alpha, rel=1e-9)


def test_sequential_interval_is_wider_than_the_fixed_horizon_one():
    variance, tau2 = 0.01, 0.04
    fixed = stats.norm.ppf(0.975) * math.sqrt(variance)
    assert sq.half_width(variance, tau2, 0.05) > fixed


def test_moments_merged_in_batches_equal_numpy():
    rng = np.random.default_rng(1)
    x = rng.lognormal(0, 1, 1000)
    m = sq.Moments()
    for chunk in np.array_split(x, 7):
        m.add_batch(list(chunk))
    assert m.n == 1000
    assert m.mean == pytest.approx(x.mean(), rel=1e-12)
    assert m.variance == pytest.approx(x.var(ddof=1), rel=1e-9)
    assert sq.Moments.from_list(m.to_list()).variance == pytest.approx(m.variance)


def test_difference_needs_two_values_and_some_variance():
    one, two = sq.Moments(1, 1.0, 0.0), sq.Moments(2, 1.0, 0.0)
    assert sq.difference(one, two, 0.05) is None
    assert sq.difference(two, two, 0.05) is None  # no variance: no evidence either way


def test_guardrail_scale_shifts_the_null():
    c, t = sq.Moments(), sq.Moments()
    rng = np.random.default_rng(2)
    c.add_batch(list(rng.normal(1.0, 0.1, 5000)))
    t.add_batch(list(rng.normal(1.1, 0.1, 5000)))  # 10 % worse
    assert sq.difference(c, t, 0.05).low > 0  # worse than control: significant
    assert sq.difference(c, t, 0.05, scale=1.2).high < 0  # but well within a 20 % guardrail
