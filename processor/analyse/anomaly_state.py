"""Per-series state of the anomaly analyser: a window's values, the references, the evidence.

Kept apart from the analyser (``anomaly.py``) so the scoring reads as the rules and this module as
the bookkeeping: what a window collects (each signal capped), what a reference holds and how it
round-trips through the state snapshot (float arrays as base64: a third of their JSON text).
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gensight.processor.normalise.error_class import error_class
from gensight.processor.pipeline.series import SeriesGroup
from gensight.processor.records import (
    F_COST_USD,
    F_DURATION_S,
    F_ERROR,
    F_ERROR_TYPE,
    F_FINISH_REASON,
    F_INPUT_TOKENS,
    F_OUTPUT_TOKENS,
    F_RELEVANCE,
    F_TTFC_S,
)

# numeric signals: name -> (record field, upward?)
NUMERIC = {
    "latency": (F_DURATION_S, True),
    "ttfc": (F_TTFC_S, True),
    "input_tokens": (F_INPUT_TOKENS, True),
    "output_tokens": (F_OUTPUT_TOKENS, True),
    "cost": (F_COST_USD, True),
    "relevance": (F_RELEVANCE, False),
}
# evaluation scores (``gen_ai.evaluation.score.value``, joined to their call, all evaluation names of
# a series pooled) in the evaluation's own window: tested downwards like relevance, but fed through
# ``AnomalyAnalyser.observe_evaluations`` rather than from a call record field
QUALITY = "quality"
# every numeric signal the analyser tests: name -> upward?
NUMERIC_TESTS = {**{name: up for name, (_, up) in NUMERIC.items()}, QUALITY: False}
# these fields have a finite-values view in a SeriesGroup (NaN and inf left out); the others a present one
FINITE_VIEW = frozenset((F_DURATION_S, F_COST_USD, F_RELEVANCE))


class Acc:
    """One series' values in one window (each signal capped at ``cap`` values)."""

    __slots__ = ("n", "errors", "values", "finish", "classes", "cap")

    def __init__(self, cap: int) -> None:
        self.n = 0
        self.errors = 0
        self.cap = cap
        self.values: dict[str, list[float]] = {name: [] for name in NUMERIC_TESTS}
        self.finish: dict[str, int] = {}
        self.classes: dict[str, int] = {}  # error class -> errors (successes under NO_ERROR at close)

    def add_scores(self, scores: Sequence[float]) -> None:
        """Evaluation scores of the series in this window (capped like every signal)."""
        dst = self.values[QUALITY]
        room = self.cap - len(dst)
        if room > 0:
            dst.extend(scores[:room])

    def add_group(self, group: SeriesGroup) -> None:
        cols, pres, fin = group.columns, group.present, group.finite
        self.n += len(cols[F_DURATION_S])
        errors = cols[F_ERROR]
        if any(errors):
            for e, t in zip(errors, cols[F_ERROR_TYPE], strict=True):
                if e:
                    self.errors += 1
                    c = error_class(t)
                    self.classes[c] = self.classes.get(c, 0) + 1
        for name, (field, _) in NUMERIC.items():
            vals = (fin if field in FINITE_VIEW else pres)[field][0]
            if vals:
                dst = self.values[name]
                room = self.cap - len(dst)
                if room > 0:
                    dst.extend(vals[:room] if len(vals) > room else vals)
        for f in cols[F_FINISH_REASON]:
            if f:
                self.finish[f] = self.finish.get(f, 0) + 1


def _b64(a: np.ndarray) -> str:
    """float64 values as base64 (a third of their JSON text size in the state snapshot)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode()


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(float) if text else np.zeros(0)


class NumRef:
    """A numeric signal's reference sample (sorted; grows to ``reference_values``) and the rolling
    candidate sample that replaces it after ``refreeze_windows`` clean windows."""

    __slots__ = ("sorted", "candidate", "clean_since")

    def __init__(self, size: int) -> None:
        self.sorted = np.zeros(0)
        self.candidate: deque[float] = deque(maxlen=size)
        self.clean_since = 0

    def to_json(self) -> dict[str, Any]:
        return {"sorted": _b64(self.sorted), "candidate": _b64(np.asarray(self.candidate, dtype=float)),
                "clean_since": self.clean_since}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], size: int) -> NumRef:
        r = cls(size)
        r.sorted = _unb64(d.get("sorted", ""))
        r.candidate.extend(_unb64(d.get("candidate", "")).tolist())
        r.clean_since = int(d.get("clean_since", 0))
        return r


class SeriesState:
    __slots__ = ("refs", "err_k", "err_n", "classes", "finish", "finish_n", "cusum", "forest", "explain")

    def __init__(self) -> None:
        self.refs: dict[str, NumRef] = {}
        self.err_k = 0.0
        self.err_n = 0.0
        self.classes: dict[str, float] = {}  # error class (and NO_ERROR) -> calls, scaled like err_n
        self.finish: dict[str, float] = {}
        self.finish_n = 0.0
        self.cusum: dict[str, float] = {}
        self.forest: deque[float] = deque()
        # signal -> (window value, baseline value), or (window values, sorted reference, quantile)
        self.explain: dict[str, tuple[Any, Any, Any] | tuple[float, float]] = {}

    def to_json(self) -> dict[str, Any]:
        return {"refs": {k: r.to_json() for k, r in self.refs.items()}, "err": [self.err_k, self.err_n], "classes": self.classes,
                "finish": self.finish, "finish_n": self.finish_n, "cusum": self.cusum, "forest": list(self.forest),
                "explain": {k: list(explanation(v)) for k, v in self.explain.items()}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], reference_values: int, history_windows: int) -> SeriesState:
        s = cls()
        s.refs = {k: NumRef.from_json(r, reference_values) for k, r in d.get("refs", {}).items()}
        s.err_k, s.err_n = (float(x) for x in d.get("err", [0.0, 0.0]))
        s.classes = {str(k): float(v) for k, v in d.get("classes", {}).items()}
        s.finish = {str(k): float(v) for k, v in d.get("finish", {}).items()}
        s.finish_n = float(d.get("finish_n", 0.0))
        s.cusum = {str(k): float(v) for k, v in d.get("cusum", {}).items()}
        s.forest = deque((float(x) for x in d.get("forest", [])), maxlen=history_windows)
        s.explain = {str(k): (float(v[0]), float(v[1])) for k, v in d.get("explain", {}).items()}
        return s


def explanation(item: tuple[Any, ...]) -> tuple[float, float]:
    """(window value, baseline value) of a signal from what its last test kept."""
    if len(item) == 3:
        vals, ref, q = item
        return float(np.quantile(np.asarray(vals, dtype=float), q)), float(np.quantile(ref, q))
    return float(item[0]), float(item[1])
