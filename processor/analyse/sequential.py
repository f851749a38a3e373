"""Always-valid inference for a difference of two means: the normal-mixture SPRT (mSPRT).

Why: a live experiment is looked at every window. A fixed-horizon p-value checked every minute
crosses 0.05 by chance far more often than 5 % of the time; the mSPRT's p-value does not (Johari,
Koomen, Pekelis & Walsh, "Peeking at A/B tests", KDD 2017; the normal-mixture boundary of Howard,
Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
Annals of Statistics 2021).

With θ̂ = mean(treatment) − mean(control) and V its variance (σ²_t / n_t + σ²_c / n_c, plug-in
estimates), the likelihood ratio of "θ ~ N(θ0, τ²)" against "θ = θ0" is

    Λ = sqrt(V / (V + τ²)) · exp((θ̂ − θ0)² τ² / (2 V (V + τ²)))

— the ratio of the normal densities N(θ̂; θ0, V + τ²) / N(θ̂; θ0, V). By Ville's inequality Λ
exceeds 1/α with probability at most α *ever*, so ``p_n = min(p_{n−1}, 1/Λ_n)`` is an always-valid
p-value and {θ0 : Λ(θ0) < 1/α} a confidence sequence: θ̂ ± sqrt(V (V + τ²) / τ² · (2 ln(1/α) +
ln((V + τ²) / V))). τ, the mixing scale, sets where the test is most powerful; we take it as
``MIXING_SD`` per-call standard deviations (a fifth of the spread of one call: the size of the
effects an LLM swap tends to have on latency, cost and error rates).

Assumptions: calls independent; the means approximately normal (the central limit theorem: hence
``min_samples`` per arm before any decision); the plug-in variance close to the true one. Heavy
tails slow the normal approximation down — raise ``min_samples`` for very skewed metrics.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

MIXING_SD = 0.2  # τ in units of the pooled per-call standard deviation


class Moments:
    """Count, mean and sum of squared deviations, merged batch by batch (Chan et al.)."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self, n: int = 0, mean: float = 0.0, m2: float = 0.0):
        self.n = n
        self.mean = mean
        self.m2 = m2

    def add_batch(self, values: list[float]) -> None:
        if not values:
            return
        x = np.asarray(values, dtype=float)
        nb = len(x)
        mb = float(x.mean())
        m2b = float(((x - mb) ** 2).sum())
        n = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * self.n * nb / n
        self.n = n

    @property
    def variance(self) -> float:
        """Unbiased sample variance (0 below two values)."""
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    def to_list(self) -> list[float]:
        return [self.n, self.mean, self.m2]

    @classmethod
    def from_list(cls, data: list[float]) -> Moments:
        n, mean, m2 = data
        return cls(int(n), float(mean), float(m2))


class SequentialResult(NamedTuple):
    estimate: float
    low: float
    high: float
    p_value: float  # of this look alone; callers keep the running minimum


def mixture_likelihood_ratio(estimate: float, variance: float, tau2: float, null: float = 0.0) -> float:
    """Λ for the difference ``estimate`` with variance ``variance`` against θ = ``null``."""
    exponent = (estimate - null) ** 2 * tau2 / (2.0 * variance * (variance + tau2))
    log_lr = 0.5 * math.log(variance / (variance + tau2)) + exponent
    return math.exp(min(log_lr, 700.0))  # beyond e^700 the p-value is 0 to double precision anyway


def half_width(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the (1 − alpha) confidence sequence at this look."""
    return math.sqrt(variance * (variance + tau2) / tau2 * (2.0 * math.log(1.0 / alpha)
                                                           + math.log((variance + tau2) / variance)))


def mixing_variance(control: Moments, treatment: Moments, mixing_sd: float = MIXING_SD) -> float:
    """τ²: ``mixing_sd`` pooled per-call standard deviations, squared."""
    pooled = 0.5 * (control.variance + treatment.variance)
    return (mixing_sd * mixing_sd) * pooled


def difference(control: Moments, treatment: Moments, alpha: float, *, scale: float = 1.0,
               mixing_sd: float = MIXING_SD) -> SequentialResult | None:
    """Always-valid look at ``treatment.mean − scale × control.mean`` (``scale`` = 1 + max_relative
    for a guardrail). None below two values per arm or with no variance at all."""
    if control.n < 2 or treatment.n < 2:
        return None
    estimate = treatment.mean - scale * control.mean
    variance = treatment.variance / treatment.n + scale * scale * control.variance / control.n
    tau2 = mixing_variance(control, treatment, mixing_sd)
    if not variance > 0 or not tau2 > 0:
        return None
    lr = mixture_likelihood_ratio(estimate, variance, tau2)
    w = half_width(variance, tau2, alpha)
    return SequentialResult(estimate, estimate - w, estimate + w, min(1.0, 1.0 / lr))
