"""Per-signal evidence for the anomaly and drift analysers: p-values from exact tests, CUSUM.

Why: a threshold means something only when the probability that normal traffic crosses it is
known. Every test here returns the log of a *valid* p-value (``P(p <= x) <= x`` under the null,
discreteness only makes it conservative), so one accumulator and one threshold serve every signal.

* Counts against a rate (errors in n calls, window values over a reference quantile, calls of a
  category): the binomial upper tail at an upper bound of the rate. The rate is known only
  through a reference sample, and every window is tested against the *same* sample, so its
  error does not average out across windows: a reference whose 0.9-quantile came out low makes
  every window look a little high, and accumulated evidence would add that up. So each test uses
  the upper ``confidence`` (0.999) bound of the rate given the reference: for ``k`` errors among
  ``N`` reference calls and a ``Beta(a0, b0)`` prior the rate is ``Beta(a0 + k, b0 + N - k)``; for
  the ``j``-th smallest of ``N`` reference values ``x_(j)``, ``P(X > x_(j))`` is
  ``Beta(N - j + 1, j)`` whatever the distribution (ties only lower it). With probability 0.999
  the reference is not the problem, and then the p-values are valid window after window.
* Two samples binned the same way (drift): Pearson's chi-square on the 2 x B table.
* Accumulation: a CUSUM on ``e = -ln p`` per signal, ``S = max(0, S + e - k)``. Under the null
  ``e`` is stochastically at most Exp(1), and for Exp(1) increments the recursion is the waiting
  time of a D/M/1 queue, whose stationary tail is exact (:func:`cusum_tail`), so the threshold
  ``h`` for a per-window exceedance probability ``alpha`` is closed-form (:func:`cusum_threshold`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

LOG_FLOOR = -700.0  # ln of the smallest p reported (exp underflows below ~-745)
# CUSUM drift allowance k: the evidence a window must bring (in nats) before it adds up. 2 nats =
# a window at p < 0.135 adds; normal windows (mean e = 1) drain the sum by about 1 a window.
DEFAULT_CUSUM_K = 2.0


def betabinom_logsf(k: int, n: int, a: float, b: float) -> float:
    """``ln P(K >= k)`` for ``K ~ BetaBinomial(n, a, b)`` (equals
    ``scipy.stats.betabinom.logsf(k - 1, n, a, b)``). Summed from the pmf with its term ratio:
    the upper tail from ``k`` when ``k`` is above the mean (few terms, geometric decay), else one
    minus the lower tail."""
    if k <= 0:
        return 0.0
    if k > n:
        return LOG_FLOOR
    mean = n * a / (a + b)
    if k > mean:
        logpmf = _betabinom_logpmf(k, n, a, b)
        total, term, j = 1.0, 1.0, k
        while j < n:
            term *= (n - j) / (j + 1) * (j + a) / (n - j - 1 + b)
            total += term
            j += 1
            if term < 1e-17 * total:
                break
        return max(LOG_FLOOR, logpmf + math.log(total))
    # lower tail P(K <= k - 1), summed upwards from 0
    term = math.exp(_betabinom_logpmf(0, n, a, b))
    cdf = term
    for j in range(k - 1):
        term *= (n - j) / (j + 1) * (j + a) / (n - j - 1 + b)
        cdf += term
    return math.log1p(-min(cdf, 1.0 - 1e-16))


def _betabinom_logpmf(k: int, n: int, a: float, b: float) -> float:
    lg = math.lgamma
    return (lg(n + 1) - lg(k + 1) - lg(n - k + 1) + lg(k + a) + lg(n - k + b) - lg(n + a + b)
            + lg(a + b) - lg(a) - lg(b))


def binom_logsf(k: int, n: int, p: float) -> float:
    """``ln P(K >= k)`` for ``K ~ Binomial(n, p)`` (``scipy.stats.binom.logsf(k - 1, n, p)``, kept
    accurate in the far tail), summed from the pmf with its term ratio like ``betabinom_logsf``."""
    if k <= 0 or p >= 1:
        return 0.0
    if k > n or p <= 0:
        return LOG_FLOOR
    odds = p / (1 - p)
    if k > n * p:
        logpmf = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) \
            + (n - k) * math.log1p(-p)
        total, term, j = 1.0, 1.0, k
        while j < n:
            term *= (n - j) / (j + 1) * odds
            total += term
            j += 1
            if term < 1e-17 * total:
                break
        return max(LOG_FLOOR, logpmf + math.log(total))
    term = math.exp(n * math.log1p(-p))
    cdf = term
    for j in range(k - 1):
        term *= (n - j) / (j + 1) * odds
        cdf += term
    return math.log1p(-min(cdf, 1.0 - 1e-16))


@lru_cache(maxsize=4096)
def upper_rate(a: float, b: float, confidence: float) -> float:
    """The ``confidence`` quantile of ``Beta(a, b)``: a rate the reference's true rate exceeds with
    probability ``1 - confidence`` only (cached: order statistics of same-size references repeat)."""
    from scipy.special import betaincinv

    return float(betaincinv(a, b, confidence))


def _rise_logp(k: int, n: int, a: float, b: float, confidence: float) -> float:
    """``ln p`` of ``k`` of ``n`` at the upper bound of a ``Beta(a, b)`` rate; 0 (p = 1, always
    valid) without computing the bound when ``k`` is unremarkable."""
    total = a + b
    mean = a / total
    # cheap pre-filter: the Beta's mean + 3 standard deviations is about its 0.999 quantile; a
    # count at or under it gives p >= ~0.4, where returning 1 costs no power (the CUSUM's
    # allowance k = 2 ignores e < 1) and stays valid
    if k <= 0 or k <= n * (mean + 3.0 * math.sqrt(mean * (1 - mean) / (total + 1))):
        return 0.0
    return binom_logsf(k, n, upper_rate(a, b, confidence))


def rate_logp(k: int, n: int, ref_k: float, ref_n: float, prior: tuple[float, float], confidence: float) -> float:
    """``ln p`` of ``k`` or more events in ``n`` trials against the upper ``confidence`` bound of
    the reference rate (``ref_k`` events in ``ref_n`` trials, ``Beta(prior)`` prior, so a reference
    with no errors does not make one error impossible)."""
    a0, b0 = prior
    return _rise_logp(k, n, a0 + ref_k, b0 + max(ref_n - ref_k, 0.0), confidence)


def exceedance_logp(values: Sequence[float], ref_sorted: np.ndarray, q: float, upper: bool,
                    confidence: float) -> tuple[float, float]:
    """``(ln p, threshold)``: how surprising the number of ``values`` above (``upper``) or below
    the reference's ``q``-quantile order statistic is, against the upper ``confidence`` bound of
    the exceedance probability that order statistic has for any continuous distribution (see the
    module docstring). ``ref_sorted`` must be sorted and non-empty."""
    big_n = len(ref_sorted)
    if upper:
        j = min(big_n, max(1, math.ceil(q * (big_n + 1))))
        t = float(ref_sorted[j - 1])
        k = sum(1 for v in values if v > t)
        a, b = big_n - j + 1, j
    else:
        j = min(big_n, max(1, math.floor(q * (big_n + 1))))
        t = float(ref_sorted[j - 1])
        k = sum(1 for v in values if v < t)
        a, b = j, big_n - j + 1
    return _rise_logp(k, len(values), a, b, confidence), t


def category_logp(window: Mapping[str, int], reference: Mapping[str, float], confidence: float,
                  prior: float = 0.5) -> tuple[float, str]:
    """``(ln p, category)``: the most over-represented category of a window against a reference
    mix, each category's count tested for a rise against the upper ``confidence`` bound of its
    share (reference counts + a symmetric Dirichlet ``prior``; categories the reference never saw
    share one ``_new`` cell), Bonferroni-adjusted by the number of cells. Exact at any traffic (a
    chi-square needs about five expected calls per cell; a 1 % category needs 500 calls a window)."""
    ref_n = float(sum(reference.values()))
    cells = len(reference) + 1
    n = sum(window.values())
    new = sum(c for cat, c in window.items() if cat not in reference)
    alpha_total = ref_n + prior * cells
    best, best_cat = 0.0, ""
    for cat, k in [*((c, k) for c, k in window.items() if c in reference), ("_new", new)]:
        if k <= 0:
            continue
        a = (reference.get(cat, 0.0) if cat != "_new" else 0.0) + prior
        lp = _rise_logp(k, n, a, alpha_total - a, confidence)
        if lp < best:
            best, best_cat = lp, cat
    return min(0.0, best + math.log(cells)), best_cat


def chi2_two_sample(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, int]:
    """Pearson's chi-square statistic and degrees of freedom of the 2 x B table (reference
    counts, current counts) — ``scipy.stats.chi2_contingency(..., correction=False)`` on the
    columns with any count."""
    r = np.asarray(ref_counts, dtype=float)
    c = np.asarray(cur_counts, dtype=float)
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    big_n, n = r.sum(), c.sum()
    if big_n <= 0 or n <= 0 or len(r) < 2:
        return 0.0, 0
    stat = float(np.sum((r * n - c * big_n) ** 2 / (r + c)) / (n * big_n))
    return stat, len(r) - 1


def chi2_logsf(stat: float, df: int) -> float:
    """``ln P(X >= stat)`` for ``X ~ chi2(df)``."""
    if df <= 0 or stat <= 0:
        return 0.0
    from scipy.special import chdtrc

    p = float(chdtrc(df, stat))
    return max(LOG_FLOOR, math.log(p)) if p > 0 else LOG_FLOOR


# -- accumulation and calibration -----------------------------------------------------------------

def _sigma(k: float) -> float:
    """The root in (0, 1) of ``sigma = exp(-k (1 - sigma))`` (exists for k > 1)."""
    s = 0.5
    for _ in range(200):
        s = math.exp(-k * (1.0 - s))
    return s


def cusum_tail(h: float, k: float = DEFAULT_CUSUM_K) -> float:
    """Stationary ``P(S >= h)`` of ``S = max(0, S + e - k)`` with ``e ~ Exp(1)``: the D/M/1 waiting
    time ``sigma * exp(-(1 - sigma) h)``. An upper bound for any valid p-values' ``e = -ln p``."""
    s = _sigma(k)
    return s * math.exp(-(1.0 - s) * h)


def cusum_threshold(alpha: float, k: float = DEFAULT_CUSUM_K) -> float:
    """The smallest ``h`` with ``cusum_tail(h, k) <= alpha``."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if k <= 1:
        raise ValueError(f"the CUSUM allowance k must be > 1 (null mean of -ln p is 1), got {k}")
    s = _sigma(k)
    return max(0.0, math.log(s / alpha) / (1.0 - s))


def per_window_alpha(false_alarms_per_day: float, window_s: float, tests: int) -> float:
    """The per-window, per-test level that keeps ``false_alarms_per_day`` per series (Bonferroni
    over ``tests`` signals and ``86400 / window_s`` windows a day)."""
    return false_alarms_per_day / ((86400.0 / window_s) * max(1, tests))


def evidence_score(s: float, h: float, at_h: float = 0.7) -> float:
    """Map accumulated evidence to [0, 1], monotone, with ``s = h`` exactly at ``at_h``:
    ``1 - (1 - at_h) ** (s / h)``; s = 0 -> 0, s = h -> 0.7, s = 2h -> 0.91."""
    if s <= 0 or h <= 0:
        return 0.0
    return 1.0 - (1.0 - at_h) ** (s / h)


def conformal_logp(score: float, history: Sequence[float]) -> float:
    """``ln p`` of ``score`` by its rank among ``history`` (scores of normal windows; higher =
    more abnormal): ``(1 + #{h >= score}) / (1 + len(history))`` — valid for exchangeable scores."""
    ge = sum(1 for x in history if x >= score)
    return math.log((1 + ge) / (1 + len(history)))


# -- likelihood-ratio CUSUM for counts ------------------------------------------------------------
# Why: a CUSUM on -ln p with a 2-nat allowance discards most of what a few counts say (2 errors
# where 0.2 were expected: p ~ 0.02, 4 nats, 2 of them eaten by the allowance; the likelihood
# ratio against "the rate is now 5 %" is worth the same 4 nats with nothing taken off but the
# expected count's rise). Page's CUSUM on the per-window log-likelihood ratio is the optimal
# sequential detector of a shift to a stated alternative (Lorden), and its false-alarm rate needs no
# distribution theory: under any rate <= r0, E[exp(LLR)] <= 1, so exp(S) is dominated by a
# non-negative supermartingale and P(S >= h) <= exp(-h) in every window (Ville's inequality; the
# average run length to a false alarm is >= exp(h)).
# The bank of alternatives (rate factor, least absolute rise): each is the target of one CUSUM —
# a modest rise (0.5 % -> ~5 %), a burst (-> ~12 %), a storm (-> ~30 %); the threshold is
# Bonferroni-adjusted for the bank.
LR_ALTERNATIVES: tuple[tuple[float, float], ...] = ((4.0, 0.04), (15.0, 0.12), (50.0, 0.30))
MAX_ALT_RATE = 0.99


def rate_alternatives(r0: float) -> list[float]:
    """The alternative rates the bank tests ``r0`` against: ``max(f r0, r0 + d)``, capped below 1."""
    return [min(MAX_ALT_RATE, max(f * r0, r0 + d)) for f, d in LR_ALTERNATIVES]


def binom_llr(k: int, n: int, r0: float, r1: float) -> float:
    """``ln L1/L0`` of ``k`` events in ``n`` trials, rate ``r1`` against ``r0`` (equals
    ``scipy.stats.binom.logpmf(k, n, r1) - binom.logpmf(k, n, r0)``)."""
    if n <= 0:
        return 0.0
    return k * math.log(r1 / r0) + (n - k) * (math.log1p(-r1) - math.log1p(-r0))


def llr_cusum_threshold(alpha: float) -> float:
    """``h`` with ``P(S >= h) <= alpha`` per window for a CUSUM on log-likelihood ratios whose
    null expectation of ``exp(LLR)`` is at most 1: ``ln(1 / alpha)`` (Ville's inequality)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return math.log(1.0 / alpha)
