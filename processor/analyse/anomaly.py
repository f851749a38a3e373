"""Anomaly score per series and window, in [0, 1], calibrated to a stated false-alarm rate.

Why this shape: an on-call engineer can only trust a score whose threshold has a known false-alarm
rate. Each signal of a series is tested every window against the series' own reference with an
exact test (``evidence.py``), the evidence ``-ln p`` is accumulated per signal by a CUSUM (small
sustained shifts and quiet series add up over windows; normal windows drain it), and the
threshold ``h`` of the CUSUM comes from ``false_alarms_per_series_per_day``:

* signals (``SIGNALS``): ``error_rate`` (tool error rate for tools) — binomial tail of the
  window's errors at the upper bound of the reference's rate (its errors and calls with a
  ``Beta(1, 199)`` prior: a series that never erred is not at rate 0); ``error_class`` — the window's calls split by error class
  (``normalise/error_class.py``; successes in their own cell) against the reference's split, the
  most over-represented class (``evidence.category_logp``): a rate-limit storm among usual
  provider errors; ``latency``, ``ttfc`` (streamed calls), ``input_tokens``,
  ``output_tokens``, ``cost`` (per call) — how many of the window's values exceed the reference's
  ``quantile`` (0.9) and ``tail_quantile`` (0.99) order statistics, binomial at the upper bound of
  their exceedance probability given the reference size, each level its own CUSUM (the gauge shows
  the larger): the 0.9 level sees a small shift of many values, the 0.99 level a large shift of a
  quiet series' one or two calls; ``relevance`` — the same, downwards under the 0.1 and 0.01
  quantiles; ``quality`` — the same downwards on evaluation scores (all evaluation names of the
  series pooled), fed by ``observe_evaluations`` into the evaluation's own window and tested when
  it closes (not a forest input); ``finish_reason`` — the most over-represented finish reason (``evidence.category_logp``); ``iforest`` — the isolation forest's score over the
  other signals' evidence, made a p-value by its rank among the series' own recent scores
  (conformal).
* CUSUM per signal ``S = min(2h, max(0, S + (-ln p) - k))`` (k = ``cusum_k``, 2 nats; the cap lets
  an alert resolve within minutes of the series being normal again). Under normal
  traffic ``P(S >= h) <= alpha`` per window with ``alpha = rate x (1 - error_rate_budget_share) /
  (windows per day x 17)`` (the other tests share what the error rate leaves, Bonferroni),
  ``h = evidence.cusum_threshold(alpha, k)`` (closed form): at 60 s windows and 0.1 a day,
  alpha = 2.7e-6 and h = 14.1.
* the error rate is accumulated as likelihood ratios instead (``evidence.binom_llr``): a bank of
  three Page CUSUMs ``S = min(2 h_lr, max(0, S + ln L1/L0))`` against the alternatives of
  ``evidence.LR_ALTERNATIVES`` (~5 %, ~12 %, ~30 % from a 0.5 % baseline), r0 the same upper bound
  of the reference rate; ``P(S >= h_lr) <= exp(-h_lr)`` per window (Ville), so
  ``h_lr = ln(windows per day x 3 / (rate x error_rate_budget_share))`` = 11.77 at the defaults
  (a third of the series' budget: error windows carry the least evidence, a few counts). A -ln p CUSUM with a
  2-nat allowance loses most of the evidence of a window's one or two errors.
* score per signal ``1 - 0.3 ** (S / h)`` (exported as ``gensight.anomaly.signal``): exactly 0.7 at
  ``S = h``; ``gensight.anomaly.score`` is the largest. So ``threshold`` 0.7 is crossed by normal
  traffic on at most ``false_alarms_per_series_per_day`` windows per series per day (union bound;
  in practice far fewer). Another ``threshold`` moves ``h`` with it (``h x ln(1-t) / ln 0.3``).

Baselines: numeric signals test against a sample of the series' values that grows to
``reference_values`` (1000; tested from ``min_reference_values``, 100); afterwards one or more
values per clean window go into a rolling candidate sample that replaces the reference every
``refreeze_windows`` clean windows (a day at 60 s). Error, error-class and finish-reason
references are counts from clean windows, scaled down to keep an effective size of at most
``max_reference_calls`` (slow exponential forgetting). Every test uses the upper
``reference_confidence`` (0.999) bound of the reference's rate, because all windows share the
reference's sampling error (see ``evidence.py``). A window is *clean* when every CUSUM of the
series is below ``h / 2``: an ongoing incident is never learnt as normal.
The forest is refitted every ``refit_every`` windows (a day); its scores are only comparable
within one model, so the conformal histories restart with each new model.
Traffic volume is not a signal (it follows the time of day).

Determinism: with ``refit: sync`` (``gensight replay``) the forest is refitted inline at fixed
window counts, so a replay always gives the same scores; with ``refit: background`` (serve) the
refit runs in a worker thread on a copy of the training rows and is swapped in when ready.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from gensight.processor.analyse import evidence as ev
from gensight.processor.analyse.alerts import FIRING, PENDING, TICKET, AlertEngine
from gensight.processor.analyse.anomaly_state import (
    NUMERIC,
    NUMERIC_TESTS,
    QUALITY,
    Acc,
    NumRef,
    SeriesState,
    explanation,
)
from gensight.processor.analyse.forest import Forest
from gensight.processor.analyse.forest import fit_forest as _fit_forest
from gensight.processor.analyse.quality import scores_by_series
from gensight.processor.config_fields import Section, check, check_positive, fmt
from gensight.processor.labels import DEFAULT_MAX_SERIES, parse_series_id, series_attributes, series_id
from gensight.processor.pipeline.series import series_groups
from gensight.processor.points import GAUGE, Analyser, MetricPoint, Window
from gensight.processor.records import OVERFLOW_KEY, CallRecord, SeriesKey

ERROR_RATE = "error_rate"
ERROR_CLASS = "error_class"
FINISH_REASON = "finish_reason"
NO_ERROR = "_ok"  # the error-class mix counts successful calls in this cell
IFOREST = "iforest"
TAIL = "_tail"  # suffix of a numeric signal's second (0.99-quantile) test; exported under the signal
LR = "_lr"  # error_rate_lr0..2: the error rate's likelihood-ratio CUSUMs, one per alternative
ERROR_LR = tuple(f"{ERROR_RATE}{LR}{i}" for i in range(len(ev.LR_ALTERNATIVES)))
TESTED = (ERROR_RATE, ERROR_CLASS, *NUMERIC, *(n + TAIL for n in NUMERIC), FINISH_REASON)  # forest inputs
QUALITY_TESTS = (QUALITY, QUALITY + TAIL)  # not forest inputs: evaluations are sparse and late
SIGNALS = (ERROR_RATE, ERROR_CLASS, *NUMERIC, QUALITY, FINISH_REASON, IFOREST)  # the exported signal names
N_TESTS = len(TESTED) + len(QUALITY_TESTS) + 1  # -ln p CUSUMs per series (Bonferroni): 18
ERROR_PRIOR = (1.0, 199.0)  # Beta prior on the error rate: mean 0.5 %, worth 200 calls
EXPLAIN_Q = 0.95  # window and baseline values reported for an upward signal (p95; p5 downwards)
SYNC = "sync"
BACKGROUND = "background"
ERROR_RATE_BUDGET_SHARE = 1 / 3  # default analytics.anomaly.error_rate_budget_share
SCORE_AT_H = 0.7  # the score at which the accumulated evidence equals h (the default threshold)
# Each CUSUM is capped at this many h: an incident's evidence (hundreds of nats a window for a x3
# latency) would otherwise take days to drain; capped, a series that is normal again drops under
# h within about (CAP - 1) h / 1.5 windows and the alert resolves. The score saturates at 0.91.
CUSUM_CAP_H = 2.0


@dataclass(frozen=True)
class AnomalyConfig(Section):
    threshold: float = 0.7
    false_alarms_per_series_per_day: float = 0.1
    # the error rate's share of the series' budget (weighted Bonferroni: the shares sum to 1): error
    # incidents are the ones people page on and the ones whose windows carry the least evidence
    # (a few counts), so they get a third; the other 17 tests split the rest
    error_rate_budget_share: float = ERROR_RATE_BUDGET_SHARE
    cusum_k: float = ev.DEFAULT_CUSUM_K
    quantile: float = 0.9
    tail_quantile: float = 0.99
    reference_confidence: float = 0.999
    reference_values: int = 1000
    min_reference_values: int = 100
    min_reference_calls: int = 100
    max_reference_calls: int = 20_000
    refreeze_windows: int = 1440
    max_values_per_window: int = 400
    min_history: int = 30  # conformal: forest scores of the series needed before it counts
    history_windows: int = 240  # conformal: forest scores of the series kept
    min_calls: int = 1
    iforest: bool = True
    n_estimators: int = 100
    max_samples: int = 256
    seed: int = 0
    min_fit_rows: int = 200
    max_fit_rows: int = 4096
    refit_every: int = 1440
    refit: str = BACKGROUND
    max_series: int = DEFAULT_MAX_SERIES

    def validate(self, key: str = "anomaly") -> None:
        check_positive(self, key, skip=("seed",))
        check(self.seed >= 0, f"{key}.seed", f"must be a non-negative integer, got {self.seed!r}")  # 0 is valid
        check(self.refit in (SYNC, BACKGROUND), f"{key}.refit", f"must be 'sync' or 'background', got {self.refit!r}")
        for name in _UNIT_FIELDS:
            value = getattr(self, name)
            check(0 < value < 1, f"{key}.{name}", f"must be in (0, 1), got {fmt(value)}")
        check(self.min_reference_values <= self.reference_values, f"{key}.min_reference_values",
              f"must not exceed reference_values ({self.reference_values})")
        check(self.cusum_k > 1, f"{key}.cusum_k", "must be > 1 (normal windows average 1 nat of evidence)")

    def alpha(self, window_s: float) -> float:
        """Per-window level of each of the ``N_TESTS - 1`` -ln p CUSUMs: the budget left after the
        error rate's share, split equally (Bonferroni)."""
        rate = self.false_alarms_per_series_per_day * (1.0 - self.error_rate_budget_share)
        return ev.per_window_alpha(rate, window_s, N_TESTS - 1)

    def alpha_error_rate(self, window_s: float) -> float:
        """Per-window level of the error rate's bank of likelihood-ratio CUSUMs (all of it)."""
        return ev.per_window_alpha(self.false_alarms_per_series_per_day * self.error_rate_budget_share, window_s, 1)

    def h(self, window_s: float) -> float:
        """The CUSUM threshold that the score ``threshold`` corresponds to."""
        return self._at_threshold(ev.cusum_threshold(self.alpha(window_s), self.cusum_k))

    def h_lr(self, window_s: float) -> float:
        """The threshold of the error rate's likelihood-ratio CUSUMs: its share of the budget,
        split over the bank of alternatives."""
        return self._at_threshold(ev.llr_cusum_threshold(self.alpha_error_rate(window_s) / len(ERROR_LR)))

    def _at_threshold(self, h_07: float) -> float:
        return h_07 * math.log(1 - self.threshold) / math.log(1 - SCORE_AT_H) if self.threshold < 1 else h_07


_UNIT_FIELDS = ("threshold", "quantile", "tail_quantile", "reference_confidence",  # each in (0, 1)
                "error_rate_budget_share")


class AnomalyAnalyser(Analyser):
    def __init__(self, config: AnomalyConfig | None = None, alerts: AlertEngine | None = None) -> None:
        self.config = config or AnomalyConfig()
        self.alerts = alerts
        self._open: dict[int, dict[SeriesKey, Acc]] = {}
        self._series: dict[SeriesKey, SeriesState] = {}
        self._train: deque[np.ndarray] = deque(maxlen=self.config.max_fit_rows)
        self._closes = 0
        self._model: Any = None
        self._future: Future[Any] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._h: dict[float, tuple[float, float]] = {}
        self.fits = 0
        if self.config.iforest and self.config.refit != SYNC:
            # import scikit-learn now, at start-up: importing it in the first background refit
            # holds the GIL for about a second and stalls the pipeline worker mid-stream
            import sklearn.ensemble  # noqa: F401

    def threshold_h(self, window_s: float) -> float:
        return self._thresholds(window_s)[0]

    def _thresholds(self, window_s: float) -> tuple[float, float]:
        """``(h, h_lr)``: the thresholds of the -ln p CUSUMs and of the likelihood-ratio ones."""
        hs = self._h.get(window_s)
        if hs is None:
            hs = self._h[window_s] = (self.config.h(window_s), self.config.h_lr(window_s))
        return hs

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        accs = self._open.setdefault(window.start_ns, {})
        for group in series_groups(records):
            self._acc(accs, group.series).add_group(group)

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        """Evaluation scores, per the judged call's series, into the evaluation's own window: they
        are tested when that window closes (replay and live alike; see ``Analyser``)."""
        scores = scores_by_series(evaluations)
        if not scores:
            return
        accs = self._open.setdefault(window.start_ns, {})
        for key, (vals, _) in scores.items():
            self._acc(accs, key).add_scores(vals)

    def _acc(self, accs: dict[SeriesKey, Acc], key: SeriesKey) -> Acc:
        """The window's accumulator of ``key`` (new series past ``max_series`` share the overflow one)."""
        acc = accs.get(key)
        if acc is None:
            if key not in self._series and len(self._series) + len(accs) >= self.config.max_series:
                key = OVERFLOW_KEY
                acc = accs.get(key)
            if acc is None:
                acc = accs[key] = Acc(self.config.max_values_per_window)
        return acc

    # -- per-signal tests ------------------------------------------------------------------------
    def _test(self, st: SeriesState, acc: Acc, lr: dict[str, float]) -> dict[str, float]:
        """``-ln p`` per signal the series can be tested on this window (references ready); the
        error rate's log-likelihood ratios go into ``lr``."""
        cfg = self.config
        e: dict[str, float] = {}
        if acc.n and st.err_n >= cfg.min_reference_calls:
            # -ln p still feeds the forest; the CUSUMs of the error rate run on likelihood ratios
            e[ERROR_RATE] = -ev.rate_logp(acc.errors, acc.n, st.err_k, st.err_n, ERROR_PRIOR, cfg.reference_confidence)
            r0 = ev.upper_rate(ERROR_PRIOR[0] + st.err_k, ERROR_PRIOR[1] + max(st.err_n - st.err_k, 0.0),
                               cfg.reference_confidence)
            for test, r1 in zip(ERROR_LR, ev.rate_alternatives(r0), strict=True):
                if r1 > r0:
                    lr[test] = ev.binom_llr(acc.errors, acc.n, r0, r1)
            st.explain[ERROR_RATE] = (acc.errors / acc.n, (ERROR_PRIOR[0] + st.err_k) / (sum(ERROR_PRIOR) + st.err_n))
            mix = {**acc.classes, NO_ERROR: acc.n - acc.errors}
            lp, cls = ev.category_logp(mix, st.classes, cfg.reference_confidence)
            e[ERROR_CLASS] = -lp
            if cls and cls != NO_ERROR:
                st.explain[ERROR_CLASS] = (mix.get(cls, 0) / acc.n, st.classes.get(cls, 0.0) / max(st.err_n, 1.0))
        for name, upward in NUMERIC_TESTS.items():
            vals = acc.values[name]
            ref = st.refs.get(name)
            if not vals or ref is None or len(ref.sorted) < cfg.min_reference_values:
                continue
            # two exceedance levels, each its own CUSUM: the 0.9 quantile sees small shifts of many
            # values, the 0.99 quantile large shifts of a few (a quiet series' 1-2 calls a window)
            for test, q in ((name, cfg.quantile), (name + TAIL, cfg.tail_quantile)):
                e[test] = -ev.exceedance_logp(vals, ref.sorted, q if upward else 1 - q, upward,
                                              cfg.reference_confidence)[0]
            # quantiles only when an alert needs them (see explanation): np.quantile costs ~50 us
            st.explain[name] = (vals, ref.sorted, EXPLAIN_Q if upward else 1 - EXPLAIN_Q)
        if acc.finish and st.finish_n >= cfg.min_reference_calls:
            lp, cat = ev.category_logp(acc.finish, st.finish, cfg.reference_confidence)
            e[FINISH_REASON] = -lp
            if cat:
                n = sum(acc.finish.values())
                window_share = (sum(c for k, c in acc.finish.items() if k not in st.finish) if cat == "_new"
                                else acc.finish.get(cat, 0)) / n
                st.explain[FINISH_REASON] = (window_share, st.finish.get(cat, 0.0) / st.finish_n)
        return e

    def _learn(self, st: SeriesState, acc: Acc) -> None:
        """Fold a clean window into the series' references (see the module docstring)."""
        cfg = self.config
        per_window = max(1, math.ceil(cfg.reference_values / cfg.refreeze_windows))
        for name in NUMERIC_TESTS:
            vals = acc.values[name]
            ref = st.refs.get(name)
            if ref is None:
                if not vals:
                    continue
                ref = st.refs[name] = NumRef(cfg.reference_values)
            room = cfg.reference_values - len(ref.sorted)
            if room > 0:
                # still growing (tested from min_reference_values on, against all values so far)
                ref.sorted = np.sort(np.concatenate([ref.sorted, np.asarray(vals[:room], dtype=float)]))
                continue
            ref.candidate.extend(vals[:per_window])
            ref.clean_since += 1
            if ref.clean_since >= cfg.refreeze_windows and len(ref.candidate) >= cfg.reference_values:
                ref.sorted = np.sort(np.asarray(ref.candidate, dtype=float))
                ref.clean_since = 0
        st.err_k += acc.errors
        st.err_n += acc.n
        for k, c in (*acc.classes.items(), (NO_ERROR, acc.n - acc.errors)):
            st.classes[k] = st.classes.get(k, 0.0) + c
        if st.err_n > cfg.max_reference_calls:
            f = cfg.max_reference_calls / st.err_n
            st.err_k *= f
            st.err_n = float(cfg.max_reference_calls)
            st.classes = {k: v * f for k, v in st.classes.items() if v * f >= 1e-3}
        if acc.finish:
            for k, c in acc.finish.items():
                st.finish[k] = st.finish.get(k, 0.0) + c
            st.finish_n += sum(acc.finish.values())
            if st.finish_n > cfg.max_reference_calls:
                f = cfg.max_reference_calls / st.finish_n
                st.finish = {k: v * f for k, v in st.finish.items() if v * f >= 1e-3}
                st.finish_n = sum(st.finish.values())

    # -- close -----------------------------------------------------------------------------------
    def close(self, window: Window) -> list[MetricPoint]:
        cfg = self.config
        accs = self._open.pop(window.start_ns, {})
        # windows older than this one can no longer be closed: drop them (bounded memory)
        for start in [s for s in self._open if s < window.start_ns]:
            del self._open[start]
        self._closes += 1
        self._maybe_refit()
        h, h_lr = self._thresholds((window.end_ns - window.start_ns) / 1e9 or 60.0)
        scored: list[tuple[SeriesKey, SeriesState, Acc, dict[str, float], dict[str, float]]] = []
        for key, acc in accs.items():
            if acc.n < cfg.min_calls and not acc.values[QUALITY]:
                continue  # a window of evaluations only (judged calls of earlier windows) still counts
            st = self._series.get(key)
            if st is None:
                st = self._series[key] = SeriesState()
                st.forest = deque(maxlen=cfg.history_windows)
            lr: dict[str, float] = {}
            scored.append((key, st, acc, self._test(st, acc, lr), lr))
        if not scored:
            return []
        vectors = np.asarray([[e.get(name, 0.0) for name in TESTED] for _, _, _, e, _ in scored])
        raw = -self._model.score_samples(vectors) if self._model is not None else None  # one batch
        out: list[MetricPoint] = []
        for i, (key, st, acc, e, lr) in enumerate(scored):
            if raw is not None and acc.n:  # the forest reads the call signals: none in evaluations alone
                a = float(raw[i])
                if len(st.forest) >= cfg.min_history:
                    e[IFOREST] = -ev.conformal_logp(a, st.forest)
                    st.explain[IFOREST] = (a, float(np.median(np.asarray(st.forest))))
            cap = CUSUM_CAP_H * h
            # a snapshot from before the likelihood-ratio CUSUMs holds the error rate's -ln p sum
            st.cusum.pop(ERROR_RATE, None)
            for name, x in e.items():
                if name != ERROR_RATE:
                    st.cusum[name] = min(cap, max(0.0, st.cusum.get(name, 0.0) + x - cfg.cusum_k))
            for name, x in lr.items():
                st.cusum[name] = min(CUSUM_CAP_H * h_lr, max(0.0, st.cusum.get(name, 0.0) + x))
            for name, s in st.cusum.items():
                if name not in e and name not in lr and s > 0:
                    # not testable this window (no values, or the forest's history restarting): no
                    # evidence is p = 1, so it drains like a normal window and cannot stick
                    st.cusum[name] = max(0.0, s - cfg.cusum_k)
            clean = all(s < (h_lr if LR in name else h) / 2 for name, s in st.cusum.items())
            if clean:
                self._learn(st, acc)
                if raw is not None and acc.n:
                    st.forest.append(float(raw[i]))
                if any(name in e for name in TESTED):
                    self._train.append(vectors[i])
            if not st.cusum:
                continue  # nothing testable yet (references still learning)
            out.extend(self._points(key, st, h, h_lr, window))
        return out

    def _points(self, key: SeriesKey, st: SeriesState, h: float, h_lr: float, window: Window) -> list[MetricPoint]:
        cfg = self.config
        attrs = series_attributes(key)
        scores: dict[str, float] = {}
        for test, s in st.cusum.items():
            name, lr, _ = test.removesuffix(TAIL).partition(LR)
            scores[name] = max(scores.get(name, 0.0), ev.evidence_score(s, h_lr if lr else h, cfg.threshold))
        top = max(scores, key=lambda n: (scores[n], n))
        score = scores[top]
        out = [MetricPoint("gensight.anomaly.score", GAUGE, "1", key.service, attrs, score,
                           window.start_ns, window.end_ns)]
        out.extend(MetricPoint("gensight.anomaly.signal", GAUGE, "1", key.service, (*attrs, ("signal", name)),
                               scores[name], window.start_ns, window.end_ns) for name in SIGNALS if name in scores)
        if self.alerts is not None:
            sid = series_id(key)
            active = score >= cfg.threshold
            if active or self.alerts.state_of("anomaly", sid) in (PENDING, FIRING):
                value, baseline = explanation(st.explain.get(top, (math.nan, math.nan)))
            else:
                value = baseline = math.nan  # not reported: no alert record carries it
            self.alerts.evaluate("anomaly", sid, active, value=score,
                                 threshold=cfg.threshold, time_ns=window.end_ns, severity=TICKET,
                                 service=key.service,
                                 attributes=(*attrs, ("gensight.alert.signal", top),
                                             ("gensight.alert.signal_value", value),
                                             ("gensight.alert.baseline", baseline)))
        return out

    def expire(self, keys: Iterable[SeriesKey]) -> None:
        """Series the pipeline forgot (idle): drop their references and evidence."""
        for key in keys:
            self._series.pop(key, None)

    def cusum(self, key: SeriesKey) -> dict[str, float]:
        """The accumulated evidence per signal of a series (tests, admin)."""
        st = self._series.get(key)
        return dict(st.cusum) if st else {}

    # -- isolation forest --------------------------------------------------------------------
    def _maybe_refit(self) -> None:
        cfg = self.config
        self._maybe_refit_done()
        if not cfg.iforest or len(self._train) < cfg.min_fit_rows:
            return
        due = self._model is None and self._future is None or self._closes % cfg.refit_every == 0
        if not due:
            return
        data = np.asarray(self._train)
        if cfg.refit == SYNC:
            self._swap_model(fit_forest(data, cfg))
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
            try:
                model = fut.result()
            except Exception:  # a failed fit keeps the previous model; never crash the pipeline
                return
            self._swap_model(model)

    def _swap_model(self, model: Any) -> None:
        """A new forest scores on another scale: the conformal histories start again with it."""
        self._model = model
        self.fits += 1
        for st in self._series.values():
            st.forest.clear()

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
            "series": {series_id(k): st.to_json() for k, st in self._series.items()},
            "train": np.asarray(self._train).tolist(),
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore references and evidence; the forest is refitted (seeded: the same model)."""
        cfg = self.config
        self._closes = int(data.get("closes", 0))
        self._series = {parse_series_id(sid): SeriesState.from_json(d, cfg.reference_values, cfg.history_windows) for sid, d in data.get("series", {}).items()}
        self._train.clear()
        self._train.extend(np.asarray(row, dtype=float) for row in data.get("train", []))
        if cfg.iforest and len(self._train) >= cfg.min_fit_rows:
            self._model = fit_forest(np.asarray(self._train), cfg)
            self.fits += 1


def fit_forest(data: np.ndarray, cfg: AnomalyConfig) -> Forest:
    return _fit_forest(data, cfg.n_estimators, cfg.max_samples, cfg.seed)
