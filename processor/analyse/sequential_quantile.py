"""Always-valid inference for a difference of two quantiles (live ``latency_p50_s`` / ``latency_p95_s``).

Why not the mSPRT of :mod:`.sequential`: a quantile is not a mean, and the normal approximation of
a sample p95 needs far more calls than a mean's. Instead each arm gets a **confidence sequence for
its own q-quantile** ξ (Howard & Ramdas, "Sequential estimation of quantiles with applications to
A/B-testing and best-arm identification", Bernoulli 2022), and the two are combined:

* For the true quantile ξ of a continuous distribution, the indicators 1{X_i ≤ ξ} are
  Bernoulli(q) whatever the distribution. With k_n(x) = #{X_i ≤ x} among the first n calls, the
  beta-binomial mixture of likelihood ratios against p = q,

      M_n(k) = B(a + k, b + n − k) / B(a, b) / (q^k (1 − q)^(n − k)),   a = m·q, b = m·(1 − q),

  is a nonnegative martingale with mean 1 (Robbins' mixture), so by Ville's inequality
  P(∃ n: M_n(k_n(ξ)) ≥ 1/α) ≤ α — exactly, for every n, with no normal approximation. The ranks k
  with M_n(k) < 1/α form an interval [k_lo, k_hi] (log M_n is convex in k); ξ lies in
  [x_(k_lo), x_(k_hi + 1)) at every n simultaneously with probability ≥ 1 − α.
* m (the prior's strength) is 1/``QUANTILE_MIXING_SD``² − 1: the prior sd of the share of calls
  below ξ is 0.1 of a Bernoulli(q)'s sd. That is where the test is most powerful: a p95 20 %
  higher moves that share by about 0.1 sd for lognormal latencies (half the mean metrics' 0.2,
  tuned on such streams; any m > 0 keeps the guarantee).
* Difference (treatment − control): both arms' sequences at α/2 (a union bound), so
  [L_t − s·U_c, U_t − s·L_c] covers ξ_t − s·ξ_c at every look with probability ≥ 1 − α
  (s = 1 + max_relative for a guardrail). The always-valid p-value is the smallest α at which that
  interval excludes 0 (found by bisection on log α): it crosses α with probability ≤ α however
  often it is looked at.

Bounded memory: each arm keeps a :class:`LogHistogram` of its values (log-spaced buckets, 1 %
wide from 1 µs to 10⁶ s: at most ``MAX_BUCKETS`` (≈ 2,800) counters whatever the number of calls,
a few hundred for real latencies) instead of the values. A rank is then only known to fall in a
bucket; the bounds take the bucket's outer edge (the lower edge for L, the upper for U), so the
sequence is *wider* by at most one bucket (1 %) on each side and stays valid — the sketch costs
power, never the false-positive rate. The point estimate is the bucket's midpoint (within 0.5 %
of the sample quantile).

Assumptions: calls independent and identically distributed within an arm; the distribution
continuous at the quantile (latencies are). The null tested is "equal quantiles", not "equal
distributions": a treatment with another shape but the same p95 is not flagged. The union bound
and the sketch make it conservative: on A/A streams the false-positive rate is well below alpha.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from gensight.processor.analyse.sequential import SequentialResult

QUANTILE_MIXING_SD = 0.1  # prior sd of the share below ξ, in Bernoulli(q) sds (module docstring)

BUCKET_GROWTH = 1.01  # bucket edges γ^k: each bucket 1 % wide
MIN_VALUE = 1e-6  # values at or below go to the zero bucket [0, MIN_VALUE]
MAX_VALUE = 1e6  # values above go to the top bucket, whose upper edge is +inf
_LOG_GROWTH = math.log(BUCKET_GROWTH)
_KEY_MIN = math.ceil(math.log(MIN_VALUE) / _LOG_GROWTH)  # the zero bucket's key: (0, γ^_KEY_MIN]
_KEY_MAX = math.ceil(math.log(MAX_VALUE) / _LOG_GROWTH) + 1  # the top bucket: (γ^(_KEY_MAX - 1), inf)
MAX_BUCKETS = _KEY_MAX - _KEY_MIN + 1
P_VALUE_FLOOR = 1e-10  # p-values are reported down to here
_P_STEPS = 16  # bisection steps on log alpha: the p-value to within 0.05 % of itself


class LogHistogram:
    """Counts of non-negative values in log-spaced buckets (bounded: ≤ ``MAX_BUCKETS`` keys)."""

    __slots__ = ("counts", "n", "_cum")

    def __init__(self, counts: dict[int, int] | None = None):
        self.counts: dict[int, int] = dict(counts or {})
        self.n = sum(self.counts.values())
        self._cum: tuple[np.ndarray, np.ndarray] | None = None

    def add_batch(self, values: list[float]) -> None:
        if not values:
            return
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        keys = np.full(len(x), _KEY_MIN, dtype=np.int64)
        pos = x > MIN_VALUE
        keys[pos] = np.ceil(np.log(x[pos]) / _LOG_GROWTH)
        np.clip(keys, _KEY_MIN, _KEY_MAX, out=keys)
        uniq, cnt = np.unique(keys, return_counts=True)
        counts = self.counts
        for k, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
            counts[k] = counts.get(k, 0) + c
        self.n += len(x)
        self._cum = None

    def _cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cum is None:
            keys = np.array(sorted(self.counts), dtype=np.int64)
            self._cum = (keys, np.cumsum([self.counts[k] for k in keys.tolist()], dtype=np.int64))
        return self._cum

    def _key_of_rank(self, rank: int) -> int:
        """Key of the bucket holding the ``rank``-th smallest value (1-based, ≤ n)."""
        keys, cum = self._cumulative()
        return int(keys[int(np.searchsorted(cum, rank, side="left"))])

    def rank_bounds(self, rank_lo: int, rank_hi: int) -> tuple[float, float]:
        """(a value ≤ x_(rank_lo), a value ≥ x_(rank_hi)); ranks outside 1..n give 0 / +inf."""
        low = 0.0 if rank_lo < 1 else lower_edge(self._key_of_rank(rank_lo))
        high = math.inf if rank_hi > self.n else upper_edge(self._key_of_rank(rank_hi))
        return low, high

    def quantile(self, q: float) -> float:
        """The sample q-quantile to within one bucket (its midpoint); nan when empty."""
        if self.n == 0:
            return math.nan
        key = self._key_of_rank(max(1, math.ceil(q * self.n)))
        if key == _KEY_MIN:
            return 0.0
        if key == _KEY_MAX:
            return lower_edge(key)
        return 2.0 * BUCKET_GROWTH ** key / (1.0 + BUCKET_GROWTH)

    def to_list(self) -> list[list[int]]:
        return [[k, c] for k, c in sorted(self.counts.items())]

    @classmethod
    def from_list(cls, data: list[list[int]]) -> LogHistogram:
        return cls({int(k): int(c) for k, c in data if _KEY_MIN <= int(k) <= _KEY_MAX and int(c) > 0})


def lower_edge(key: int) -> float:
    return 0.0 if key <= _KEY_MIN else BUCKET_GROWTH ** (key - 1)


def upper_edge(key: int) -> float:
    return math.inf if key >= _KEY_MAX else BUCKET_GROWTH ** key


class _Mixture(NamedTuple):
    """log M_n(k) of the module docstring for one (n, q): evaluated at integer ranks k."""

    n: int
    q: float
    a: float
    b: float

    @classmethod
    def of(cls, n: int, q: float, mixing_sd: float = QUANTILE_MIXING_SD) -> _Mixture:
        m = 1.0 / (mixing_sd * mixing_sd) - 1.0
        return cls(n, q, m * q, m * (1.0 - q))

    def log_m(self, k: int) -> float:
        n, q, a, b = self
        return (_lbeta(a + k, b + n - k) - _lbeta(a, b) - k * math.log(q) - (n - k) * math.log1p(-q))

    def argmin(self) -> int:
        """The rank minimising log M (convex: the first k whose forward difference is ≥ 0)."""
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi) // 2
            if self.log_m(mid + 1) - self.log_m(mid) >= 0:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def accepted(self, alpha: float, k_min: int) -> tuple[int, int]:
        """[k_lo, k_hi]: the ranks with M_n(k) < 1/alpha (``k_min``: the argmin)."""
        threshold = math.log(1.0 / alpha)
        lo, hi = 0, k_min  # first k in [0, k_min] below the threshold (log M falls on the left)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.log_m(mid) < threshold:
                hi = mid
            else:
                lo = mid + 1
        k_lo = lo
        lo, hi = k_min, self.n  # last k in [k_min, n] below the threshold (log M rises on the right)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.log_m(mid) < threshold:
                lo = mid
            else:
                hi = mid - 1
        return k_lo, lo


def _lbeta(x: float, y: float) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


class _Arm:
    """One arm's histogram with its mixture (the argmin is computed once per look)."""

    def __init__(self, hist: LogHistogram, q: float, mixing_sd: float):
        self.hist = hist
        self.mixture = _Mixture.of(hist.n, q, mixing_sd)
        self.k_min = self.mixture.argmin()

    def bounds(self, alpha: float) -> tuple[float, float]:
        """(L, U): the arm's (1 − alpha) confidence sequence for its quantile at this look."""
        k_lo, k_hi = self.mixture.accepted(alpha, self.k_min)
        return self.hist.rank_bounds(k_lo, k_hi + 1)


def quantile_confidence_sequence(hist: LogHistogram, q: float, alpha: float,
                                 mixing_sd: float = QUANTILE_MIXING_SD) -> tuple[float, float]:
    """(L, U) of one arm's (1 − alpha) confidence sequence for its q-quantile at this look."""
    return _Arm(hist, q, mixing_sd).bounds(alpha)


def quantile_difference(control: LogHistogram, treatment: LogHistogram, q: float, alpha: float, *,
                        scale: float = 1.0, mixing_sd: float = QUANTILE_MIXING_SD) -> SequentialResult | None:
    """Always-valid look at ξ_t − scale·ξ_c (module docstring). None below two values per arm or
    while a bound of either arm's sequence is still unbounded (too few calls for this q)."""
    if control.n < 2 or treatment.n < 2:
        return None
    c, t = _Arm(control, q, mixing_sd), _Arm(treatment, q, mixing_sd)

    def interval(a: float) -> tuple[float, float]:
        lc, uc = c.bounds(a / 2)
        lt, ut = t.bounds(a / 2)
        return lt - scale * uc, ut - scale * lc

    low, high = interval(alpha)
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    estimate = treatment.quantile(q) - scale * control.quantile(q)
    return SequentialResult(estimate, low, high, _p_value(interval))


def _p_value(interval: object) -> float:
    """The smallest alpha whose interval excludes 0 (intervals shrink as alpha grows)."""
    def excludes(a: float) -> bool:
        lo, hi = interval(a)  # type: ignore[operator]
        return bool(lo > 0 or hi < 0)

    if not excludes(1.0):
        return 1.0
    if excludes(P_VALUE_FLOOR):
        return P_VALUE_FLOOR
    lo, hi = math.log(P_VALUE_FLOOR), 0.0  # excludes(exp(hi)) holds, excludes(exp(lo)) does not
    for _ in range(_P_STEPS):
        mid = 0.5 * (lo + hi)
        if excludes(math.exp(mid)):
            hi = mid
        else:
            lo = mid
    return math.exp(hi)
