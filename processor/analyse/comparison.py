"""Offline A/B comparison of two arms of recorded GenAI calls (``gensight compare``).

Arms are the values of one attribute (``--by``): each call record's ``extra`` holds it (the
normaliser reads it from the span, else the resource). :class:`ArmCollector` gathers per-arm
values, bounded; :func:`compare_arms` turns two arms into one :class:`Comparison` — per metric the
arm values, the difference with an interval, a p-value from the test that fits the metric
(:mod:`gensight.processor.analyse.experiment_stats`), Holm-adjusted p-values, which side is
better and the minimum detectable effect — whose :meth:`Comparison.to_json` is the ``--json``
contract.

Evaluation results (``gen_ai.evaluation.result``, as span events or as OTLP log records) are
joined to the calls they judge by the processor's own join (``pipeline/evaluations.py``: span id,
else ``gen_ai.response.id``); :meth:`ArmCollector.add_evaluations` takes the joined ones. They
give ``quality:<name>`` (mean score) and ``pass_ratio:<name>`` (passed / (passed + failed) by the
pass rule of ``EvaluationsConfig``, as the live ``gensight.sli.quality_pass_ratio``) metrics.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gensight.processor.analyse import experiment_stats as st
from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.records import CHAT, EMBEDDINGS, F_EXTRA, TEXT_COMPLETION, CallRecord

# calls compared unless --where selects an operation: LLM calls, not tools / retrievals / agents
LLM_KINDS = frozenset((CHAT, TEXT_COMPLETION, EMBEDDINGS))
OPERATION_KEY = "gen_ai.operation.name"
# bounds: distinct arm values and evaluation names kept (the rest counted as overflow)
MAX_ARMS = 1000
MAX_EVALUATIONS = 50

# metric name -> (kind, quantile); "rate" | "mean" | "quantile"
CALL_METRICS: dict[str, tuple[str, float]] = {
    "error_rate": ("rate", 0.0),
    "latency_mean_s": ("mean", 0.0),
    "latency_p50_s": ("quantile", 0.5),
    "latency_p95_s": ("quantile", 0.95),
    "ttfc_s": ("mean", 0.0),
    "cost_per_call_usd": ("mean", 0.0),
    "input_tokens": ("mean", 0.0),
    "output_tokens": ("mean", 0.0),
}
QUALITY_PREFIX = "quality:"
PASS_RATIO_PREFIX = "pass_ratio:"
MIN_VALUES = 2  # per arm, for a metric to be reported


def higher_is_better(metric: str) -> bool:
    return metric.startswith((QUALITY_PREFIX, PASS_RATIO_PREFIX))


@dataclass
class Arm:
    """Values of one arm, as compact arrays (a day of calls fits)."""

    calls: int = 0
    errors: int = 0
    latency_s: array = field(default_factory=lambda: array("d"))
    ttfc_s: array = field(default_factory=lambda: array("d"))
    cost_usd: array = field(default_factory=lambda: array("d"))
    input_tokens: array = field(default_factory=lambda: array("d"))
    output_tokens: array = field(default_factory=lambda: array("d"))
    scores: dict[str, array] = field(default_factory=dict)
    passes: dict[str, list[int]] = field(default_factory=dict)  # name -> [passed, passed + failed]

    def add(self, rec: CallRecord) -> None:
        self.calls += 1
        self.errors += rec.error
        self.latency_s.append(rec.duration_s)
        if rec.ttfc_s is not None:
            self.ttfc_s.append(rec.ttfc_s)
        if rec.cost_usd is not None:
            self.cost_usd.append(rec.cost_usd)
        if rec.input_tokens is not None:
            self.input_tokens.append(rec.input_tokens)
        if rec.output_tokens is not None:
            self.output_tokens.append(rec.output_tokens)

    def add_evaluation(self, name: str, score: float | None, outcome: str) -> bool:
        """Record one evaluation result (``outcome``: ``pass`` | ``fail`` | ``error``, the join's
        pass rule; errors count in neither share); False when it was dropped (too many names)."""
        if name not in self.scores and len(self.scores) >= MAX_EVALUATIONS:
            return False
        scores = self.scores.setdefault(name, array("d"))
        passes = self.passes.setdefault(name, [0, 0])
        if score is not None and math.isfinite(score):
            scores.append(score)
        if outcome in ("pass", "fail"):
            passes[0] += outcome == "pass"
            passes[1] += 1
        return True


class ArmCollector:
    """Groups records (and evaluation results) by the value of the ``by`` attribute, filtered by
    ``where`` (key -> value, all must match). ``extra`` order: ``by`` first, then the where keys."""

    def __init__(self, by: str, where: dict[str, str]):
        self.by = by
        self.where = dict(where)
        self.where_values = tuple(where.values())
        self.kinds = None if OPERATION_KEY in where else LLM_KINDS
        self.arms: dict[str, Arm] = {}
        self.without_value = 0  # calls without the ``by`` attribute
        self.overflow = 0  # calls of arm values beyond MAX_ARMS
        self.evaluations = 0  # joined evaluation results counted for an arm
        self.evaluations_dropped = 0  # of names beyond MAX_EVALUATIONS
        self.join: Any = None  # the EvaluationJoin that fed ``add_evaluations`` (its counts), if any

    @property
    def extra_attributes(self) -> tuple[str, ...]:
        """The normaliser's ``extra_attributes`` for this collector."""
        return (self.by, *self.where)

    def _arm(self, value: str | None, count: bool = True) -> Arm | None:
        """The arm of ``value``; ``count``: a call (counted when it has no arm), not an evaluation."""
        if value is None:
            self.without_value += count
            return None
        arm = self.arms.get(value)
        if arm is None:
            if len(self.arms) >= MAX_ARMS:
                self.overflow += count
                return None
            arm = self.arms[value] = Arm()
        return arm

    def add_records(self, records: Iterable[CallRecord]) -> None:
        kinds, want = self.kinds, self.where_values
        for rec in records:
            if kinds is not None and rec.kind not in kinds:
                continue
            extra = rec[F_EXTRA]
            if extra[1:] != want:
                continue
            arm = self._arm(extra[0])
            if arm is not None:
                arm.add(rec)

    def add_evaluations(self, evaluations: Iterable[Evaluation]) -> None:
        """Evaluation results joined to their calls (``EvaluationJoin``): each counts for the arm
        of the call it judges, whatever the call's kind (an agent's whole answer is often what is
        judged), when that call passes ``where``."""
        want = self.where_values
        for ev in evaluations:
            if ev.call is None:
                continue
            extra = ev.call[F_EXTRA]
            if extra[1:] != want:
                continue
            arm = self._arm(extra[0], count=False)
            if arm is None:
                continue
            self.evaluations += 1
            if not arm.add_evaluation(ev.name, ev.score, ev.outcome):
                self.evaluations_dropped += 1

    def pick(self, control: str | None, treatment: str | None) -> tuple[str, str]:
        """The two arms to compare: the given values, else the two most frequent (ties: by name)."""
        ranked = sorted(self.arms, key=lambda v: (-self.arms[v].calls, v))
        if control is None and treatment is None:
            if len(ranked) < 2:
                raise ValueError(f"fewer than two values of {self.by!r} found: {ranked}")
            return ranked[0], ranked[1]
        if control is None or treatment is None:
            other = [v for v in ranked if v != (control or treatment)]
            if not other:
                raise ValueError(f"no second value of {self.by!r} found besides {control or treatment!r}")
            return (control or other[0], treatment or other[0])
        return control, treatment


@dataclass(frozen=True)
class MetricResult:
    metric: str
    control: float
    treatment: float
    difference: float
    relative: float | None
    ci_low: float
    ci_high: float
    p_value: float
    p_value_adjusted: float
    significant: bool
    better: str | None
    mde: float


@dataclass(frozen=True)
class Comparison:
    by: str
    control: str
    treatment: str
    n_control: int
    n_treatment: int
    srm_p_value: float | None
    alpha: float
    metrics: tuple[MetricResult, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``gensight compare --json`` document (the issue's contract, key order included)."""
        return {
            "by": self.by, "control": self.control, "treatment": self.treatment,
            "n": {"control": self.n_control, "treatment": self.n_treatment},
            "srm_p_value": self.srm_p_value,
            "metrics": [
                {"metric": m.metric, "control": m.control, "treatment": m.treatment, "difference": m.difference,
                 "relative": m.relative, "ci_low": m.ci_low, "ci_high": m.ci_high, "p_value": m.p_value,
                 "p_value_adjusted": m.p_value_adjusted, "significant": m.significant, "better": m.better,
                 "mde": m.mde}
                for m in self.metrics
            ],
        }


def _sorted(values: array) -> np.ndarray:
    """An arm's evaluation scores in order: the report depends on the scores, not on the order the
    join released them in (waiting evaluations leave in hash order as their calls arrive)."""
    return np.sort(np.frombuffer(values))


def _estimates(a: Arm, b: Arm, alpha: float, resamples: int) -> list[tuple[str, st.Estimate]]:
    out: list[tuple[str, st.Estimate]] = []
    if a.calls >= MIN_VALUES and b.calls >= MIN_VALUES:
        out.append(("error_rate", st.two_proportions(a.errors, a.calls, b.errors, b.calls, alpha)))
    sources = {"latency_mean_s": "latency_s", "latency_p50_s": "latency_s", "latency_p95_s": "latency_s",
               "ttfc_s": "ttfc_s", "cost_per_call_usd": "cost_usd", "input_tokens": "input_tokens",
               "output_tokens": "output_tokens"}
    for metric, attr in sources.items():
        x, y = getattr(a, attr), getattr(b, attr)
        if len(x) < MIN_VALUES or len(y) < MIN_VALUES:
            continue
        kind, q = CALL_METRICS[metric]
        xs, ys = np.frombuffer(x), np.frombuffer(y)
        if kind == "quantile":
            out.append((metric, st.quantile_difference(xs, ys, quantile=q, alpha=alpha)))
        else:
            out.append((metric, st.bootstrap_difference(xs, ys, alpha=alpha, resamples=resamples)))
    for name in sorted(set(a.scores) & set(b.scores)):
        x, y = a.scores[name], b.scores[name]
        if len(x) >= MIN_VALUES and len(y) >= MIN_VALUES:
            out.append((QUALITY_PREFIX + name, st.bootstrap_difference(_sorted(x), _sorted(y),
                                                                       alpha=alpha, resamples=resamples)))
        (pa, na), (pb, nb) = a.passes[name], b.passes[name]
        if na >= MIN_VALUES and nb >= MIN_VALUES:
            out.append((PASS_RATIO_PREFIX + name, st.two_proportions(pa, na, pb, nb, alpha)))
    return out


def compare_arms(by: str, control: str, treatment: str, a: Arm, b: Arm, *, alpha: float = st.DEFAULT_ALPHA,
                 split: float | None = None, resamples: int = st.BOOTSTRAP_RESAMPLES) -> Comparison:
    """Compare arm ``b`` (treatment) with arm ``a`` (control) on every metric both have data for."""
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    estimates = _estimates(a, b, alpha, resamples)
    adjusted = st.holm([e.p_value for _, e in estimates])
    results = []
    for (metric, e), p_adj in zip(estimates, adjusted, strict=True):
        significant = p_adj < alpha
        better = None
        if significant and e.difference != 0:
            treatment_lower = e.difference < 0
            better = "treatment" if treatment_lower != higher_is_better(metric) else "control"
        # plain Python numbers: numpy scalars would leak into the --json output
        results.append(MetricResult(
            metric, float(e.control), float(e.treatment), float(e.difference),
            float(e.difference / e.control) if e.control else None, float(e.ci_low), float(e.ci_high),
            float(e.p_value), float(p_adj), bool(significant), better,
            float(st.minimum_detectable_effect(e.standard_error, alpha)),
        ))
    srm = st.sample_ratio_p(a.calls, b.calls, split) if split is not None else None
    return Comparison(by, control, treatment, a.calls, b.calls, srm, alpha, tuple(results))


def parse_where(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings -> dict; ValueError naming the bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--where {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out
