"""Live experiments: control vs treatment on the span stream, with always-valid statistics.

Config (``analytics.experiments``; see docs/analytics.md)::

    experiments:
      - name: small-model
        by: feature_flag.result.variant      # any span or resource attribute
        control: large
        treatment: small
        selector: {service: checkout}        # as for SLOs (optional)
        metrics: [error_rate, latency_mean_s, cost_per_call_usd]   # default: all live metrics
        primary: cost_per_call_usd           # default: the first metric
        guardrails: {error_rate: {max_relative: 0.2}, latency_mean_s: {max_relative: 0.1}}
        alpha: 0.05
        min_samples: 100                     # per arm, before any decision or alert

The normaliser puts each record's ``by`` value in ``CallRecord.extra`` (the pipeline configures it
with :func:`experiment_attributes`). Per experiment and metric, at each window close, the
statistics *since the experiment's first call* are exported (:mod:`.sequential`: mSPRT p-values
and confidence sequences, valid however often they are looked at):

* ``gensight.experiment.samples`` (Sum, ``variant`` = control | treatment)
* ``gensight.experiment.difference`` (Gauge, treatment − control; ``bound`` = estimate | low | high)
* ``gensight.experiment.p_value`` (Gauge, the always-valid p-value: the running minimum)

A guardrail pages (``experiment_guardrail``) when the treatment is significantly worse than it
allows: the confidence sequence of treatment − (1 + max_relative) × control lies above 0. When the
primary metric's p-value first drops below alpha, one ``experiment_decided`` log record says which
side is better. All of it survives restarts through the analytics state file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gensight.processor.analyse.alerts import PAGE, AlertEngine
from gensight.processor.analyse.comparison import LLM_KINDS
from gensight.processor.analyse.sequential import Moments, difference
from gensight.processor.config_fields import Section, build_section, check, fmt, reject_unknown
from gensight.processor.labels import Selector, with_selector
from gensight.processor.points import GAUGE, SUM, Analyser, MetricPoint, Window
from gensight.processor.records import (
    F_COST_USD,
    F_DURATION_S,
    F_ERROR,
    F_EXTRA,
    F_INPUT_TOKENS,
    F_OUTPUT_TOKENS,
    F_TTFC_S,
    CallRecord,
)

SAMPLES = "gensight.experiment.samples"
DIFFERENCE = "gensight.experiment.difference"
P_VALUE = "gensight.experiment.p_value"
GUARDRAIL_ALERT = "experiment_guardrail"
DECIDED_EVENT = "experiment_decided"

# live metrics -> (record field, unit). Quantiles need every value: they are offline only (compare).
LIVE_METRICS: dict[str, tuple[int, str]] = {
    "error_rate": (F_ERROR, "1"),
    "latency_mean_s": (F_DURATION_S, "s"),
    "ttfc_s": (F_TTFC_S, "s"),
    "cost_per_call_usd": (F_COST_USD, "USD"),
    "input_tokens": (F_INPUT_TOKENS, "{token}"),
    "output_tokens": (F_OUTPUT_TOKENS, "{token}"),
}
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 100
MAX_EXPERIMENTS = 50
MIN_SAMPLES_FLOOR = 2  # per arm: a variance needs two
CONTROL = "control"
TREATMENT = "treatment"


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """One entry of ``analytics.experiments`` (named ``analytics.experiments[i]``)."""

    name: str
    by: str
    control: str
    treatment: str
    selector: Selector = field(default_factory=Selector)
    metrics: tuple[str, ...] = tuple(LIVE_METRICS)
    primary: str = "error_rate"  # from YAML: the first of ``metrics`` unless given
    guardrails: Mapping[str, float] = field(default_factory=dict)  # metric -> max_relative
    alpha: float = DEFAULT_ALPHA
    min_samples: int = DEFAULT_MIN_SAMPLES

    @classmethod
    def from_mapping(cls, data: Any, key: str) -> ExperimentConfig:
        """As ``Section.from_mapping``; ``guardrails`` is ``{metric: {max_relative: x}}`` in YAML."""
        data = with_selector(data, key)
        if isinstance(data, Mapping):
            data = dict(data)
            metrics = data.get("metrics")
            if "primary" not in data and isinstance(metrics, list) and metrics:
                data["primary"] = metrics[0]
            if "guardrails" in data:
                data["guardrails"] = _guardrails(data["guardrails"], f"{key}.guardrails")
        return build_section(cls, data, key)

    def validate(self, key: str) -> None:
        for name in ("name", "by", "control", "treatment"):
            check(bool(getattr(self, name)), f"{key}.{name}", "required, a non-empty string")
        check(self.control != self.treatment, f"{key}.treatment", "must differ from control")
        check(bool(self.metrics), f"{key}.metrics", f"must be a non-empty list of {', '.join(LIVE_METRICS)}")
        for i, m in enumerate(self.metrics):
            check(m in LIVE_METRICS, f"{key}.metrics[{i}]", f"unknown metric {m!r} (live metrics: {', '.join(LIVE_METRICS)})")
        check(self.primary in self.metrics, f"{key}.primary",
              f"must be one of the experiment's metrics, got {self.primary!r}")
        for metric in self.guardrails:
            check(metric in self.metrics, f"{key}.guardrails.{metric}", "not one of the experiment's metrics")
        check(0 < self.alpha < 1, f"{key}.alpha", f"must be in (0, 1), got {fmt(self.alpha)}")
        check(self.min_samples >= MIN_SAMPLES_FLOOR, f"{key}.min_samples",
              f"must be an integer >= {MIN_SAMPLES_FLOOR}, got {self.min_samples!r}")


def _guardrails(raw: Any, key: str) -> dict[str, float]:
    """``{metric: {max_relative: x}}`` -> ``{metric: x}``, each checked and named."""
    check(isinstance(raw, Mapping), key, "must be a mapping of metric -> {max_relative: x}")
    out = {}
    for metric, rule in raw.items():
        w = f"{key}.{metric}"
        check(isinstance(rule, Mapping), w, "must be a mapping {max_relative: x}")
        reject_unknown(rule, ("max_relative",), w)
        v = rule.get("max_relative")
        check(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 100, f"{w}.max_relative",
              "required, a number >= 0 (0.2 = 20 % worse than control)")
        out[str(metric)] = float(v)
    return out


def experiments_from_list(raw: Any, where: str = "analytics.experiments") -> tuple[ExperimentConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}: must be a list")
    if len(raw) > MAX_EXPERIMENTS:
        raise ValueError(f"{where}: at most {MAX_EXPERIMENTS} experiments")
    out = tuple(ExperimentConfig.from_mapping(e, f"{where}[{i}]") for i, e in enumerate(raw))
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: experiment names must be unique")
    return out


def experiment_attributes(config: Any) -> tuple[str, ...]:
    """The normaliser's ``extra_attributes`` for a processor config: the experiments' ``by``
    attributes, unique, in config order (empty without experiments: the normaliser skips the work).
    Unvalidated input is ignored here; the analytics factory reports it."""
    raw = (getattr(config, "analytics", None) or {}).get("experiments") if config is not None else None
    out: list[str] = []
    for e in raw if isinstance(raw, list) else ():
        by = e.get("by") if isinstance(e, Mapping) else None
        if isinstance(by, str) and by and by not in out:
            out.append(by)
    return tuple(out)


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
    """Running state of one experiment: per arm and metric moments, running-min p-values."""

    def __init__(self, config: ExperimentConfig, extra_index: int):
        self.config = config
        self.index = extra_index
        self.fields = [(m, LIVE_METRICS[m][0]) for m in config.metrics]
        self.arms = {CONTROL: {m: Moments() for m in config.metrics}, TREATMENT: {m: Moments() for m in config.metrics}}
        self.p_min = dict.fromkeys(config.metrics, 1.0)
        self.decided = False
        self.start_ns = 0  # start of the cumulative period: the first window with a call

    def identity(self) -> list[str]:
        c = self.config
        return [c.by, c.control, c.treatment]

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        c = self.config
        arm_of = {c.control: CONTROL, c.treatment: TREATMENT}
        index, select = self.index, c.selector.matches
        # as in ``gensight compare``: LLM calls unless the selector names a kind (variant() also
        # tags tool and retrieval spans, whose latencies would blur a model's)
        kinds = None if c.selector.kind else LLM_KINDS
        batches: dict[str, dict[str, list[float]]] = {CONTROL: {}, TREATMENT: {}}
        for rec in records:
            extra = rec[F_EXTRA]
            arm = arm_of.get(extra[index]) if len(extra) > index else None
            if arm is None or (kinds is not None and rec.kind not in kinds) or not select(rec):
                continue
            batch = batches[arm]
            for metric, f in self.fields:
                v: Any = rec[f]
                if v is not None:
                    batch.setdefault(metric, []).append(float(v))
        for arm, batch in batches.items():
            for metric, values in batch.items():
                self.arms[arm][metric].add_batch(values)
            if batch and not self.start_ns:
                self.start_ns = window.start_ns


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
        for metric in cfg.metrics:
            unit = LIVE_METRICS[metric][1]
            base = (("experiment", name), ("metric", metric))
            c, t = exp.arms[CONTROL][metric], exp.arms[TREATMENT][metric]
            for variant, m in ((CONTROL, c), (TREATMENT, t)):
                out.append(MetricPoint(SAMPLES, SUM, "{call}", svc, (*base, ("variant", variant)), float(m.n),
                                       exp.start_ns, now))
            look = difference(c, t, cfg.alpha)
            ready = c.n >= cfg.min_samples and t.n >= cfg.min_samples
            if look is not None and ready:
                exp.p_min[metric] = min(exp.p_min[metric], look.p_value)
            if look is not None:
                for bound, v in (("estimate", look.estimate), ("low", look.low), ("high", look.high)):
                    out.append(MetricPoint(DIFFERENCE, GAUGE, unit, svc, (*base, ("bound", bound)), v,
                                           window.start_ns, now))
            out.append(MetricPoint(P_VALUE, GAUGE, "1", svc, base, exp.p_min[metric], window.start_ns, now))
            if not ready or look is None:
                continue
            if metric == cfg.primary and not exp.decided and exp.p_min[metric] < cfg.alpha:
                exp.decided = True
                better = TREATMENT if look.estimate < 0 else CONTROL  # every live metric: lower is better
                self.decisions.append(Decision(name, metric, better, look.estimate, look.low, look.high,
                                               exp.p_min[metric], c.n, t.n, now, svc))
            if metric in cfg.guardrails:
                self._guardrail(name, metric, cfg, c, t, now, svc)
        return out

    def _guardrail(self, name: str, metric: str, cfg: ExperimentConfig, c: Moments, t: Moments, now: int,
                   svc: str) -> None:
        if self.alerts is None:
            return
        max_relative = cfg.guardrails[metric]
        shifted = difference(c, t, cfg.alpha, scale=1.0 + max_relative)
        active = shifted is not None and shifted.low > 0
        relative = (t.mean - c.mean) / c.mean if c.mean else 0.0
        self.alerts.evaluate(GUARDRAIL_ALERT, f"{name}|{metric}", active, value=relative, threshold=max_relative,
                             time_ns=now, severity=PAGE, service=svc,
                             attributes=(("experiment", name), ("metric", metric)))

    # -- state ------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        return {
            name: {"identity": exp.identity(), "start_ns": exp.start_ns, "decided": exp.decided,
                   "p_min": dict(exp.p_min),
                   "arms": {arm: {m: mo.to_list() for m, mo in metrics.items()} for arm, metrics in exp.arms.items()}}
            for name, exp in self.experiments.items()
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore experiments whose ``by``/control/treatment are unchanged (a redefined experiment
        starts over: its old samples answer another question)."""
        for name, d in data.items():
            exp = self.experiments.get(name)
            if exp is None or d.get("identity") != exp.identity():
                continue
            exp.start_ns = int(d.get("start_ns", 0))
            exp.decided = bool(d.get("decided", False))
            for metric, p in d.get("p_min", {}).items():
                if metric in exp.p_min:
                    exp.p_min[metric] = float(p)
            for arm, metrics in d.get("arms", {}).items():
                for metric, moments in metrics.items():
                    if arm in exp.arms and metric in exp.arms[arm]:
                        exp.arms[arm][metric] = Moments.from_list(moments)


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
