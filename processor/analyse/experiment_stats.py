"""Fixed-horizon two-sample statistics for ``gensight compare``: one test per kind of metric.

Why these tests (see ``docs/analytics.md``, "Experiments"):

* **Rates** (error rate, pass ratio): the pooled two-proportion z-test (identical to Pearson's
  chi-square on the 2x2 table without continuity correction) for the p-value, Newcombe's hybrid
  score interval (Wilson intervals per arm) for the difference — good coverage even near 0 %.
* **Heavy-tailed means** (mean latency, time to first chunk, cost, tokens, evaluation scores): the
  Mann–Whitney U test (normal approximation with tie and continuity corrections; rank-based, so one
  enormous latency cannot dominate it) for the p-value, and a percentile bootstrap interval for the
  difference of means (Welch's normal interval above ``BOOTSTRAP_MAX_N`` values in both arms: the
  bootstrap's answer at that size, at a thousandth of the cost).
* **Quantiles** (p50, p95 latency): the generalised (Mood) median test. Count each arm's values
  above the pooled sample's q-quantile and test the 2x2 table with Fisher's exact test.
  Null hypothesis: both arms' values are independent draws from one distribution (any shape, ties
  allowed). Under it, given the pooled values, which of them fall in the treatment arm is a random
  draw without replacement, so the count above is hypergeometric and the p-value is exact:
  P(p <= alpha) <= alpha at every sample size (conservative where the counts are small, e.g. p95 of
  a few dozen calls). It is not a test of "equal q-quantiles, other shapes": arms with the same p95
  but very different spreads around it are flagged more often than alpha (Freidlin & Gastwirth,
  2000). The interval is a separate, approximate construction: each arm's distribution-free
  order-statistic interval for its quantile (exact binomial ranks), combined as Newcombe combines
  Wilson intervals (MOVER; Zou & Donner, 2008). It covers the difference of quantiles with about
  1 − alpha for any shapes, and mostly agrees with the test; where they disagree, ``significant``
  follows the p-value. Both are O(n) (a partition and a count per arm), no resampling, at any size.
* Several metrics: Holm's step-down adjustment keeps the family-wise false-positive rate at alpha.
* Sample-ratio mismatch: chi-square goodness of fit of the arm counts to the expected split.
* Minimum detectable effect: (z(1 − alpha/2) + z(power)) x the standard error of the difference,
  at the current sample sizes (power 0.8).

numpy only: the formulas are checked against ``scipy.stats`` in the tests, scipy is not needed
at run time. Every random draw comes from a seeded generator: the same input gives the same report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20170419  # fixed: a report is reproducible
# above this many values in *both* arms, normal approximations replace the bootstrap (same answer
# within Monte-Carlo noise at that size; one pass over the data instead of 2,000)
BOOTSTRAP_MAX_N = 10_000
# resample in chunks of at most this many values, so memory stays bounded for large arms
_BOOTSTRAP_CHUNK_VALUES = 4_000_000
# Fisher's test: tables whose probability is within this (relative) of the observed one count as
# "as extreme" — mirror tables, equal in exact arithmetic, differ in the last bits here
_FISHER_LOG_TOLERANCE = 1e-7
_STD_NORMAL = NormalDist()


class Estimate(NamedTuple):
    """One metric compared: arm values, difference (treatment − control) with its interval."""

    control: float
    treatment: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    standard_error: float  # of the difference: gives the minimum detectable effect


def normal_two_sided_p(z: float) -> float:
    """P(|Z| >= |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def z_quantile(p: float) -> float:
    return _STD_NORMAL.inv_cdf(p)


def wilson_interval(successes: int, n: int, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Wilson score interval of a proportion (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``)."""
    if n <= 0:
        return (0.0, 1.0)
    z = z_quantile(1 - alpha / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def two_proportions(x_control: int, n_control: int, x_treatment: int, n_treatment: int,
                    alpha: float = DEFAULT_ALPHA) -> Estimate:
    """Difference of two rates: pooled z-test p-value, Newcombe (method 10) interval."""
    p1 = x_control / n_control if n_control else 0.0
    p2 = x_treatment / n_treatment if n_treatment else 0.0
    diff = p2 - p1
    if not n_control or not n_treatment:
        return Estimate(p1, p2, diff, -1.0, 1.0, 1.0, math.inf)
    pooled = (x_control + x_treatment) / (n_control + n_treatment)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_treatment))
    p_value = 1.0 if se_pooled == 0 else normal_two_sided_p(diff / se_pooled)
    l1, u1 = wilson_interval(x_control, n_control, alpha)
    l2, u2 = wilson_interval(x_treatment, n_treatment, alpha)
    low = diff - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = diff + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    # the MDE's standard error: the control rate in both arms (floor of one event, so 0 % has one)
    base = max(p1, 1 / n_control)
    se = math.sqrt(base * (1 - base) * (1 / n_control + 1 / n_treatment))
    return Estimate(p1, p2, diff, low, high, p_value, se)


def mann_whitney_p(control: np.ndarray, treatment: np.ndarray) -> float:
    """Two-sided Mann–Whitney U p-value, normal approximation with tie and continuity corrections
    (``scipy.stats.mannwhitneyu(..., method="asymptotic")``)."""
    n1, n2 = len(control), len(treatment)
    if n1 == 0 or n2 == 0:
        return 1.0
    both = np.concatenate([control, treatment])
    order = np.argsort(both, kind="mergesort")
    sorted_values = both[order]
    # average ranks for ties
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    counts = np.diff(np.r_[starts, len(both)])
    average = starts + (counts + 1) / 2.0
    ranks = np.empty(len(both))
    ranks[order] = np.repeat(average, counts)
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    tie_term = float((counts.astype(float) ** 3 - counts).sum())
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return 1.0
    mean_u = n1 * n2 / 2.0
    u = max(u1, n1 * n2 - u1)
    z = (u - mean_u - 0.5) / math.sqrt(variance)
    return min(1.0, 2.0 * _STD_NORMAL.cdf(-z)) if z > 0 else 1.0


def _bootstrap_means(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """``resamples`` means of resamples (with replacement) of ``values``."""
    n = len(values)
    out = np.empty(resamples)
    chunk = max(1, min(resamples, _BOOTSTRAP_CHUNK_VALUES // max(n, 1)))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        out[start:start + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return out


def bootstrap_difference(control: Sequence[float] | np.ndarray, treatment: Sequence[float] | np.ndarray, *,
                         alpha: float = DEFAULT_ALPHA, resamples: int = BOOTSTRAP_RESAMPLES,
                         seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Treatment − control of the mean: percentile bootstrap interval (normal above
    ``BOOTSTRAP_MAX_N``), Mann–Whitney p-value (see the module docstring)."""
    a = np.asarray(control, dtype=float)
    b = np.asarray(treatment, dtype=float)
    if len(a) == 0 or len(b) == 0:
        nan = math.nan
        return Estimate(nan, nan, nan, nan, nan, 1.0, math.inf)
    c, t = float(a.mean()), float(b.mean())
    p_value = mann_whitney_p(a, b)
    if min(len(a), len(b)) > BOOTSTRAP_MAX_N:
        # Welch's standard error: the bootstrap's answer at that size, one pass instead of thousands
        se = math.sqrt(float(a.var(ddof=1)) / len(a) + float(b.var(ddof=1)) / len(b))
        z = z_quantile(1 - alpha / 2)
        return Estimate(c, t, t - c, t - c - z * se, t - c + z * se, p_value, se)
    rng = np.random.default_rng(seed)
    diffs = _bootstrap_means(b, rng, resamples) - _bootstrap_means(a, rng, resamples)
    low, high = (float(v) for v in np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))
    return Estimate(c, t, t - c, low, high, p_value, float(diffs.std(ddof=1)))


# -- quantiles: the generalised median test and distribution-free intervals --------------------------

def _normalised_log_pmf(log_ratios: np.ndarray) -> np.ndarray:
    """ln pmf over ``len(log_ratios) + 1`` consecutive integers from the ratios
    ln pmf(k + 1) − ln pmf(k): summed up and normalised to total probability 1 (no factorials, one
    vectorised pass however large the support)."""
    log_pmf = np.concatenate(([0.0], np.cumsum(log_ratios)))
    top = float(log_pmf.max())
    return log_pmf - (top + math.log(float(np.exp(log_pmf - top).sum())))


def fisher_exact_p(table: tuple[tuple[int, int], tuple[int, int]]) -> float:
    """Two-sided p-value of Fisher's exact test on the 2x2 table ``((a, b), (c, d))``
    (``scipy.stats.fisher_exact``): the probability, under the hypergeometric law of ``a`` given the
    margins, of the tables no more probable than the observed one. Exact at any counts."""
    (a, b), (c, d) = table
    row, col, n = a + b, a + c, a + b + c + d
    if 0 in (row, c + d, col, b + d):
        return 1.0
    lo, hi = max(0, col - (c + d)), min(row, col)
    x = np.arange(lo, hi, dtype=float)
    log_pmf = _normalised_log_pmf(np.log((row - x) * (col - x)) - np.log((x + 1) * (n - row - col + x + 1)))
    # mirror tables have equal probabilities in exact arithmetic: a relative tolerance keeps them in
    as_extreme = log_pmf[log_pmf <= log_pmf[a - lo] + _FISHER_LOG_TOLERANCE]
    top = float(as_extreme.max())
    return min(1.0, math.exp(top) * float(np.exp(as_extreme - top).sum()))


def median_test_table(control: np.ndarray, treatment: np.ndarray,
                      quantile: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """The generalised median test's 2x2 table: per arm (columns: control, treatment) the values
    above (row 0) and not above (row 1) the pooled sample's ``quantile`` (linear interpolation, as
    ``numpy.quantile``); for 0.5 it is ``scipy.stats.median_test(control, treatment).table``."""
    pooled = float(np.quantile(np.concatenate([control, treatment]), quantile))
    above_c = int(np.count_nonzero(control > pooled))
    above_t = int(np.count_nonzero(treatment > pooled))
    return ((above_c, above_t), (len(control) - above_c, len(treatment) - above_t))


def quantile_interval(values: np.ndarray, quantile: float, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Distribution-free 1 − alpha interval for the ``quantile`` of the distribution ``values`` come
    from: the order statistics whose ranks bound the Binomial(n, quantile) count of values at or
    below it (``scipy.stats.quantile_test(values, p=quantile).confidence_interval(1 - alpha)``).
    Where the sample is too small for a bound (p95 from fewer than 72 values has no 95 % upper
    bound), the sample's extreme stands in and the interval is narrower than its level."""
    n = len(values)
    k = np.arange(n, dtype=float)
    cdf = np.cumsum(np.exp(_normalised_log_pmf(np.log(n - k) - np.log(k + 1)
                                                + math.log(quantile / (1 - quantile)))))
    lo = max(0, int(np.searchsorted(cdf, alpha / 2, side="right")) - 1)
    hi = min(n - 1, int(np.searchsorted(cdf, 1 - alpha / 2, side="left")))
    part = np.partition(values, (lo, hi))
    return float(part[lo]), float(part[hi])


def quantile_difference(control: Sequence[float] | np.ndarray, treatment: Sequence[float] | np.ndarray, *,
                        quantile: float, alpha: float = DEFAULT_ALPHA) -> Estimate:
    """Treatment − control of a quantile. p-value: the generalised median test (Fisher's exact test
    on :func:`median_test_table`), exact under "both arms from one distribution". Interval: each
    arm's :func:`quantile_interval` combined as Newcombe combines Wilson intervals (MOVER, Zou &
    Donner 2008). O(n): a partition and a count per arm, no resampling."""
    a = np.asarray(control, dtype=float)
    b = np.asarray(treatment, dtype=float)
    if len(a) == 0 or len(b) == 0:
        nan = math.nan
        return Estimate(nan, nan, nan, nan, nan, 1.0, math.inf)
    c, t = float(np.quantile(a, quantile)), float(np.quantile(b, quantile))
    p_value = fisher_exact_p(median_test_table(a, b, quantile))
    lc, uc = quantile_interval(a, quantile, alpha)
    lt, ut = quantile_interval(b, quantile, alpha)
    diff = t - c
    low = diff - math.hypot(t - min(lt, t), max(uc, c) - c)
    high = diff + math.hypot(max(ut, t) - t, c - min(lc, c))
    # the interval's standard error (half-width / z) gives the minimum detectable effect
    se = (high - low) / (2 * z_quantile(1 - alpha / 2))
    return Estimate(c, t, diff, low, high, p_value, se)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def sample_ratio_p(n_control: int, n_treatment: int, treatment_share: float) -> float:
    """Chi-square goodness-of-fit p-value of the arm counts against the expected treatment share
    (``scipy.stats.chisquare``, 1 degree of freedom)."""
    if not 0.0 < treatment_share < 1.0:
        raise ValueError("treatment share must be in (0, 1)")
    n = n_control + n_treatment
    if n == 0:
        return 1.0
    expected_t = n * treatment_share
    expected_c = n - expected_t
    chi2 = (n_treatment - expected_t) ** 2 / expected_t + (n_control - expected_c) ** 2 / expected_c
    return math.erfc(math.sqrt(chi2 / 2.0))


def minimum_detectable_effect(standard_error: float, alpha: float = DEFAULT_ALPHA,
                              power: float = DEFAULT_POWER) -> float:
    """Smallest true difference found with probability ``power`` by a two-sided level-alpha test."""
    return (z_quantile(1 - alpha / 2) + z_quantile(power)) * standard_error
