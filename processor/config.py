"""Processor configuration: one validated dataclass per stage, loaded from YAML, CLI overrides.

Why fail fast: a typo in a config key that is silently ignored shows up weeks later as a wrong
SLO. Every section is a frozen dataclass subclassing ``config_fields.Section``, defined next to the
stage that uses it (the stage takes the section itself: no second "runtime config" with its own
defaults); loading rejects unknown keys and bad values at start-up with a message naming the key
(``pipeline.window_s: must be > 0, got -5``), and never afterwards. How to add a section: see
``gensight.processor.config_fields`` (a dataclass + one field line in ``ProcessorConfig``).

Layout (every section and key optional)::

    receivers:  {grpc: {endpoint, max_recv_msg_size_mib, tls, auth, ...}, http: {...}}
    queue:      {max_items, max_spans}
    pipeline:   {window_s, allowed_lateness_s, idle_advance, idle_tick_s}
    series:     {max_series, idle_expiry_s}
    normalise:  {tenant_attributes, enrich_cost, pricing_file}
    export:     {endpoint, protocol, headers, timeout_s, compression, insecure, ...} (else OTEL_EXPORTER_OTLP_*)
    prometheus: {endpoint, series_ttl_s, max_series, tls, auth, ...}
    state:      {dir, snapshot_interval_s}
    self_telemetry: {service_name}
    ui:         {endpoint, token_env, page_size, history_windows}   # the status page; off by default
    evaluations: {enabled, index_max_calls, index_max_age_s, wait_max, wait_max_age_s, pass_labels, ...}
    analytics:  {slo: ..., drift: ..., ...}   # free-form; validated by the analyser factories
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gensight.processor.analyse.content_checks import ContentChecksConfig
from gensight.processor.config_fields import ConfigError, Section, check, coerce, fmt
from gensight.processor.export.otlp_settings import ExporterConfig
from gensight.processor.export.prometheus import PrometheusConfig
from gensight.processor.normalise.normaliser import NormaliseConfig
from gensight.processor.pipeline.evaluations import EvaluationsConfig
from gensight.processor.pipeline.series import SeriesConfig
from gensight.processor.pipeline.windows import PipelineConfig
from gensight.processor.receive.grpc_receiver import GrpcReceiverConfig
from gensight.processor.receive.http_receiver import HttpReceiverConfig
from gensight.processor.ui.config import UIConfig

logger = logging.getLogger(__name__)

__all__ = ["ConfigError", "ProcessorConfig", "config_from_mapping", "load_config"]


@dataclass(frozen=True)
class ReceiversConfig(Section):
    """``grpc`` / ``http``: the ingest side's receiver configs (``null`` disables one)."""

    grpc: GrpcReceiverConfig | None = field(default_factory=GrpcReceiverConfig)
    http: HttpReceiverConfig | None = field(default_factory=HttpReceiverConfig)

    def validate(self, key: str = "receivers") -> None:
        check(self.grpc is not None or self.http is not None, key, "enable at least one of grpc, http")
        if self.grpc is not None:
            self.grpc.validate(f"{key}.grpc")
        if self.http is not None:
            self.http.validate(f"{key}.http")


@dataclass(frozen=True)
class QueueConfig(Section):
    max_items: int = 1024  # requests waiting for the analysis worker
    max_spans: int = 200_000  # call records waiting for the analysis worker

    def validate(self, key: str = "queue") -> None:
        check(self.max_items > 0, f"{key}.max_items", f"must be > 0, got {fmt(self.max_items)}")
        check(self.max_spans > 0, f"{key}.max_spans", f"must be > 0, got {fmt(self.max_spans)}")


@dataclass(frozen=True)
class StateConfig(Section):
    dir: str | None = None
    snapshot_interval_s: float = 60.0
    reset: bool = False  # --reset-state: move an unusable state file aside (*.bak-<time>) and start empty

    def validate(self, key: str = "state") -> None:
        check(self.snapshot_interval_s > 0, f"{key}.snapshot_interval_s", f"must be > 0, got {fmt(self.snapshot_interval_s)}")


@dataclass(frozen=True)
class SelfTelemetryConfig(Section):
    service_name: str | None = None  # else OTEL_SERVICE_NAME, else gensight-processor


@dataclass(frozen=True)
class ProcessorConfig:
    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    series: SeriesConfig = field(default_factory=SeriesConfig)
    normalise: NormaliseConfig = field(default_factory=NormaliseConfig)
    export: ExporterConfig = field(default_factory=ExporterConfig)
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    state: StateConfig = field(default_factory=StateConfig)
    self_telemetry: SelfTelemetryConfig = field(default_factory=SelfTelemetryConfig)
    content_checks: ContentChecksConfig = field(default_factory=ContentChecksConfig)
    ui: UIConfig = field(default_factory=UIConfig)  # the status page (--ui-endpoint); off by default
    evaluations: EvaluationsConfig = field(default_factory=EvaluationsConfig)  # join + pass rule
    # the analytics analysers' sections (slos, drift, anomaly, cost, alerts, ...), kept as the YAML
    # mapping: ``analyse.analytics.AnalyticsConfig.from_dict`` builds their typed ``Section``s (the
    # same build_section path) when the analysers are built, so this module need not import every
    # detector; errors are the same ConfigError naming "analytics.<key>"
    analytics: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Every section's ``validate(<section name>)``."""
        for name in _SECTION_TYPES:
            section = getattr(self, name)
            if isinstance(section, Section):
                try:
                    section.validate(name)
                except ConfigError:
                    raise
                except ValueError as exc:  # a check written as a plain ValueError still names its key
                    raise ConfigError(str(exc)) from None

    def with_values(self, values: Mapping[str, Any]) -> ProcessorConfig:
        """A validated copy with dotted-key overrides (CLI flags), e.g.
        ``{"pipeline.window_s": 10, "receivers.grpc.endpoint": "127.0.0.1:0"}``; None = keep."""
        cfg: Any = self
        for dotted, value in values.items():
            if value is not None:
                cfg = _replace_path(cfg, dotted.split("."), value, dotted)
        cfg.validate()
        return cfg


_SECTION_TYPES = typing.get_type_hints(ProcessorConfig)


def _replace_path(obj: Any, parts: list[str], value: Any, dotted: str) -> Any:
    name = parts[0]
    if not dataclasses.is_dataclass(obj) or name not in {f.name for f in dataclasses.fields(obj)}:
        raise ConfigError(f"{dotted}: unknown key")
    if len(parts) == 1:
        new = coerce(typing.get_type_hints(type(obj))[name], value, dotted)
    else:
        new = _replace_path(getattr(obj, name), parts[1:], value, dotted)
    return dataclasses.replace(obj, **{name: new})  # type: ignore[type-var]


def config_from_mapping(data: Mapping[str, Any] | None) -> ProcessorConfig:
    data = data or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"<config>: must be a mapping of sections, got {type(data).__name__}")
    data = _deprecated_aliases(data)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTION_TYPES:
            raise ConfigError(f"{name}: unknown section (expected one of: {', '.join(_SECTION_TYPES)})")
        kwargs[name] = coerce(_SECTION_TYPES[name], {} if value is None else value, name)
    cfg = ProcessorConfig(**kwargs)
    cfg.validate()
    return cfg


_ALIAS_KEY = "analytics.state.snapshot_interval_s"


def _deprecated_aliases(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``analytics.state.snapshot_interval_s`` (deprecated) -> ``state.snapshot_interval_s``, with one
    warning. The top-level key wins when both are set; the pipeline's clock is the only one."""
    analytics = data.get("analytics")
    old = analytics.get("state") if isinstance(analytics, Mapping) else None
    if not isinstance(old, Mapping) or "snapshot_interval_s" not in old:
        return data
    interval_s = coerce(float, old["snapshot_interval_s"], _ALIAS_KEY)
    check(0 < interval_s < math.inf, _ALIAS_KEY, f"must be > 0, got {fmt(interval_s)}")
    state = data.get("state") or {}
    if isinstance(state, Mapping) and "snapshot_interval_s" not in state:
        logger.warning("gensight: analytics.state.snapshot_interval_s is deprecated: "
                       "use state.snapshot_interval_s (now %s)", fmt(interval_s))
        return {**data, "state": {**state, "snapshot_interval_s": interval_s}}
    logger.warning("gensight: analytics.state.snapshot_interval_s is deprecated and ignored: "
                   "state.snapshot_interval_s is set")
    return data


def load_config(path: str | os.PathLike[str] | None) -> ProcessorConfig:
    """The config in ``path`` (YAML), or the defaults when ``path`` is None."""
    if path is None:
        return config_from_mapping({})
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return config_from_mapping(data)
