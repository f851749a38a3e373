"""Live experiments: control vs treatment on the span stream, with always-valid statistics.

Config: ``analytics.experiments`` (:mod:`.experiment_config`; docs/analytics.md). The normaliser
puts each record's ``by`` value in ``CallRecord.extra`` (the pipeline configures it with
:func:`experiment_attributes`); evaluation results reach the experiment joined to the call they
judge (the ``observe_evaluations`` hook) and count for that call's arm. Per experiment and metric,
at each window close, the statistics *since the experiment's first call* are exported, valid
however often they are looked at — means and rates (including ``quality:<name>`` and
``pass_ratio:<name>``) by the mSPRT of :mod:`.sequential`, the latency quantiles by the quantile
confidence sequences of :mod:`.sequential_quantile`:

* ``gensight.experiment.samples`` (Sum, ``variant`` = control | treatment)
* ``gensight.experiment.difference`` (Gauge, treatment − control; ``bound`` = estimate | low | high)
* ``gensight.experiment.p_value`` (Gauge, the always-valid p-value: the running minimum)

A guardrail pages (``experiment_guardrail``) when the treatment is significantly worse than it
allows: the confidence sequence of treatment − (1 + max_relative) × control lies above 0 (for
quality metrics, where higher is better: treatment − (1 − max_relative) × control below 0). When
the primary metric's p-value first drops below alpha, one ``experiment_decided`` log record says
which side is better. All of it survives restarts through the analytics state file.

Memory per experiment is bounded whatever the traffic: per arm and mean metric three numbers, per
arm one latency histogram (≤ ``MAX_BUCKETS`` counters) shared by the quantile metrics, at most
``MAX_EVALUATION_NAMES`` evaluation names per wildcard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from gensight.processor.analyse.alerts import PAGE, AlertEngine
from gensight.processor.analyse.comparison import (
    LLM_KINDS,
    PASS_RATIO_PREFIX,
    QUALITY_PREFIX,
    higher_is_better,
)
from gensight.processor.analyse.experiment_config import (
    LIVE_METRICS,
    MAX_EVALUATION_NAMES,
    MEAN_METRICS,
    QUANTILE_METRICS,
    WILDCARD,
    ExperimentConfig,
    experiment_attributes,
    experiments_from_list,
    metric_unit,
)
from gensight.processor.analyse.sequential import Moments, SequentialResult, difference
from gensight.processor.analyse.sequential_quantile import LogHistogram, quantile_difference
from gensight.processor.points import GAUGE, SUM, Analyser, MetricPoint, Window
from gensight.processor.records import F_DURATION_S, F_EXTRA, CallRecord

__all__ = ["DECIDED_EVENT", "DIFFERENCE", "GUARDRAIL_ALERT", "LIVE_METRICS", "P_VALUE", "SAMPLES", "Decision",
           "ExperimentAnalyser", "ExperimentConfig", "decided_logs_request", "experiment_attributes",
           "experiments_from_list"]

SAMPLES = "gensight.experiment.samples"
DIFFERENCE = "gensight.experiment.difference"
P_VALUE = "gensight.experiment.p_value"
GUARDRAIL_ALERT = "experiment_guardrail"
DECIDED_EVENT = "experiment_decided"
CONTROL = "control"
TREATMENT = "treatment"
ARMS = (CONTROL, TREATMENT)


class Decision(NamedTuple):
    """An ``experiment_decided`` log record."""

    experiment: str
    metric: str
    better: str  # control | treatment
    estimate: float
    low: float
    high: float
    p_value: float
    n_control: int
    n_treatment: int
    time_ns: int
    service: str


class _Experiment:
    """Running state of one experiment: per arm the moments of each mean metric, one latency
    histogram for the quantile metrics, and the running-minimum p-value of each metric."""

    def __init__(self, config: ExperimentConfig, extra_index: int):
        self.config = config
        self.index = extra_index
        self.fields = [(m, MEAN_METRICS[m][0]) for m in config.metrics if m in MEAN_METRICS]
        self.quantiles = config.quantiles
        # mean metrics, evaluation ones added as their names appear
        self.moments: dict[str, dict[str, Moments]] = {arm: {m: Moments() for m, _ in self.fields} for arm in ARMS}
        self.latency = {arm: LogHistogram() for arm in ARMS}
        self.p_min: dict[str, float] = {}
        self.names: list[str] = []  # evaluation names a wildcard took, in arrival order
        self.values_dropped = 0  # evaluation values of names beyond MAX_EVALUATION_NAMES
        self.decided = False
        self.start_ns = 0  # start of the cumulative period: the first window with a call

    def identity(self) -> list[str]:
        c = self.config
        return [c.by, c.control, c.treatment]

    def metrics(self) -> list[str]:
        """The metrics to export, in config order; wildcard-taken evaluation names in place of
        their wildcard."""
        out: list[str] = []
        for m in self.config.metrics:
            if m.endswith(WILDCARD):
                prefix = m[:-len(WILDCARD)]
                out.extend(prefix + name for name in sorted(self.names) if prefix + name not in self.config.metrics)
            else:
                out.append(m)
        return out

    def _arm(self, rec: CallRecord) -> str | None:
        extra = rec[F_EXTRA]
        if len(extra) <= self.index:
            return None
        value = extra[self.index]
        c = self.config
        return CONTROL if value == c.control else TREATMENT if value == c.treatment else None

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        select = self.config.selector.matches
        # as in ``gensight compare``: LLM calls unless the selector names a kind (variant() also
        # tags tool and retrieval spans, whose latencies would blur a model's)
        kinds = None if self.config.selector.kind else LLM_KINDS
        batches: dict[str, dict[str, list[float]]] = {CONTROL: {}, TREATMENT: {}}
        for rec in records:
            arm = self._arm(rec)
            if arm is None or (kinds is not None and rec.kind not in kinds) or not select(rec):
                continue
            batch = batches[arm]
            for metric, f in self.fields:
                v: Any = rec[f]
                if v is not None:
                    batch.setdefault(metric, []).append(float(v))
            if self.quantiles:
                batch.setdefault(_LATENCY, []).append(rec[F_DURATION_S])
        self._add(window, batches)

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        """Joined evaluation results: each counts for the arm of the call it judges (any kind: an
        agent's whole answer is often what is judged) when the selector matches that call."""
        select = self.config.selector.matches
        batches: dict[str, dict[str, list[float]]] = {CONTROL: {}, TREATMENT: {}}
        for ev in evaluations:
            call = ev.call
            arm = self._arm(call) if call is not None else None
            if arm is None or not select(call):
                continue
            batch = batches[arm]
            for prefix, value in ((QUALITY_PREFIX, ev.score), (PASS_RATIO_PREFIX, _PASS_VALUE.get(ev.outcome))):
                if value is not None and self._takes(prefix, ev.name):
                    batch.setdefault(prefix + ev.name, []).append(float(value))
        self._add(window, batches)

    def _takes(self, prefix: str, name: str) -> bool:
        """Whether ``prefix + name`` is tracked (named in the config, or taken by its wildcard
        while fewer than ``MAX_EVALUATION_NAMES`` names are)."""
        metrics = self.config.metrics
        if prefix + name in metrics:
            return True
        if prefix + WILDCARD not in metrics:
            return False
        if name not in self.names:
            if len(self.names) >= MAX_EVALUATION_NAMES:
                self.values_dropped += 1
                return False
            self.names.append(name)
        return True

    def _add(self, window: Window, batches: dict[str, dict[str, list[float]]]) -> None:
        for arm, batch in batches.items():
            for metric, values in batch.items():
                if metric == _LATENCY:
                    self.latency[arm].add_batch(values)
                else:
                    self.moments[arm].setdefault(metric, Moments()).add_batch(values)
            if batch and not self.start_ns:
                self.start_ns = window.start_ns

    def samples(self, metric: str) -> tuple[int, int]:
        if metric in QUANTILE_METRICS:
            return self.latency[CONTROL].n, self.latency[TREATMENT].n
        c, t = self.moments[CONTROL].get(metric), self.moments[TREATMENT].get(metric)
        return (c.n if c else 0), (t.n if t else 0)

    def look(self, metric: str, alpha: float, max_relative: float | None = None) -> SequentialResult | None:
        """The always-valid look at treatment − control; with ``max_relative``, at treatment −
        (1 ± max_relative) × control, shifted towards the treatment being worse (a guardrail)."""
        scale = 1.0
        if max_relative is not None:
            scale = 1.0 - max_relative if higher_is_better(metric) else 1.0 + max_relative
        if metric in QUANTILE_METRICS:
            return quantile_difference(self.latency[CONTROL], self.latency[TREATMENT], QUANTILE_METRICS[metric],
                                       alpha, scale=scale)
        c, t = self.moments[CONTROL].get(metric), self.moments[TREATMENT].get(metric)
        if c is None or t is None:
            return None
        return difference(c, t, alpha, scale=scale)

    def relative(self, metric: str) -> float:
        """(treatment − control) / control of the point values (0 without a control value)."""
        if metric in QUANTILE_METRICS:
            q = QUANTILE_METRICS[metric]
            c, t = self.latency[CONTROL].quantile(q), self.latency[TREATMENT].quantile(q)
        else:
            mc, mt = self.moments[CONTROL].get(metric), self.moments[TREATMENT].get(metric)
            c, t = (mc.mean if mc else 0.0), (mt.mean if mt else 0.0)
        return (t - c) / c if c else 0.0


_LATENCY = "latency durations"  # batch key of the latency histogram's values (not a metric name: a space)
_PASS_VALUE = {"pass": 1.0, "fail": 0.0}  # pass_ratio: judge errors count in neither share


class ExperimentAnalyser(Analyser):
    """Every configured experiment; an analyser (observe/close) with export/import of its state."""

    def __init__(self, experiments: Sequence[ExperimentConfig], alerts: AlertEngine | None = None,
                 extra_attributes: Sequence[str] | None = None):
        attrs = tuple(extra_attributes) if extra_attributes is not None else _unique(e.by for e in experiments)
        self.experiments = {e.name: _Experiment(e, attrs.index(e.by)) for e in experiments}
        self.alerts = alerts
        # where ``experiment_decided`` records go at each close (the pipeline: OTLP logs); None = kept
        self.sink: Callable[[Any], None] | None = None
        self.decisions: list[Decision] = []

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        for exp in self.experiments.values():
            exp.observe(window, records)

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        for exp in self.experiments.values():
            exp.observe_evaluations(window, evaluations)

    def close(self, window: Window) -> list[MetricPoint]:
        out: list[MetricPoint] = []
        for name, exp in self.experiments.items():
            if exp.start_ns:
                out.extend(self._close_one(name, exp, window))
        if self.sink is not None and self.decisions:
            decisions, self.decisions = self.decisions, []
            self.sink(decided_logs_request(decisions))
        return out

    def _close_one(self, name: str, exp: _Experiment, window: Window) -> list[MetricPoint]:
        cfg, now = exp.config, window.end_ns
        svc = cfg.selector.resource_service()
        out = []
        for metric in exp.metrics():
            unit = metric_unit(metric)
            base = (("experiment", name), ("metric", metric))
            n_c, n_t = exp.samples(metric)
            for variant, n in ((CONTROL, n_c), (TREATMENT, n_t)):
                out.append(MetricPoint(SAMPLES, SUM, "{call}", svc, (*base, ("variant", variant)), float(n),
                                       exp.start_ns, now))
            look = exp.look(metric, cfg.alpha)
            ready = n_c >= cfg.min_samples and n_t >= cfg.min_samples
            p_min = exp.p_min.get(metric, 1.0)
            if look is not None and ready:
                p_min = exp.p_min[metric] = min(p_min, look.p_value)
            if look is not None:
                for bound, v in (("estimate", look.estimate), ("low", look.low), ("high", look.high)):
                    out.append(MetricPoint(DIFFERENCE, GAUGE, unit, svc, (*base, ("bound", bound)), v,
                                           window.start_ns, now))
            out.append(MetricPoint(P_VALUE, GAUGE, "1", svc, base, p_min, window.start_ns, now))
            if not ready or look is None:
                continue
            if metric == cfg.primary and not exp.decided and p_min < cfg.alpha:
                exp.decided = True
                treatment_higher = look.estimate > 0
                better = TREATMENT if treatment_higher == higher_is_better(metric) else CONTROL
                self.decisions.append(Decision(name, metric, better, look.estimate, look.low, look.high,
                                               p_min, n_c, n_t, now, svc))
            if metric in cfg.guardrails:
                self._guardrail(name, metric, exp, now, svc)
        return out

    def _guardrail(self, name: str, metric: str, exp: _Experiment, now: int, svc: str) -> None:
        if self.alerts is None:
            return
        cfg = exp.config
        max_relative = cfg.guardrails[metric]
        shifted = exp.look(metric, cfg.alpha, max_relative)
        worse = higher_is_better(metric)  # quality: worse is lower
        active = shifted is not None and (shifted.high < 0 if worse else shifted.low > 0)
        relative = exp.relative(metric)
        self.alerts.evaluate(GUARDRAIL_ALERT, f"{name}|{metric}", active, value=-relative if worse else relative,
                             threshold=max_relative, time_ns=now, severity=PAGE, service=svc,
                             attributes=(("experiment", name), ("metric", metric)))

    # -- state ------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        return {
            name: {"identity": exp.identity(), "start_ns": exp.start_ns, "decided": exp.decided,
                   "p_min": dict(exp.p_min), "names": list(exp.names),
                   "arms": {arm: {m: mo.to_list() for m, mo in metrics.items()} for arm, metrics in exp.moments.items()},
                   "latency": {arm: h.to_list() for arm, h in exp.latency.items()}}
            for name, exp in self.experiments.items()
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore experiments whose ``by``/control/treatment are unchanged (a redefined experiment
        starts over: its old samples answer another question); metrics no longer configured are
        left out."""
        for name, d in data.items():
            exp = self.experiments.get(name)
            if exp is None or d.get("identity") != exp.identity():
                continue
            exp.start_ns = int(d.get("start_ns", 0))
            exp.decided = bool(d.get("decided", False))
            cfg = exp.config
            exp.names = [n for n in d.get("names", []) if isinstance(n, str)][:MAX_EVALUATION_NAMES]
            for metric, p in d.get("p_min", {}).items():
                if cfg.tracks(metric):
                    exp.p_min[metric] = float(p)
            for arm, metrics in d.get("arms", {}).items():
                for metric, moments in metrics.items():
                    if arm in exp.moments and cfg.tracks(metric) and metric not in QUANTILE_METRICS:
                        exp.moments[arm][metric] = Moments.from_list(moments)
            if cfg.quantiles:
                for arm, counts in d.get("latency", {}).items():
                    if arm in exp.latency:
                        exp.latency[arm] = LogHistogram.from_list(counts)


def _unique(items: Any) -> tuple[str, ...]:
    out: list[str] = []
    for x in items:
        if x not in out:
            out.append(x)
    return tuple(out)


def decided_logs_request(decisions: Sequence[Decision]) -> Any:
    """OTLP ``ExportLogsServiceRequest``: one ``experiment_decided`` record per decision."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportLogsServiceRequest()
    for d in decisions:
        rl = req.resource_logs.add()
        rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=d.service)))
        scope_logs = rl.scope_logs.add()
        scope_logs.scope.name = "gensight.processor.experiments"
        rec = scope_logs.log_records.add()
        rec.time_unix_nano = rec.observed_time_unix_nano = d.time_ns
        rec.severity_number = 9  # type: ignore[assignment]  # INFO
        rec.severity_text = "INFO"
        rec.event_name = DECIDED_EVENT
        rec.body.string_value = (f"experiment {d.experiment}: {d.better} is better on {d.metric} "
                                 f"(difference {d.estimate:.4g}, [{d.low:.4g}, {d.high:.4g}], p {d.p_value:.3g})")
        attrs: list[tuple[str, Any]] = [
            ("experiment", d.experiment), ("metric", d.metric), ("gensight.experiment.better", d.better),
            ("gensight.experiment.difference", d.estimate), ("gensight.experiment.low", d.low),
            ("gensight.experiment.high", d.high), ("gensight.experiment.p_value", d.p_value),
            ("gensight.experiment.n_control", d.n_control), ("gensight.experiment.n_treatment", d.n_treatment),
        ]
        for k, v in attrs:
            av = AnyValue(double_value=v) if isinstance(v, float) else AnyValue(int_value=v) if isinstance(v, int) \
                else AnyValue(string_value=v)
            rec.attributes.append(KeyValue(key=k, value=av))
    return req
