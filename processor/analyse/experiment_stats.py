"""Fixed-horizon two-sample statistics for ``gensight compare``: one test per kind of metric.

Why these tests (see ``docs/analytics.md``, "Experiments"):

* **Rates** (error rate, pass ratio): the pooled two-proportion z-test (identical to Pearson's
  chi-square on the 2x2 table without continuity correction) for the p-value, Newcombe's hybrid
  score interval (Wilson intervals per arm) for the difference — good coverage even near 0 %.
* **Heavy-tailed values** (latency, time to first chunk, cost, tokens, evaluation scores): the
  Mann–Whitney U test (normal approximation with tie and continuity corrections; rank-based, so one
  enormous latency cannot dominate it) for the p-value of a *mean*-type metric, and a percentile
  bootstrap interval for the difference of means. Quantiles (p50, p95) get a bootstrap interval and
  the bootstrap p-value that matches it (twice the smaller tail of the resampled difference at 0).
  With more than ``BOOTSTRAP_MAX_N`` values in both arms the intervals (and the quantiles'
  p-values) come from normal approximations instead: Welch's standard error for means, order-statistic
  standard errors for quantiles (Deng et al., 2018) — the bootstrap's answer at that size, at a
  thousandth of the cost.
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


def _bootstrap_stats(values: np.ndarray, statistic: str, quantile: float, rng: np.random.Generator,
                     resamples: int) -> np.ndarray:
    """``resamples`` values of the statistic on resamples (with replacement) of ``values``."""
    n = len(values)
    out = np.empty(resamples)
    chunk = max(1, min(resamples, _BOOTSTRAP_CHUNK_VALUES // max(n, 1)))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        sample = values[rng.integers(0, n, size=(k, n))]
        if statistic == "mean":
            out[start:start + k] = sample.mean(axis=1)
        else:
            out[start:start + k] = np.quantile(sample, quantile, axis=1)
    return out


def bootstrap_difference(control: Sequence[float] | np.ndarray, treatment: Sequence[float] | np.ndarray, *,
                         statistic: str = "mean", quantile: float = 0.5, alpha: float = DEFAULT_ALPHA,
                         resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Treatment − control of a mean or a quantile: percentile bootstrap interval; p-value from the
    bootstrap for quantiles, Mann–Whitney for means (see the module docstring)."""
    if statistic not in ("mean", "quantile"):
        raise ValueError(f"statistic must be 'mean' or 'quantile', not {statistic!r}")
    a = np.asarray(control, dtype=float)
    b = np.asarray(treatment, dtype=float)
    if len(a) == 0 or len(b) == 0:
        nan = math.nan
        return Estimate(nan, nan, nan, nan, nan, 1.0, math.inf)

    def point(x: np.ndarray) -> float:
        return float(x.mean()) if statistic == "mean" else float(np.quantile(x, quantile))

    c, t = point(a), point(b)
    if min(len(a), len(b)) > BOOTSTRAP_MAX_N:
        return _large_sample_difference(a, b, c, t, statistic, quantile, alpha)
    rng = np.random.default_rng(seed)
    diffs = _bootstrap_stats(b, statistic, quantile, rng, resamples) - _bootstrap_stats(a, statistic, quantile, rng,
                                                                                       resamples)
    low, high = (float(v) for v in np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))
    se = float(diffs.std(ddof=1))
    if statistic == "mean":
        p_value = mann_whitney_p(a, b)
    else:
        below = (np.count_nonzero(diffs < 0) + 0.5 * np.count_nonzero(diffs == 0)) / resamples
        # a bootstrap cannot resolve p below 1 / resamples: report that bound, never 0
        p_value = min(1.0, max(1.0 / resamples, 2.0 * min(below, 1.0 - below)))
    return Estimate(c, t, t - c, low, high, p_value, se)


def quantile_standard_error(values: np.ndarray, quantile: float) -> float:
    """Large-sample standard error of a sample quantile from the order statistics around it: the
    distribution-free 95 % interval (ranks n·q ± 1.96·sqrt(n·q·(1 − q))) divided by 2 × 1.96
    (Deng, Knoblich & Lu, "Applying the delta method in metric analytics", KDD 2018)."""
    n = len(values)
    z = z_quantile(0.975)
    half = z * math.sqrt(n * quantile * (1 - quantile))
    lo = int(max(0, math.floor(n * quantile - half)))
    hi = int(min(n - 1, math.ceil(n * quantile + half)))
    part = np.partition(values, (lo, hi))
    return float(part[hi] - part[lo]) / (2 * z)


def _large_sample_difference(a: np.ndarray, b: np.ndarray, c: float, t: float, statistic: str, quantile: float,
                             alpha: float) -> Estimate:
    """Above ``BOOTSTRAP_MAX_N`` values per arm the normal approximation is as good as the
    bootstrap and costs one pass instead of thousands: Welch standard error for means, order-statistic
    standard errors for quantiles."""
    if statistic == "mean":
        se = math.sqrt(float(a.var(ddof=1)) / len(a) + float(b.var(ddof=1)) / len(b))
    else:
        se = math.hypot(quantile_standard_error(a, quantile), quantile_standard_error(b, quantile))
    diff = t - c
    z = z_quantile(1 - alpha / 2)
    if statistic == "mean":
        p_value = mann_whitney_p(a, b)
    else:
        p_value = 1.0 if se == 0 else normal_two_sided_p(diff / se)
    return Estimate(c, t, diff, diff - z * se, diff + z * se, p_value, se)


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
