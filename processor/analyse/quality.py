"""Quality SLIs: evaluation results per series and evaluation name, in their own event-time window.

An evaluation (``gen_ai.evaluation.result``) joined to the call it judges (see
``pipeline/evaluations.py``) counts for the call's series — service x kind x provider x model —
under its ``gen_ai.evaluation.name``, in the window of the evaluation's *own* time (a judge that
runs five minutes after the call reports quality "as of" its run, which is what a trend of
quality over time has to mean for replay and live to agree). Per window:

* ``gensight.sli.quality`` (Gauge, ``1``): mean ``gen_ai.evaluation.score.value`` of the
  evaluations that carry a score;
* ``gensight.sli.quality_pass_ratio`` (Gauge, ``1``): passed / (passed + failed), the pass rule
  of ``EvaluationsConfig`` (a label in ``pass_labels``, else a score at or above the name's
  threshold); evaluations with ``error.type`` (the judge failed) count in neither;
* ``gensight.evaluations`` (Sum, ``{evaluation}``, cumulative since the series' first evaluation):
  by ``gen_ai.evaluation.score.label`` (when present; capped at ``max_labels`` per series and name,
  more fold into ``_OTHER``) and ``outcome`` = ``pass`` | ``fail`` | ``error``.

Evaluation names are capped per series (``max_names_per_series``; more fold into ``_other``).

The hook for detectors (drift, anomaly, trends): any analyser may implement
``observe_evaluations(window, evaluations)``; :func:`aggregate` turns that list into the same
per-(series, name) :class:`QualityStats` this module exports (count, score sum, passes, fails), so
a detector reads quality exactly as the SLI defines it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gensight.processor.export.metric_builder import series_attributes
from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.pipeline.evaluations import EvaluationsConfig
from gensight.processor.points import GAUGE, SUM, MetricPoint, Window
from gensight.processor.records import CallRecord, SeriesKey

EVALUATIONS = "gensight.evaluations"
SLI_QUALITY = "gensight.sli.quality"
SLI_QUALITY_PASS_RATIO = "gensight.sli.quality_pass_ratio"
EVALUATION_NAME_ATTR = "gen_ai.evaluation.name"
LABEL_ATTR = "gen_ai.evaluation.score.label"
OTHER_NAME = "_other"
OTHER_LABEL = "_OTHER"
OUTCOMES = ("pass", "fail", "error")


@dataclass
class QualityStats:
    """One (series, evaluation name) in one window."""

    count: int = 0
    score_sum: float = 0.0
    score_n: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    labels: dict[tuple[str | None, str], int] = field(default_factory=dict)  # (label, outcome) -> n

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.score_n if self.score_n else None

    @property
    def pass_ratio(self) -> float | None:
        judged = self.passed + self.failed
        return self.passed / judged if judged else None


def series_key(call: CallRecord) -> SeriesKey:
    return SeriesKey(call.service, call.kind, call.provider, call.target)


def aggregate(evaluations: Sequence[Evaluation], config: EvaluationsConfig,
              names: dict[SeriesKey, set[str]] | None = None) -> dict[tuple[SeriesKey, str], QualityStats]:
    """Per (series, evaluation name) stats of joined ``evaluations``. ``names``: the names seen
    so far per series (updated; caps names at ``config.max_names_per_series``)."""
    names = {} if names is None else names
    out: dict[tuple[SeriesKey, str], QualityStats] = {}
    max_names = config.max_names_per_series
    for ev in evaluations:
        if ev.call is None:
            continue
        key = series_key(ev.call)
        seen = names.get(key)
        if seen is None:
            seen = names[key] = set()
        name = ev.name
        if name not in seen:
            if len(seen) >= max_names:
                name = OTHER_NAME
            else:
                seen.add(name)
        st = out.get((key, name))
        if st is None:
            st = out[(key, name)] = QualityStats()
        outcome = ev.outcome or config.outcome(ev)
        st.count += 1
        if ev.score is not None:
            st.score_sum += ev.score
            st.score_n += 1
        if outcome == "pass":
            st.passed += 1
        elif outcome == "fail":
            st.failed += 1
        else:
            st.errors += 1
        lk = (ev.label, outcome)
        st.labels[lk] = st.labels.get(lk, 0) + 1
    return out


class _Cumulative:
    __slots__ = ("start_ns", "counts")

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.counts: dict[tuple[str | None, str], int] = {}


class QualityAnalyser:
    """The quality SLIs (module docstring). Implements ``Analyser`` + ``observe_evaluations``."""

    def __init__(self, config: EvaluationsConfig | None = None) -> None:
        self.config = config or EvaluationsConfig()
        self._windows: dict[int, list[Evaluation]] = {}
        self._names: dict[SeriesKey, set[str]] = {}
        self._cum: dict[tuple[SeriesKey, str], _Cumulative] = {}

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        return None

    def observe_evaluations(self, window: Window, evaluations: Sequence[Evaluation]) -> None:
        self._windows.setdefault(window.start_ns, []).extend(evaluations)

    def close(self, window: Window) -> list[MetricPoint]:
        evals = self._windows.pop(window.start_ns, None)
        if not evals:
            return []
        stats = aggregate(evals, self.config, self._names)
        points: list[MetricPoint] = []
        s, e = window.start_ns, window.end_ns
        for (key, name), st in sorted(stats.items()):
            attrs = (*series_attributes(key), (EVALUATION_NAME_ATTR, name))
            svc = key.service
            if (mean := st.mean_score) is not None:
                points.append(MetricPoint(SLI_QUALITY, GAUGE, "1", svc, attrs, mean, s, e))
            if (ratio := st.pass_ratio) is not None:
                points.append(MetricPoint(SLI_QUALITY_PASS_RATIO, GAUGE, "1", svc, attrs, ratio, s, e))
            cum = self._cum.get((key, name))
            if cum is None:
                cum = self._cum[(key, name)] = _Cumulative(s)
            for (label, outcome), n in st.labels.items():
                if label is not None and (label, outcome) not in cum.counts and \
                        len({lb for lb, _ in cum.counts}) >= self.config.max_labels:
                    label = OTHER_LABEL
                cum.counts[(label, outcome)] = cum.counts.get((label, outcome), 0) + n
            for (label, outcome), n in sorted(cum.counts.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
                extra = ((LABEL_ATTR, label),) if label is not None else ()
                points.append(MetricPoint(EVALUATIONS, SUM, "{evaluation}", svc,
                                          (*attrs, *extra, ("outcome", outcome)), float(n), cum.start_ns, e))
        return points

    def expire(self, keys: Sequence[SeriesKey]) -> None:
        gone = set(keys)
        for k in [k for k in self._cum if k[0] in gone]:
            del self._cum[k]
        for key in gone:
            self._names.pop(key, None)


def build(config: Any, context: Any) -> list[Any]:
    """Analyser factory for ``pipeline.ANALYSER_FACTORIES``: the quality SLIs, when evaluations are on."""
    cfg = getattr(config, "evaluations", None)
    if cfg is None or not cfg.enabled:
        return []
    return [QualityAnalyser(cfg)]
