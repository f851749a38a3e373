"""Drift's frozen references and distances: quantile bins, PSI, KS, Wasserstein, Jensen–Shannon.

Why apart from the analyser: these are pure functions and small value objects over numpy arrays,
checked against ``scipy.stats`` on their own; :mod:`gensight.processor.analyse.drift` keeps the
per-series lifecycle (learning, frozen, scoring windows, alerts).
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

OTHER_CATEGORY = "_other"  # categories outside the reference's top ones
LEARNING = "learning"  # a reference still collecting its sample
FROZEN = "frozen"  # a reference whose bins are fixed


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Interior bin edges at the reference quantiles, de-duplicated (ties collapse bins)."""
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin i holds [edge[i-1], edge[i]); bin 0 and bin len(edges) are open-ended."""
    return np.searchsorted(edges, values, side="right")


def psi(ref_p: np.ndarray, cur_p: np.ndarray, floor: float = 1e-4) -> float:
    r = np.maximum(ref_p, floor)
    c = np.maximum(cur_p, floor)
    return float(np.sum((c - r) * np.log(c / r)))


def ks_binned(ref_p: np.ndarray, cur_p: np.ndarray) -> float:
    return float(np.max(np.abs(np.cumsum(ref_p) - np.cumsum(cur_p))))


def wasserstein_binned(ref_p: np.ndarray, ref_x: np.ndarray, cur_p: np.ndarray, cur_x: np.ndarray) -> float:
    """W1 between two discrete distributions (mass ``p`` at positions ``x``)."""
    x = np.concatenate([ref_x, cur_x])
    w = np.concatenate([ref_p, -cur_p])
    order = np.argsort(x, kind="stable")
    xs, cum = x[order], np.cumsum(w[order])
    return float(np.sum(np.abs(cum[:-1]) * np.diff(xs)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance, base 2 (0 = same mix, 1 = disjoint)."""
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return math.sqrt(max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


# -- references -------------------------------------------------------------------------------

class NumericRef:
    __slots__ = ("status", "pinned", "sample", "first_ns", "edges", "probs", "means", "std", "n")

    def __init__(self) -> None:
        self.status = LEARNING
        self.pinned = False
        self.sample: array[float] = array("d")  # 8 bytes a value while learning
        self.first_ns: int | None = None
        self.edges = np.zeros(0)
        self.probs = np.zeros(0)
        self.means = np.zeros(0)
        self.std = 0.0
        self.n = 0

    def freeze(self, bins: int) -> None:
        v = np.asarray(self.sample, dtype=float)
        self.edges = quantile_edges(v, bins)
        idx = bin_index(self.edges, v)
        k = len(self.edges) + 1
        counts = np.bincount(idx, minlength=k).astype(float)
        sums = np.bincount(idx, weights=v, minlength=k)
        self.probs = counts / counts.sum()
        self.means = np.where(counts > 0, sums / np.maximum(counts, 1), _bin_mids(self.edges))
        self.std = float(v.std())
        self.n = len(v)
        self.status = FROZEN
        self.sample = array("d")

    def to_json(self) -> dict[str, Any]:
        if self.status == LEARNING:
            return {"status": LEARNING, "pinned": self.pinned, "sample": self.sample.tolist(), "first_ns": self.first_ns}
        return {"status": FROZEN, "pinned": self.pinned, "edges": self.edges.tolist(), "probs": self.probs.tolist(),
                "means": self.means.tolist(), "std": self.std, "n": self.n}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NumericRef:
        r = cls()
        r.status, r.pinned = d["status"], bool(d.get("pinned", False))
        if r.status == LEARNING:
            r.sample, r.first_ns = array("d", (float(x) for x in d["sample"])), d.get("first_ns")
        else:
            r.edges, r.probs, r.means = (np.asarray(d[k], dtype=float) for k in ("edges", "probs", "means"))
            r.std, r.n = float(d["std"]), int(d["n"])
        return r


def _bin_mids(edges: np.ndarray) -> np.ndarray:
    if len(edges) == 0:
        return np.zeros(1)
    inner = (edges[:-1] + edges[1:]) / 2 if len(edges) > 1 else np.zeros(0)
    return np.concatenate([[edges[0]], inner, [edges[-1]]])


class CategoricalRef:
    __slots__ = ("status", "pinned", "counts", "first_ns", "n", "cats", "probs")

    def __init__(self) -> None:
        self.status = LEARNING
        self.pinned = False
        self.counts: Counter[str] = Counter()
        self.first_ns: int | None = None
        self.n = 0
        self.cats: list[str] = []
        self.probs = np.zeros(0)

    def freeze(self, max_categories: int) -> None:
        top = self.counts.most_common(max_categories)
        self.cats = [c for c, _ in top] + [OTHER_CATEGORY]
        other = self.n - sum(n for _, n in top)
        arr = np.asarray([n for _, n in top] + [other], dtype=float)
        self.probs = arr / arr.sum()
        self.status = FROZEN
        self.counts = Counter()

    def vector(self, counts: Mapping[str, int]) -> np.ndarray:
        pos = {c: i for i, c in enumerate(self.cats)}
        out = np.zeros(len(self.cats))
        for c, n in counts.items():
            out[pos.get(c, len(self.cats) - 1)] += n
        return out

    def to_json(self) -> dict[str, Any]:
        if self.status == LEARNING:
            return {"status": LEARNING, "pinned": self.pinned, "counts": dict(self.counts), "n": self.n,
                    "first_ns": self.first_ns}
        return {"status": FROZEN, "pinned": self.pinned, "cats": self.cats, "probs": self.probs.tolist(), "n": self.n}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CategoricalRef:
        r = cls()
        r.status, r.pinned, r.n = d["status"], bool(d.get("pinned", False)), int(d.get("n", 0))
        if r.status == LEARNING:
            r.counts, r.first_ns = Counter({str(k): int(v) for k, v in d["counts"].items()}), d.get("first_ns")
        else:
            r.cats, r.probs = list(d["cats"]), np.asarray(d["probs"], dtype=float)
        return r


def significance_score(evidence: float, h: float) -> float:
    """``1 - 0.5 ** (evidence / h)``: 0.5 exactly when a feature's Bonferroni-adjusted ``-ln p``
    reaches ``h = ln(windows per day / false_alarms_per_series_per_day)``."""
    if evidence <= 0 or h <= 0:
        return 0.0
    return 1.0 - 0.5 ** (evidence / h)


_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


def normalise_model(name: str) -> str:
    """A model name without its snapshot date (``gpt-4o-2024-08-06`` -> ``gpt-4o``,
    ``claude-3-5-haiku-20241022`` -> ``claude-3-5-haiku``, ``gpt-4-0613`` -> ``gpt-4``): a provider
    moving a series to a new snapshot with the same behaviour is not a change of the model mix
    (a behaviour change shows in the other features)."""
    return _SNAPSHOT_SUFFIX.sub("", name)
