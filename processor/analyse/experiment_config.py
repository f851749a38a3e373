"""``analytics.experiments``: one live experiment's config and its metric catalogue.

Config (see docs/analytics.md)::

    experiments:
      - name: small-model
        by: feature_flag.result.variant      # any span or resource attribute
        control: large
        treatment: small
        selector: {service: checkout}        # as for SLOs (optional)
        metrics: [error_rate, latency_p95_s, cost_per_call_usd, quality:relevance]  # default: all
        primary: cost_per_call_usd           # default: the first metric
        guardrails: {error_rate: {max_relative: 0.2}, latency_p95_s: {max_relative: 0.1}}
        alpha: 0.05
        min_samples: 100                     # per arm, before any decision or alert

Metrics: the means and rates of :data:`MEAN_METRICS`, the latency quantiles of
:data:`QUANTILE_METRICS`, and evaluation results ``quality:<name>`` (mean score) /
``pass_ratio:<name>`` (passed / (passed + failed)); ``quality:*`` / ``pass_ratio:*`` take every
evaluation name seen (the first ``MAX_EVALUATION_NAMES``). The default is all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gensight.processor.analyse.comparison import PASS_RATIO_PREFIX, QUALITY_PREFIX, higher_is_better
from gensight.processor.config_fields import Section, build_section, check, fmt, reject_unknown
from gensight.processor.labels import Selector, with_selector
from gensight.processor.records import (
    F_COST_USD,
    F_DURATION_S,
    F_ERROR,
    F_INPUT_TOKENS,
    F_OUTPUT_TOKENS,
    F_TTFC_S,
)

# mean / rate metrics -> (record field, unit): the mSPRT of ``sequential.py``
MEAN_METRICS: dict[str, tuple[int, str]] = {
    "error_rate": (F_ERROR, "1"),
    "latency_mean_s": (F_DURATION_S, "s"),
    "ttfc_s": (F_TTFC_S, "s"),
    "cost_per_call_usd": (F_COST_USD, "USD"),
    "input_tokens": (F_INPUT_TOKENS, "{token}"),
    "output_tokens": (F_OUTPUT_TOKENS, "{token}"),
}
# quantile metrics of the call duration -> q: the quantile confidence sequences of ``sequential_quantile.py``
QUANTILE_METRICS: dict[str, float] = {"latency_p50_s": 0.5, "latency_p95_s": 0.95}
# every metric with a fixed name -> unit
LIVE_METRICS: dict[str, str] = {**{m: unit for m, (_, unit) in MEAN_METRICS.items()},
                                **dict.fromkeys(QUANTILE_METRICS, "s")}
EVALUATION_PREFIXES = (QUALITY_PREFIX, PASS_RATIO_PREFIX)
WILDCARD = "*"  # quality:* / pass_ratio:*: every evaluation name seen
ALL_METRICS = (*LIVE_METRICS, QUALITY_PREFIX + WILDCARD, PASS_RATIO_PREFIX + WILDCARD)
MAX_EVALUATION_NAMES = 16  # names a wildcard takes per experiment; later ones are counted, not tracked
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 100
MAX_EXPERIMENTS = 50
MIN_SAMPLES_FLOOR = 2  # per arm: a variance needs two
_KNOWN = f"{', '.join(LIVE_METRICS)}, quality:<evaluation name>, pass_ratio:<evaluation name> (or :*)"


def metric_unit(metric: str) -> str:
    return LIVE_METRICS.get(metric, "1")


def _valid_metric(metric: Any) -> bool:
    if not isinstance(metric, str):
        return False
    if metric in LIVE_METRICS:
        return True
    prefix = next((p for p in EVALUATION_PREFIXES if metric.startswith(p)), None)
    return prefix is not None and len(metric) > len(prefix)


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """One entry of ``analytics.experiments`` (named ``analytics.experiments[i]``)."""

    name: str
    by: str
    control: str
    treatment: str
    selector: Selector = field(default_factory=Selector)
    metrics: tuple[str, ...] = ALL_METRICS
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
                named = [m for m in metrics if not (isinstance(m, str) and m.endswith(WILDCARD))]
                data["primary"] = named[0] if named else metrics[0]  # all wildcards: an error, named
            if "guardrails" in data:
                data["guardrails"] = _guardrails(data["guardrails"], f"{key}.guardrails")
        return build_section(cls, data, key)

    def validate(self, key: str) -> None:
        for name in ("name", "by", "control", "treatment"):
            check(bool(getattr(self, name)), f"{key}.{name}", "required, a non-empty string")
        check(self.control != self.treatment, f"{key}.treatment", "must differ from control")
        check(bool(self.metrics), f"{key}.metrics", f"must be a non-empty list of {_KNOWN}")
        for i, m in enumerate(self.metrics):
            check(_valid_metric(m), f"{key}.metrics[{i}]", f"unknown metric {m!r} (live metrics: {_KNOWN})")
        check(self.tracks(self.primary) and not self.primary.endswith(WILDCARD), f"{key}.primary",
              f"must be one of the experiment's metrics (not a wildcard), got {self.primary!r}")
        for metric in self.guardrails:
            check(self.tracks(metric), f"{key}.guardrails.{metric}", "not one of the experiment's metrics")
        check(0 < self.alpha < 1, f"{key}.alpha", f"must be in (0, 1), got {fmt(self.alpha)}")
        check(self.min_samples >= MIN_SAMPLES_FLOOR, f"{key}.min_samples",
              f"must be an integer >= {MIN_SAMPLES_FLOOR}, got {self.min_samples!r}")

    def tracks(self, metric: str) -> bool:
        """``metric`` is one of the experiment's (by name, or through a ``quality:*`` wildcard)."""
        if metric in self.metrics:
            return True
        prefix = next((p for p in EVALUATION_PREFIXES if metric.startswith(p)), None)
        return prefix is not None and prefix + WILDCARD in self.metrics

    @property
    def quantiles(self) -> tuple[str, ...]:
        return tuple(m for m in self.metrics if m in QUANTILE_METRICS)


def _guardrails(raw: Any, key: str) -> dict[str, float]:
    """``{metric: {max_relative: x}}`` -> ``{metric: x}``, each checked and named."""
    check(isinstance(raw, Mapping), key, "must be a mapping of metric -> {max_relative: x}")
    out = {}
    for metric, rule in raw.items():
        w = f"{key}.{metric}"
        check(isinstance(rule, Mapping), w, "must be a mapping {max_relative: x}")
        reject_unknown(rule, ("max_relative",), w)
        v = rule.get("max_relative")
        limit = 1 if higher_is_better(str(metric)) else 100  # a score cannot fall by more than all of it
        check(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < limit, f"{w}.max_relative",
              f"required, a number >= 0 and < {limit} (0.2 = 20 % worse than control)")
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
