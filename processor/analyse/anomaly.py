"""Anomaly score per series and window, in [0, 1].

Each closed window gives a series a feature vector: ``latency_p95`` (s), ``error_rate`` (for tool
series this is the tool error rate), ``cost_per_call`` (USD), ``output_tokens`` (mean per call) and
``relevance`` (mean, retrieval series); a feature the series does not have stays NaN.

1. Robust z (works from the ``min_history``-th window on): per series and feature,
   ``z = (x - median) / scale`` over the series' last ``history_windows`` windows, with
   ``scale = max(1.4826 x MAD, r x |median|, floor) x (1 + 10 / n)`` with r = 0.1 for latency,
   cost and tokens (0 for error rate and relevance) and floors error rate 0.03, relevance 0.03,
   latency 0.05 s, output tokens 5, cost 1e-6 USD; n = windows of history, so a short history
   widens the scale. The floors keep a series that never errs from alarming on one error, and a
   rise in error rate only counts with at least 3 errors in the window (low-traffic guard). Directional: only a *rise* in error rate and a *drop* in relevance count.
   ``z* = max |z|``, mapped to ``s_z = z* / (z* + 3)`` — z* = 3 -> 0.5, z* = 7 -> 0.7, z* = 27 -> 0.9.
2. Isolation forest: once ``min_fit_rows`` windows have been seen across all series, one
   scikit-learn ``IsolationForest`` (seeded) is fitted on the z-vectors of all series (bounded
   history of ``max_fit_rows`` rows) and refitted every ``refit_every`` windows. All series of a
   window are scored in one ``score_samples`` batch. Its raw score s is the negated paper score
   (a = -s in (0, 1], 0.5 = the paper's "no distinct anomaly"); mapped to
   ``s_if = clip((a - 0.5) / 0.35, 0, 1)`` so a = 0.5 -> 0, a = 0.745 -> 0.7, a >= 0.85 -> 1.
3. Score = ``max(s_z, s_if)``: the robust z keeps catching single-feature extremes, the forest
   adds unusual combinations. Alert ``anomaly`` (ticket) at score >= ``threshold`` (0.7).

Determinism: with ``refit: sync`` (what ``gensight replay`` uses) the forest is refitted inline at
deterministic window counts, so a replay always gives the same scores. With ``refit: background``
(serve) the refit runs in one worker thread on a copy of the history and the new model is swapped
in when ready, so the pipeline never waits for a fit.
"""

from __future__ import annotations

import base64
import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from gensight.processor.analyse.alerts import TICKET, AlertEngine
from gensight.processor.config_fields import fields_from_mapping, positive_int
from gensight.processor.labels import DEFAULT_MAX_SERIES, parse_series_id, series_attributes, series_id
from gensight.processor.pipeline.series import SeriesGroup, finite, series_groups
from gensight.processor.points import GAUGE, Analyser, MetricPoint, Window
from gensight.processor.records import (
    F_COST_USD,
    F_DURATION_S,
    F_ERROR,
    F_OUTPUT_TOKENS,
    F_RELEVANCE,
    OVERFLOW_KEY,
    CallRecord,
    SeriesKey,
)

FEATURES = ("latency_p95", "error_rate", "cost_per_call", "output_tokens", "relevance")
SCALE_FLOORS = np.array([0.05, 0.03, 1e-6, 5.0, 0.03])
# an error-rate rise counts only with at least this many errors in the window (low-traffic guard)
MIN_ERRORS = 3
# relative floors (x |median|): latency, cost and tokens vary by a few % between quiet windows anyway;
# error rate and relevance are already on a [0, 1] scale
REL_FLOORS = np.array([0.1, 0.0, 0.1, 0.1, 0.0])
# +1: only rises count, -1: only drops count, 0: both
DIRECTION = np.array([0, 1, 0, 0, -1])
Z_REF = 3.0
IF_A0 = 0.5
IF_SPAN = 0.35
Z_CLIP = 50.0
# durations kept per series and window for the p95 (later ones only count towards n)
MAX_DURATIONS_PER_WINDOW = 20_000
SYNC = "sync"
BACKGROUND = "background"


@dataclass(frozen=True)
class AnomalyConfig:
    threshold: float = 0.7
    min_history: int = 10
    history_windows: int = 240
    min_calls: int = 5
    iforest: bool = True
    n_estimators: int = 100
    max_samples: int = 256
    seed: int = 0
    min_fit_rows: int = 200
    max_fit_rows: int = 4096
    refit_every: int = 60
    refit: str = BACKGROUND
    max_series: int = DEFAULT_MAX_SERIES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "anomaly") -> AnomalyConfig:
        return cls(**fields_from_mapping(cls, dict(data or {}), where, {
            "refit": _refit_mode,
            "seed": lambda v, key: positive_int(v, key, minimum=0),  # 0 is a valid seed
            "threshold": _threshold,
        }))


def _refit_mode(v: Any, key: str) -> str:
    if v not in (SYNC, BACKGROUND):
        raise ValueError(f"{key}: must be 'sync' or 'background', got {v!r}")
    return str(v)


def _threshold(v: Any, key: str) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 1:
        raise ValueError(f"{key}: must be in (0, 1], got {v!r}")
    return float(v)


def robust_score(z_star: float) -> float:
    return z_star / (z_star + Z_REF) if z_star > 0 else 0.0


def iforest_score(raw: np.ndarray) -> np.ndarray:
    """Map ``IsolationForest.score_samples`` output (negated paper score) to [0, 1]."""
    a = -raw
    return np.clip((a - IF_A0) / IF_SPAN, 0.0, 1.0)


def robust_z(history: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Signed robust z of ``x`` against ``history`` (rows = windows); NaN where there is no reference."""
    z = np.full(x.shape, np.nan)
    for j in range(history.shape[1]):
        col = history[:, j]
        col = col[~np.isnan(col)]
        if col.size == 0 or np.isnan(x[j]):
            continue
        med = float(np.median(col))
        mad = float(np.median(np.abs(col - med)))
        # few windows give an unsure median/MAD: widen the scale (x2 at 10 windows, x1.04 at 240)
        scale = max(1.4826 * mad, float(REL_FLOORS[j]) * abs(med), float(SCALE_FLOORS[j])) * (1.0 + 10.0 / col.size)
        z[j] = (x[j] - med) / scale
    return z


def directional_max(z: np.ndarray) -> float:
    zz = np.where(DIRECTION > 0, np.maximum(z, 0), np.where(DIRECTION < 0, np.maximum(-z, 0), np.abs(z)))
    zz = zz[np.isfinite(zz)]
    return float(zz.max()) if zz.size else 0.0


class _Acc:
    __slots__ = ("n", "errors", "durations", "cost_sum", "cost_n", "out_sum", "out_n", "rel_sum", "rel_n")

    def __init__(self) -> None:
        self.n = 0
        self.errors = 0
        self.durations: list[float] = []
        self.cost_sum = 0.0
        self.cost_n = 0
        self.out_sum = 0.0
        self.out_n = 0
        self.rel_sum = 0.0
        self.rel_n = 0

    def add_group(self, group: SeriesGroup) -> None:
        """Every record of a series group, a column at a time; field positions: see CallRecord
        (6 duration, 8 output tokens, 10 cost, 12 error, 15 relevance)."""
        cols, pres, fin = group.columns, group.present, group.finite
        self.n += len(cols[F_DURATION_S])
        errors = cols[F_ERROR]
        if any(errors):
            self.errors += len([e for e in errors if e])
        room = MAX_DURATIONS_PER_WINDOW - len(self.durations)
        if room >= len(cols[F_DURATION_S]):
            self.durations.extend(fin[F_DURATION_S][0])
        elif room > 0:
            self.durations.extend(finite(cols[F_DURATION_S][:room])[0])
        costs, total = fin[F_COST_USD]
        self.cost_sum += total
        self.cost_n += len(costs)
        outs, total = pres[F_OUTPUT_TOKENS]
        self.out_sum += total
        self.out_n += len(outs)
        rels, total = fin[F_RELEVANCE]
        self.rel_sum += total
        self.rel_n += len(rels)

    def vector(self) -> np.ndarray:
        nan = math.nan
        return np.array([
            p95(self.durations) if self.durations else nan,
            self.errors / self.n if self.n else nan,
            self.cost_sum / self.cost_n if self.cost_n else nan,
            self.out_sum / self.out_n if self.out_n else nan,
            self.rel_sum / self.rel_n if self.rel_n else nan,
        ])


# Up to this many values p95() sorts in Python; above, numpy's partition is cheaper.
P95_PYTHON_MAX_VALUES = 4096


def p95(values: list[float]) -> float:
    """``float(np.percentile(values, 95))`` (finite values), bit for bit: numpy's default 'linear'
    method written out for a sorted list. numpy's fixed cost (~50 us a call, once per series and
    window) was most of the anomaly close. Zeros of both signs take numpy itself (which of two
    equal zeros lands at the index is its partition's business)."""
    n = len(values)
    if n > P95_PYTHON_MAX_VALUES or (0.0 in values and any(math.copysign(1.0, v) < 0 for v in values if v == 0)):
        return float(np.percentile(values, 95))
    s = sorted(values)
    virtual = (n - 1) * (95 / 100)
    if virtual >= n - 1:
        previous = following = -1
    else:
        previous = math.floor(virtual)
        following = previous + 1
    gamma = virtual - previous
    a, b = s[previous], s[following]
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


def encode_array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode()}


def decode_array(d: Mapping[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["b64"]), dtype=np.float64).reshape(d["shape"]).copy()


class AnomalyAnalyser(Analyser):
    def __init__(self, config: AnomalyConfig | None = None, alerts: AlertEngine | None = None) -> None:
        self.config = config or AnomalyConfig()
        self.alerts = alerts
        self._open: dict[int, dict[SeriesKey, _Acc]] = {}
        self._history: dict[SeriesKey, deque[np.ndarray]] = {}
        self._train: deque[np.ndarray] = deque(maxlen=self.config.max_fit_rows)
        self._closes = 0
        self._model: Any = None
        self._future: Future[Any] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.fits = 0
        if self.config.iforest and self.config.refit != SYNC:
            # import scikit-learn now, at start-up: importing it in the first background refit
            # holds the GIL for about a second and stalls the pipeline worker mid-stream
            import sklearn.ensemble  # noqa: F401

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        accs = self._open.setdefault(window.start_ns, {})
        for group in series_groups(records):
            key = group.series
            acc = accs.get(key)
            if acc is None:
                if key not in self._history and len(self._history) + len(accs) >= self.config.max_series:
                    key = OVERFLOW_KEY
                    acc = accs.get(key)
                if acc is None:
                    acc = accs[key] = _Acc()
            acc.add_group(group)

    def close(self, window: Window) -> list[MetricPoint]:
        cfg = self.config
        accs = self._open.pop(window.start_ns, {})
        # windows older than this one can no longer be closed: drop them (bounded memory)
        for start in [s for s in self._open if s < window.start_ns]:
            del self._open[start]
        self._closes += 1
        self._maybe_refit()
        keys: list[SeriesKey] = []
        zs: list[np.ndarray] = []
        s_z: list[float] = []
        for key, acc in accs.items():
            if acc.n < cfg.min_calls:
                continue
            x = acc.vector()
            hist = self._history.get(key)
            if hist is None:
                hist = self._history[key] = deque(maxlen=cfg.history_windows)
            if len(hist) >= cfg.min_history:
                z = robust_z(np.asarray(hist), x)
                if acc.errors < MIN_ERRORS and z[1] > 0:
                    z[1] = 0.0  # 2 errors in 5 calls is 40 %, but not yet an incident
                keys.append(key)
                zs.append(z)
                s_z.append(robust_score(directional_max(z)))
            hist.append(x)
        if not keys:
            return []
        zmat = np.clip(np.nan_to_num(np.asarray(zs), nan=0.0), -Z_CLIP, Z_CLIP)
        scores = np.asarray(s_z)
        model = self._model
        if model is not None:
            self.last_if = iforest_score(model.score_samples(zmat))  # one batch per window
            self.last_z = scores
            scores = np.maximum(scores, self.last_if)
        self._train.extend(zmat)
        out = []
        for key, score in zip(keys, scores.tolist(), strict=True):
            attrs = series_attributes(key)
            out.append(MetricPoint("gensight.anomaly.score", GAUGE, "1", key.service, attrs, score,
                                   window.start_ns, window.end_ns))
            if self.alerts is not None:
                self.alerts.evaluate("anomaly", series_id(key), score >= cfg.threshold, value=score,
                                     threshold=cfg.threshold, time_ns=window.end_ns, severity=TICKET,
                                     service=key.service, attributes=attrs)
        return out

    def expire(self, keys: Iterable[SeriesKey]) -> None:
        """Series the pipeline forgot (idle): drop their window history."""
        for key in keys:
            self._history.pop(key, None)

    # -- isolation forest --------------------------------------------------------------------
    def _maybe_refit(self) -> None:
        cfg = self.config
        fut = self._future
        if fut is not None and fut.done():
            self._future = None
            try:
                self._model = fut.result()
                self.fits += 1
            except Exception:  # a failed fit keeps the previous model; never crash the pipeline
                pass
        if not cfg.iforest or len(self._train) < cfg.min_fit_rows:
            return
        due = self._model is None and self._future is None or self._closes % cfg.refit_every == 0
        if not due:
            return
        data = np.asarray(self._train)
        if cfg.refit == SYNC:
            self._model = fit_forest(data, cfg)
            self.fits += 1
        elif self._future is None:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gensight-iforest")
            self._future = self._executor.submit(fit_forest, data, cfg)

    def wait_for_refit(self, timeout_s: float = 30.0) -> None:
        """Block until a background refit in flight has finished (tests, shutdown)."""
        fut = self._future
        if fut is not None:
            fut.result(timeout=timeout_s)
            self._maybe_refit_done()

    def _maybe_refit_done(self) -> None:
        fut = self._future
        if fut is not None and fut.done():
            self._future = None
            self._model = fut.result()
            self.fits += 1

    @property
    def model(self) -> Any:
        return self._model

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    # -- state ---------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        return {
            "closes": self._closes,
            "history": {series_id(k): encode_array(np.asarray(h)) for k, h in self._history.items() if h},
            "train": encode_array(np.asarray(self._train)) if self._train else None,
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore history; the forest is refitted from it (seeded, so it is the same model)."""
        cfg = self.config
        self._closes = int(data.get("closes", 0))
        self._history.clear()
        for sid, enc in data.get("history", {}).items():
            arr = decode_array(enc)
            self._history[parse_series_id(sid)] = deque(list(arr), maxlen=cfg.history_windows)
        self._train.clear()
        if data.get("train"):
            self._train.extend(decode_array(data["train"]))
        if cfg.iforest and len(self._train) >= cfg.min_fit_rows:
            self._model = fit_forest(np.asarray(self._train), cfg)
            self.fits += 1


def fit_forest(data: np.ndarray, cfg: AnomalyConfig) -> Any:
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(n_estimators=cfg.n_estimators, max_samples=min(cfg.max_samples, len(data)),
                            random_state=cfg.seed)
    model.fit(data)
    return model
