"""Processor configuration: one validated dataclass per stage, loaded from YAML, CLI overrides.

Why fail fast: a typo in a config key that is silently ignored shows up weeks later as a wrong
SLO. Every section is a frozen dataclass; loading rejects unknown keys and bad values at start-up
with a message naming the key (``pipeline.window_s: must be > 0, got -5``), and never afterwards.

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
    analytics:  {slo: ..., drift: ..., ...}   # free-form; validated by the analyser factories
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gensight.processor.analyse.content_checks import ContentChecksConfig
from gensight.processor.export.otlp import ExporterConfig
from gensight.processor.export.prometheus import PrometheusConfig
from gensight.processor.normalise.normaliser import DEFAULT_TENANT_ATTRIBUTES
from gensight.processor.receive.grpc_receiver import GrpcReceiverConfig
from gensight.processor.receive.http_receiver import HttpReceiverConfig
from gensight.processor.ui.config import UIConfig


class ConfigError(ValueError):
    """A bad configuration; the message starts with the dotted key at fault."""


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {message}")


def _n(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _check_endpoint(value: str | None, key: str) -> None:
    if value in (None, ""):
        return
    host, sep, port = str(value).rpartition(":")
    _check(bool(sep) and port.isdigit() and 0 <= int(port) <= 65535, key, f"must be HOST:PORT, got {value!r}")


@dataclass(frozen=True)
class ReceiversConfig:
    """``grpc`` / ``http``: the ingest side's receiver configs (``null`` disables one)."""

    grpc: GrpcReceiverConfig | None = field(default_factory=GrpcReceiverConfig)
    http: HttpReceiverConfig | None = field(default_factory=HttpReceiverConfig)

    def validate(self, path: str) -> None:
        _check(self.grpc is not None or self.http is not None, path, "enable at least one of grpc, http")
        for name in ("grpc", "http"):
            sub = getattr(self, name)
            if sub is not None and hasattr(sub, "validate"):
                try:
                    sub.validate(f"{path}.{name}")
                except ConfigError:
                    raise
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class QueueConfig:
    max_items: int = 1024  # requests waiting for the analysis worker
    max_spans: int = 200_000  # call records waiting for the analysis worker

    def validate(self, path: str) -> None:
        _check(self.max_items > 0, f"{path}.max_items", f"must be > 0, got {_n(self.max_items)}")
        _check(self.max_spans > 0, f"{path}.max_spans", f"must be > 0, got {_n(self.max_spans)}")


@dataclass(frozen=True)
class PipelineConfig:
    window_s: float = 60.0
    allowed_lateness_s: float = 5.0
    idle_advance: bool = True  # live mode only: advance the watermark by idle wall time
    idle_tick_s: float = 1.0  # how often the worker checks for windows to close when idle
    # live mode: spans ending more than this after the wall clock are rejected (partial_success),
    # else one client with a fast clock (or a hostile timestamp) would push the watermark ahead
    # and make everyone else's spans late. null = off (simulations with compressed event time)
    max_future_skew_s: float | None = 300.0

    def validate(self, path: str) -> None:
        _check(self.window_s > 0, f"{path}.window_s", f"must be > 0, got {_n(self.window_s)}")
        _check(self.allowed_lateness_s >= 0, f"{path}.allowed_lateness_s", f"must be >= 0, got {_n(self.allowed_lateness_s)}")
        _check(self.idle_tick_s > 0, f"{path}.idle_tick_s", f"must be > 0, got {_n(self.idle_tick_s)}")
        _check(self.max_future_skew_s is None or self.max_future_skew_s >= 0, f"{path}.max_future_skew_s", f"must be >= 0, got {_n(self.max_future_skew_s)}")


@dataclass(frozen=True)
class SeriesSectionConfig:
    max_series: int = 2000
    idle_expiry_s: float = 3600.0

    def validate(self, path: str) -> None:
        _check(self.max_series > 0, f"{path}.max_series", f"must be > 0, got {_n(self.max_series)}")
        _check(self.idle_expiry_s >= 0, f"{path}.idle_expiry_s", f"must be >= 0, got {_n(self.idle_expiry_s)}")


@dataclass(frozen=True)
class NormaliseSectionConfig:
    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES
    enrich_cost: bool = True
    pricing_file: str | None = None  # else $GENSIGHT_PRICING_FILE, else the bundled table

    def validate(self, path: str) -> None:
        for i, name in enumerate(self.tenant_attributes):
            _check(bool(name), f"{path}.tenant_attributes[{i}]", "must be a non-empty attribute name")
        if self.pricing_file:
            _check(Path(self.pricing_file).is_file(), f"{path}.pricing_file", f"no such file: {self.pricing_file}")


@dataclass(frozen=True)
class StateConfig:
    dir: str | None = None
    snapshot_interval_s: float = 60.0
    reset: bool = False  # --reset-state: move an unusable state file aside (*.bak-<time>) and start empty

    def validate(self, path: str) -> None:
        _check(self.snapshot_interval_s > 0, f"{path}.snapshot_interval_s", f"must be > 0, got {_n(self.snapshot_interval_s)}")


@dataclass(frozen=True)
class SelfTelemetryConfig:
    service_name: str | None = None  # else OTEL_SERVICE_NAME, else gensight-processor

    def validate(self, path: str) -> None:
        pass


@dataclass(frozen=True)
class ProcessorConfig:
    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    series: SeriesSectionConfig = field(default_factory=SeriesSectionConfig)
    normalise: NormaliseSectionConfig = field(default_factory=NormaliseSectionConfig)
    export: ExporterConfig = field(default_factory=ExporterConfig)
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    state: StateConfig = field(default_factory=StateConfig)
    self_telemetry: SelfTelemetryConfig = field(default_factory=SelfTelemetryConfig)
    content_checks: ContentChecksConfig = field(default_factory=ContentChecksConfig)
    ui: UIConfig = field(default_factory=UIConfig)  # the status page (--ui-endpoint); off by default
    # free-form sections for the analytics analysers (slo, drift, anomaly, cost, alerts): their
    # factories validate them at start-up and raise ConfigError naming "analytics.<key>"
    analytics: Mapping[str, Any] = field(default_factory=dict)

    def validate(self, path: str = "") -> None:
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if hasattr(section, "validate"):
                try:
                    section.validate(f.name)
                except ConfigError:
                    raise
                except ValueError as exc:
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


def _replace_path(obj: Any, parts: list[str], value: Any, dotted: str) -> Any:
    name = parts[0]
    if not dataclasses.is_dataclass(obj) or name not in {f.name for f in dataclasses.fields(obj)}:
        raise ConfigError(f"{dotted}: unknown key")
    if len(parts) == 1:
        hints = typing.get_type_hints(type(obj))
        new = _coerce(hints[name], value, dotted)
    else:
        new = _replace_path(getattr(obj, name), parts[1:], value, dotted)
    return dataclasses.replace(obj, **{name: new})  # type: ignore[type-var]


def _asdict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


_SECTION_TYPES = {f.name: f.type for f in dataclasses.fields(ProcessorConfig)}


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # type: ignore[arg-type]
            return value
        return _build(tp, value, key)
    if tp is Any:
        return value
    if tp is bool:
        _check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), key, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        _check(isinstance(value, (str, int, float)) and not isinstance(value, bool), key, f"must be a string, got {value!r}")
        return str(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        _check(isinstance(value, (list, tuple)), key, f"must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or tp is Mapping:
        _check(isinstance(value, Mapping), key, f"must be a mapping, got {value!r}")
        return dict(value)
    return value


def _build(cls: Any, data: Mapping[str, Any], path: str) -> Any:
    _check(isinstance(data, Mapping), path, f"must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            raise ConfigError(f"{path}.{key}: unknown key (expected one of: {', '.join(names)})")
        kwargs[key] = _coerce(hints[key], value, f"{path}.{key}")
    try:
        obj = cls(**kwargs)
        if hasattr(obj, "validate"):
            obj.validate(path)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc) if str(exc).startswith(path) else f"{path}: {exc}") from None
    return obj


def config_from_mapping(data: Mapping[str, Any] | None) -> ProcessorConfig:
    data = data or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"<config>: must be a mapping of sections, got {type(data).__name__}")
    hints = typing.get_type_hints(ProcessorConfig)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTION_TYPES:
            raise ConfigError(f"{name}: unknown section (expected one of: {', '.join(_SECTION_TYPES)})")
        if name == "analytics":
            _check(isinstance(value or {}, Mapping), name, "must be a mapping")
            kwargs[name] = dict(value or {})
        else:
            kwargs[name] = _build(hints[name], value or {}, name)
    cfg = ProcessorConfig(**kwargs)
    cfg.validate()
    return cfg


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
