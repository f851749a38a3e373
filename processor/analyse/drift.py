"""Distribution drift per series against a frozen reference.

Why frozen bins: a score is only comparable across windows if every window is binned the same
way, so each reference is learnt once (the first ``reference_calls`` calls of the series, default
1000, or everything within ``reference_period_s`` of its first call when that is set, capped at
``max_reference_sample``) and then frozen as quantile bin edges plus two open-ended outer bins.

Numeric features — ``duration``, ``input_tokens``, ``output_tokens``, ``cost`` (USD per call),
``relevance``, ``quality`` (evaluation scores of the series' calls, all evaluation names pooled, in
the evaluation's own window: ``observe_evaluations``; its reference is the first
``reference_calls`` scores) — get per window:

* PSI = sum (c - r) ln(c / r) over the frozen bins, each proportion floored at ``psi_floor`` (1e-4);
* KS  = max |F_c - F_r| over the bin edges (binned CDFs; a lower bound of the exact statistic);
* Wasserstein-1 between the binned distributions, each bin's mass placed at the mean of the values
  that fell in it, divided by the reference standard deviation.

Categorical mixes — ``finish_reason`` per series and ``model`` within a service (a pseudo-series
``service|*|*|*``) — get the Jensen–Shannon distance (base 2, in [0, 1]) against the reference
categories (top ``max_categories`` + ``_other``).

Small samples make PSI biased upwards (about (bins - 1) x (1/n + 1/N) under no drift, a scaled
chi-square), so a window is scored over the most recent windows that together hold at least
``min_eval_count`` values (default 500), up to ``max_eval_windows`` (30) windows; with fewer
values the feature is not scored. With N = 1000 reference and n = 500 current values, no-drift PSI
averages 0.03 and exceeds 0.2 with probability ~1e-10 per window.

Score in [0, 1], calibrated: a drift score means a change both *significant* and *large*. Per
feature, Pearson's chi-square two-sample test of the horizon's counts against the reference counts
(so both sample sizes count) gives ``ln p``; with ``m`` features tested, the evidence
``-ln p - ln m`` maps to ``1 - 0.5 ** (evidence / h)`` with ``h = ln(windows per day /
false_alarms_per_series_per_day)``, i.e. 0.5 exactly at the per-window level ``rate / (windows per
day x m)``. The effect size maps to ``min(1, stat / (2 x alert threshold))`` (PSI for numeric, JS
for categorical features: 0.5 exactly at ``psi_alert`` / ``js_alert``); for a numeric feature
also ``min(1, W1 / |reference mean| / (2 x min_relative_shift))`` (0.5 at a Wasserstein-1 shift of
``min_relative_shift``, 5 %, of the reference mean), because PSI is blind to units: on a
near-constant latency (a fake or cached backend, p50 0.395 s, p95 0.41 s) a 2 % shift moves half
the mass across the narrow frozen bins and reads PSI 0.5. A feature's score is the smallest, the
series' ``gensight.drift.score`` the largest over its features; so a score >= 0.5 needs p below
the calibrated level **and** PSI >= 0.2 (JS >= 0.1) **and**, numeric, a shift of >= 5 % of the
mean: normal traffic reaches it on at most ``false_alarms_per_series_per_day`` (0.1) windows per
series per day, and a trivial shift on a busy series (significant, tiny) does not. Alert ``drift``
(ticket) while the score is >= 0.5. The ``model`` mix compares model names without snapshot dates (:func:`normalise_model`).
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from gensight.processor.analyse.alerts import TICKET, AlertEngine
from gensight.processor.analyse.drift_config import DriftConfig
from gensight.processor.analyse.drift_refs import (
    FROZEN,
    LEARNING,
    CategoricalRef,
    NumericRef,
    bin_index,
    js_distance,
    ks_binned,
    normalise_model,
    psi,
    significance_score,
    wasserstein_binned,
)
from gensight.processor.analyse.evidence import chi2_logsf, chi2_two_sample
from gensight.processor.analyse.quality import scores_by_series
from gensight.processor.labels import (
    matches_patterns,
    parse_series_id,
    series_attributes,
    series_id,
)
from gensight.processor.pipeline.series import series_groups
from gensight.processor.points import GAUGE, Analyser, MetricPoint, Window
from gensight.processor.records import (
    CHAT,
    F_COST_USD,
    F_DURATION_S,
    F_END_NS,
    F_FINISH_REASON,
    F_INPUT_TOKENS,
    F_KIND,
    F_OUTPUT_TOKENS,
    F_RELEVANCE,
    F_SERVICE,
    F_TARGET,
    OVERFLOW_KEY,
    TEXT_COMPLETION,
    CallRecord,
    SeriesKey,
)

NUMERIC_FEATURES = ("duration", "input_tokens", "output_tokens", "cost", "relevance", "quality")
QUALITY = "quality"  # evaluation scores, fed by ``observe_evaluations`` (not a call record field)
CATEGORICAL_FEATURES = ("finish_reason", "model")
DRIFT_ALERT_SCORE = 0.5  # drift.score at which the drift alert fires (see the module docstring)
# distinct categories a learning reference counts; calls with further ones are not counted
MAX_LEARNING_CATEGORIES = 1000


# -- the statistics (pure functions; tested against scipy) ------------------------------------

class _Feature:
    """Reference + the values of the recent windows for one (series, feature)."""

    __slots__ = ("ref", "current", "recent")

    def __init__(self, ref: NumericRef | CategoricalRef, max_windows: int) -> None:
        self.ref = ref
        self.current: list[float] | Counter[str] = [] if isinstance(ref, NumericRef) else Counter()
        self.recent: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=max_windows)


_MODEL_KINDS = frozenset((CHAT, TEXT_COMPLETION))


def _model_key(service: str) -> SeriesKey:
    return SeriesKey(service, "*", "*", "*")


class DriftAnalyser(Analyser):
    def __init__(self, config: DriftConfig | None = None, alerts: AlertEngine | None = None) -> None:
        self.config = config or DriftConfig()
        self.alerts = alerts
        self._series: dict[SeriesKey, dict[str, _Feature]] = {}
        self._lock = threading.RLock()  # the admin endpoint edits references from another thread
        # window start -> series -> (evaluation scores, earliest evaluation time), until that window closes
        self._quality_open: dict[int, dict[SeriesKey, tuple[list[float], int]]] = {}
        self.overflowed = 0

    # -- feeding ----------------------------------------------------------------------------
    def _features(self, key: SeriesKey) -> dict[str, _Feature]:
        feats = self._series.get(key)
        if feats is None:
            if len(self._series) >= self.config.max_series:
                self.overflowed += 1
                key = OVERFLOW_KEY
                feats = self._series.get(key)
            if feats is None:
                feats = self._series[key] = {}
        return feats

    def _feature(self, feats: dict[str, _Feature], name: str, numeric: bool) -> _Feature:
        f = feats.get(name)
        if f is None:
            f = feats[name] = _Feature(NumericRef() if numeric else CategoricalRef(), self.config.max_eval_windows)
        return f

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        # hot path: per series (grouped once for all analysers), each feature's values move as one
        # column slice; field positions: see CallRecord (5 end, 6 duration, 7/8 tokens, 10 cost,
        # 14 finish reason, 15 relevance)
        if not records:
            return
        models: dict[str, dict[str, int]] = {}  # service -> model -> calls, models in order of first call
        cap, max_values = self._sample_cap(), self.config.max_values_per_window
        with self._lock:
            for (kind, service, _, target), key, cols, pres, fin in series_groups(records):
                feats = self._series.get(key)
                if feats is None:
                    feats = self._features(key)
                first_ns = cols[F_END_NS][0]
                for name, vals in (
                    ("duration", fin[F_DURATION_S][0]),
                    ("input_tokens", pres[F_INPUT_TOKENS][0]),
                    ("output_tokens", pres[F_OUTPUT_TOKENS][0]),
                    ("cost", fin[F_COST_USD][0]),
                    ("relevance", fin[F_RELEVANCE][0]),
                ):
                    if vals:
                        self._add_numeric(feats.get(name) or self._feature(feats, name, True), vals, first_ns,
                                          cap, max_values)
                reasons = cols[F_FINISH_REASON]
                self._add_categorical(feats, "finish_reason", reasons if all(reasons) else [f for f in reasons if f],
                                      first_ns)
                if kind in _MODEL_KINDS and target:
                    counts = models.get(service)
                    if counts is None:
                        counts = models[service] = {}
                    model = normalise_model(target)
                    counts[model] = counts.get(model, 0) + len(reasons)
            for service, counts in models.items():
                self._add_models(service, counts, records)

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        """Evaluation scores of the judged call's series, held per the evaluation's own window and
        moved into the ``quality`` feature when that window closes: live, later windows are open
        (allowed lateness) while an earlier one closes, and replay must see the same split."""
        scores = scores_by_series(evaluations)
        if not scores:
            return
        with self._lock:
            held = self._quality_open.setdefault(window.start_ns, {})
            for key, (vals, first_ns) in scores.items():
                got = held.get(key)
                held[key] = (vals, first_ns) if got is None else (got[0] + vals, min(got[1], first_ns))

    def _take_quality(self, window: Window) -> None:
        """The held evaluation scores of ``window`` (and any older, never-closed one) into the features."""
        cap, max_values = self._sample_cap(), self.config.max_values_per_window
        for start in sorted(s for s in self._quality_open if s <= window.start_ns):
            for key, (vals, first_ns) in self._quality_open.pop(start).items():
                feats = self._features(key)
                self._add_numeric(feats.get(QUALITY) or self._feature(feats, QUALITY, True), vals, first_ns,
                                  cap, max_values)

    def _add_models(self, service: str, counts: dict[str, int], records: Sequence[CallRecord]) -> None:
        """The ``model`` mix of a service from per-series counts (models in order of first
        appearance, as series groups come). Only a learning reference that would reach a cap
        within these calls needs each call's model in record order: the calls before the cap count."""
        feats = self._features(_model_key(service))
        f = self._feature(feats, "model", False)
        ref, cur = f.ref, f.current
        assert isinstance(ref, CategoricalRef) and isinstance(cur, Counter)
        if ref.status == FROZEN:
            cur.update(counts)
            return
        if ref.first_ns is None:
            ref.first_ns = records[0][5]
        total = sum(counts.values())
        cap = self._sample_cap()
        if ref.n >= cap:
            return  # full: waits to be frozen at the next close
        if ref.n + total <= cap and len(ref.counts) + len(counts) <= MAX_LEARNING_CATEGORIES:
            ref.counts.update(counts)
            ref.n += total
            return
        names = [normalise_model(r[F_TARGET]) for r in records
                 if r[F_SERVICE] == service and r[F_KIND] in _MODEL_KINDS and r[F_TARGET]]
        self._add_categorical(feats, "model", names, records[0][5])

    @staticmethod
    def _add_numeric(f: _Feature, vals: Sequence[float], first_ns: int, cap: int, max_values: int) -> None:
        """Into the reference while it learns (up to ``cap`` values), else into the window's
        values (up to ``max_values``)."""
        ref: NumericRef = f.ref  # type: ignore[assignment]
        if ref.status == LEARNING:
            if ref.first_ns is None:
                ref.first_ns = first_ns
            room = cap - len(ref.sample)
            if room > 0:
                # fromlist converts a list three times faster than extend converts any iterable
                ref.sample.fromlist(list(vals) if room >= len(vals) else list(vals[:room]))
        else:
            cur: list[float] = f.current  # type: ignore[assignment]
            room = max_values - len(cur)
            if room >= len(vals):
                cur.extend(vals)
            elif room > 0:
                cur.extend(vals[:room])

    def _add_categorical(self, feats: dict[str, _Feature], name: str, cats: Sequence[str], first_ns: int) -> None:
        if not cats:
            return
        f = self._feature(feats, name, False)
        ref = f.ref
        assert isinstance(ref, CategoricalRef)
        if ref.status == LEARNING:
            if ref.first_ns is None:
                ref.first_ns = first_ns
            cap = self._sample_cap()
            if ref.n + len(cats) <= cap and len(ref.counts) + len(cats) <= MAX_LEARNING_CATEGORIES:
                # no cap can be reached within these: count them all at once (same insertion order)
                ref.counts.update(cats)
                ref.n += len(cats)
                return
            for cat in cats:
                if ref.n >= cap:
                    break
                if cat in ref.counts or len(ref.counts) < MAX_LEARNING_CATEGORIES:
                    ref.counts[cat] += 1
                    ref.n += 1
        else:
            cur = f.current
            assert isinstance(cur, Counter)
            cur.update(cats)

    def _sample_cap(self) -> int:
        """Values kept while learning: reference_calls (or the period cap when learning by period)."""
        cfg = self.config
        return cfg.max_reference_sample if cfg.reference_period_s is not None else cfg.reference_calls

    def _ready(self, ref: NumericRef | CategoricalRef, now_ns: int) -> bool:
        cfg = self.config
        n = len(ref.sample) if isinstance(ref, NumericRef) else ref.n
        if cfg.reference_period_s is not None:
            return ref.first_ns is not None and now_ns - ref.first_ns >= cfg.reference_period_s * 1e9 and n >= 20
        return n >= cfg.reference_calls

    # -- scoring ----------------------------------------------------------------------------
    def close(self, window: Window) -> list[MetricPoint]:
        cfg = self.config
        out: list[MetricPoint] = []
        now = window.end_ns
        window_s = (window.end_ns - window.start_ns) / 1e9 or 60.0
        # the evidence (nats, after Bonferroni over features) at which a feature's significance
        # score reaches 0.5: normal traffic gets there on at most `rate` windows a day
        h = math.log((86400.0 / window_s) / cfg.false_alarms_per_series_per_day)
        with self._lock:
            self._take_quality(window)
            for key, feats in self._series.items():
                tested: dict[str, tuple[float, float, float, float]] = {}  # name -> (ln p, stat, threshold, severity)
                for name, f in feats.items():
                    ref = f.ref
                    if ref.status == LEARNING:
                        if self._ready(ref, now):
                            if isinstance(ref, NumericRef):
                                ref.freeze(cfg.bins)
                            else:
                                ref.freeze(cfg.max_categories)
                        continue
                    scored = self._score_feature(f)
                    if scored is None:
                        continue
                    stats, logp, shift = scored
                    attrs_base = series_attributes(key) if key.kind != "*" else ()
                    for method, value in stats.items():
                        out.append(MetricPoint("gensight.drift", GAUGE, "1", key.service,
                                               (*attrs_base, ("feature", name), ("method", method)),
                                               value, window.start_ns, now))
                    stat, thr = (stats["psi"], cfg.psi_alert) if "psi" in stats else (stats["js"], cfg.js_alert)
                    severity = min(1.0, stat / (2 * thr))
                    if shift is not None:  # numeric: the shift must also matter in the feature's own units
                        severity = min(severity, shift / (2 * cfg.min_relative_shift))
                    tested[name] = (logp, stat, thr, severity)
                if not tested:
                    continue
                m = len(tested)
                scores = {name: min(severity, significance_score(-logp - math.log(m), h))
                          for name, (logp, _, _, severity) in tested.items()}
                worst = max(scores, key=lambda n: (scores[n], n))
                score = scores[worst]
                attrs = series_attributes(key) if key.kind != "*" else (("feature", "model"),)
                out.append(MetricPoint("gensight.drift.score", GAUGE, "1", key.service, attrs, score,
                                       window.start_ns, now))
                if self.alerts is not None:
                    _, stat, thr, _ = tested[worst]
                    self.alerts.evaluate("drift", series_id(key), score >= DRIFT_ALERT_SCORE, value=stat, threshold=thr,
                                         time_ns=now, severity=TICKET, service=key.service,
                                         attributes=(*attrs, ("gensight.drift.feature", worst),
                                                     ("gensight.alert.signal", worst),
                                                     ("gensight.alert.signal_value", stat),
                                                     ("gensight.alert.baseline", 0.0)))
        return out

    def _score_feature(self, f: _Feature) -> tuple[dict[str, float], float, float | None] | None:
        """The drift statistics of a feature over its horizon, ``ln p`` of Pearson's chi-square
        two-sample test of the horizon's counts against the reference counts, and (numeric
        features) the Wasserstein-1 distance relative to the reference mean."""
        cfg = self.config
        ref = f.ref
        if isinstance(ref, NumericRef):
            cur = f.current
            assert isinstance(cur, list)
            k = len(ref.edges) + 1
            if cur:
                v = np.asarray(cur, dtype=float)
                idx = bin_index(ref.edges, v)
                f.recent.append((np.bincount(idx, minlength=k).astype(float), np.bincount(idx, weights=v, minlength=k)))
            else:
                f.recent.append((np.zeros(k), np.zeros(k)))
            f.current = []
            counts, sums = self._horizon(f)
            if counts is None or sums is None:
                return None
            n = counts.sum()
            cur_p = counts / n
            cur_x = np.where(counts > 0, sums / np.maximum(counts, 1), ref.means)
            mean = abs(float(np.dot(ref.probs, ref.means)))
            std = max(ref.std, 1e-9, 0.01 * mean)
            w1 = wasserstein_binned(ref.probs, ref.means, cur_p, cur_x)
            return {
                "psi": psi(ref.probs, cur_p, cfg.psi_floor),
                "ks": ks_binned(ref.probs, cur_p),
                "wasserstein": w1 / std,
            }, chi2_logsf(*chi2_two_sample(ref.probs * ref.n, counts)), w1 / max(mean, 1e-12)
        ccur = f.current
        assert isinstance(ccur, Counter)
        vec = ref.vector(ccur)
        f.recent.append((vec, vec))
        f.current = Counter()
        counts, _ = self._horizon(f)
        if counts is None:
            return None
        return {"js": js_distance(ref.probs, counts)}, chi2_logsf(*chi2_two_sample(ref.probs * ref.n, counts)), None

    def _horizon(self, f: _Feature) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Sum the most recent windows until they hold ``min_eval_count`` values."""
        counts: np.ndarray | None = None
        sums: np.ndarray | None = None
        for c, s in reversed(f.recent):
            counts = c.copy() if counts is None else counts + c
            sums = s.copy() if sums is None else sums + s
            if counts.sum() >= self.config.min_eval_count:
                return counts, sums
        return None, None

    def expire(self, keys: Iterable[SeriesKey]) -> None:
        """Series the pipeline forgot (idle): drop them, unless a reference is pinned."""
        with self._lock:
            for key in keys:
                feats = self._series.get(key)
                if feats is not None and not any(f.ref.pinned for f in feats.values()):
                    del self._series[key]

    # -- baseline management ------------------------------------------------------------------
    def show(self, patterns: Iterable[str] | None = None) -> list[dict[str, Any]]:
        rows = []
        with self._lock:
            for key, feats in sorted(self._series.items()):
                sid = series_id(key)
                if not matches_patterns(sid, patterns):
                    continue
                for name, f in sorted(feats.items()):
                    ref = f.ref
                    row: dict[str, Any] = {"series": sid, "feature": name, "status": ref.status, "pinned": ref.pinned}
                    if isinstance(ref, NumericRef):
                        row["n"] = len(ref.sample) if ref.status == LEARNING else ref.n
                        if ref.status == FROZEN:
                            row.update(edges=[round(x, 6) for x in ref.edges.tolist()], std=ref.std)
                    else:
                        row["n"] = ref.n
                        if ref.status == FROZEN:
                            row["categories"] = dict(zip(ref.cats, [round(p, 4) for p in ref.probs.tolist()], strict=True))
                    rows.append(row)
        return rows

    def reset(self, patterns: Iterable[str] | None = None, force: bool = False) -> int:
        """Forget references so they are learnt again from the next calls; pinned ones need ``force``."""
        n = 0
        with self._lock:
            for key, feats in self._series.items():
                if not matches_patterns(series_id(key), patterns):
                    continue
                for name, f in list(feats.items()):
                    if f.ref.pinned and not force:
                        continue
                    feats[name] = _Feature(NumericRef() if isinstance(f.ref, NumericRef) else CategoricalRef(),
                                           self.config.max_eval_windows)
                    n += 1
        return n

    def pin(self, patterns: Iterable[str] | None = None) -> int:
        """Freeze references now (a learning one with what it has, if >= 20 values) and protect them from reset."""
        n = 0
        with self._lock:
            for key, feats in self._series.items():
                if not matches_patterns(series_id(key), patterns):
                    continue
                for f in feats.values():
                    ref = f.ref
                    if ref.status == LEARNING:
                        size = len(ref.sample) if isinstance(ref, NumericRef) else ref.n
                        if size < 20:
                            continue
                        if isinstance(ref, NumericRef):
                            ref.freeze(self.config.bins)
                        else:
                            ref.freeze(self.config.max_categories)
                    ref.pinned = True
                    n += 1
        return n

    # -- state ----------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        with self._lock:
            return {series_id(k): {name: f.ref.to_json() for name, f in feats.items()} for k, feats in self._series.items()}

    def import_state(self, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._series.clear()
            for sid, feats in data.items():
                key = parse_series_id(sid)
                d: dict[str, _Feature] = {}
                for name, rj in feats.items():
                    ref: NumericRef | CategoricalRef = (
                        NumericRef.from_json(rj) if name in NUMERIC_FEATURES else CategoricalRef.from_json(rj))
                    d[name] = _Feature(ref, self.config.max_eval_windows)
                self._series[key] = d

