"""The analytics stage as one object: config, the analysers in order, state, admin.

The pipeline builds it through the factory :func:`build` (listed in
``pipeline.ANALYSER_FACTORIES`` after the SLI analyser): it returns the detectors, then the alert
engine (it must close after the detectors), then the ``Analytics`` object itself, whose
``snapshot()`` / ``expire()`` / ``shutdown()`` hooks the pipeline calls on its worker thread. Alert
transitions go to ``PipelineContext.emit_logs`` as OTLP log records at each window close. In
live mode (serve) the authenticated admin endpoint is started when a token is configured.

Config (YAML section ``analytics``; every key optional)::

    analytics:
      slos:    [{name, type: availability|latency|cost|quality, target, selector: {...}, threshold_s, threshold_usd,
                 evaluation, period_s}]
      budgets: [{name, limit_usd, selector: {...}, tenant}]
      drift:   {reference_calls: 500, bins: 10, psi_warn: 0.1, psi_alert: 0.2, js_alert: 0.1, ...}
      anomaly: {threshold: 0.7, refit: background|sync, seed: 0, ...}
      cost:    {spike_factor: 2.0, per_tenant: false, ...}
      trends:  {bucket_s: 600, lookback_s: 10800, quality_drop_per_h: 0.02, cost_rise_per_h: 0.02, alpha: 5e-4, ...}
      alerts:  {cooldown_s: 900, runbook_base_url: ..., rules: {...}, webhook: {url: ...}, trace_url_template: ...}
      admin:   {endpoint: 127.0.0.1:4321, token_env: GENSIGHT_ADMIN_TOKEN}
      state:   {snapshot_interval_s: 60}  # deprecated alias of the top-level state.snapshot_interval_s
      experiments: [{name, by, control, treatment, selector, metrics, primary, guardrails, alpha, min_samples}]
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from gensight.processor.analyse.alerts import AlertEngine, AlertsConfig, Transition
from gensight.processor.analyse.anomaly import SYNC, AnomalyAnalyser, AnomalyConfig
from gensight.processor.analyse.cost import CostAnalyser, CostConfig
from gensight.processor.analyse.drift import DriftAnalyser, DriftConfig
from gensight.processor.analyse.examples import ExampleTracker
from gensight.processor.analyse.experiments import ExperimentAnalyser, ExperimentConfig, experiments_from_list
from gensight.processor.analyse.slo import SLOAnalyser, SLOConfig
from gensight.processor.analyse.state import StateStore
from gensight.processor.analyse.trends import TrendAnalyser, TrendConfig
from gensight.processor.config_fields import (
    ConfigError,
    Section,
    build_section,
    check_positive,
    reject_unknown,
)
from gensight.processor.endpoint import parse_endpoint
from gensight.processor.points import Analyser

if TYPE_CHECKING:
    from gensight.processor.config import ProcessorConfig
    from gensight.processor.pipeline.pipeline import PipelineContext

log = logging.getLogger(__name__)

KNOWN_KEYS = ("slos", "budgets", "drift", "anomaly", "cost", "trends", "alerts", "admin", "state", "experiments")
DEFAULT_ADMIN_ENDPOINT = "127.0.0.1:4321"
ADMIN_TOKEN_ENV = "GENSIGHT_ADMIN_TOKEN"


@dataclass(frozen=True)
class AdminConfig(Section):
    endpoint: str = DEFAULT_ADMIN_ENDPOINT
    token: str | None = None
    enabled: bool = True

    @classmethod
    def from_mapping(cls, data: Any, key: str = "analytics.admin",
                     environ: Mapping[str, str] | None = None) -> AdminConfig:
        """As ``Section.from_mapping``; ``token_env`` (not a field) names the variable holding the
        token when ``token`` is not given (default ``GENSIGHT_ADMIN_TOKEN``)."""
        data = dict(data or {})
        token_env = data.pop("token_env", ADMIN_TOKEN_ENV)
        env = os.environ if environ is None else environ
        if not data.get("token"):
            data["token"] = env.get(str(token_env)) or None
        return build_section(cls, data, key)

    def validate(self, key: str = "analytics.admin") -> None:
        parse_endpoint(self.endpoint, f"{key}.endpoint")


@dataclass(frozen=True)
class AnalyticsStateConfig(Section):
    """Deprecated: ``analytics.state.snapshot_interval_s`` is an alias of the top-level
    ``state.snapshot_interval_s`` (the pipeline's snapshot clock, the only one); see
    ``config.config_from_mapping``, which maps it and warns once."""

    snapshot_interval_s: float | None = None

    def validate(self, key: str = "analytics.state") -> None:
        check_positive(self, key)


@dataclass(frozen=True)
class AnalyticsConfig:
    """The typed ``analytics`` section, built from ``ProcessorConfig.analytics`` (a plain dict: the
    section is parsed when the analysers are built, see ``build``) by ``from_dict``. Each
    sub-section is a ``Section`` built by ``config_fields.build_section``; the list-shaped ones
    (``slos``, ``budgets``, ``experiments``) are parsed entry by entry, named ``<key>[i]``."""

    slos: tuple[SLOConfig, ...] = ()
    drift: DriftConfig = field(default_factory=DriftConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    trends: TrendConfig = field(default_factory=TrendConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    state: AnalyticsStateConfig = field(default_factory=AnalyticsStateConfig)
    experiments: tuple[ExperimentConfig, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "analytics",
                  environ: Mapping[str, str] | None = None) -> AnalyticsConfig:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        reject_unknown(data, KNOWN_KEYS, where, sort=False)
        raw_slos = data.get("slos") or []
        if not isinstance(raw_slos, list):
            raise ConfigError(f"{where}.slos: must be a list")
        slos = tuple(SLOConfig.from_mapping(s, f"{where}.slos[{i}]") for i, s in enumerate(raw_slos))
        names = [s.name for s in slos]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.slos: SLO names must be unique")
        return cls(
            slos=slos,
            drift=DriftConfig.from_mapping(data.get("drift"), f"{where}.drift"),
            anomaly=AnomalyConfig.from_mapping(data.get("anomaly"), f"{where}.anomaly"),
            cost=CostConfig.from_mapping(data.get("cost"), f"{where}.cost", budgets=data.get("budgets") or []),
            trends=TrendConfig.from_mapping(data.get("trends"), f"{where}.trends"),
            alerts=AlertsConfig.from_mapping(data.get("alerts"), f"{where}.alerts"),
            admin=AdminConfig.from_mapping(data.get("admin"), f"{where}.admin", environ),
            state=AnalyticsStateConfig.from_mapping(data.get("state"), f"{where}.state"),
            experiments=experiments_from_list(data.get("experiments"), f"{where}.experiments"),
        )


class Analytics(Analyser):
    """SLO, drift, anomaly, cost and alert analysers sharing one alert engine and one state file."""

    def __init__(self, config: AnalyticsConfig | None = None, *, state_dir: str | None = None,
                 reset_state: bool = False, deterministic: bool = False) -> None:
        config = config or AnalyticsConfig()
        if deterministic and config.anomaly.refit != SYNC:
            config = replace(config, anomaly=replace(config.anomaly, refit=SYNC))
        self.config = config
        self.alerts = AlertEngine(config.alerts)
        # candidate trace ids per series and window; observed before the detectors evaluate
        self.examples = ExampleTracker(config.slos, config.cost.budgets)
        self.alerts.examples = self.examples.for_alert
        self.slo = SLOAnalyser(config.slos, self.alerts)
        self.drift = DriftAnalyser(config.drift, self.alerts)
        self.anomaly = AnomalyAnalyser(config.anomaly, self.alerts)
        self.cost = CostAnalyser(config.cost, self.alerts)
        self.trends = TrendAnalyser(config.trends, self.alerts)
        self.experiments = ExperimentAnalyser(config.experiments, self.alerts)
        # order matters: the alert engine closes last, after every detector evaluated the window
        self.analysers: list[Any] = [self.examples, self.slo, self.drift, self.anomaly, self.cost, self.trends,
                                     self.experiments, self.alerts]
        self.store: StateStore | None = None
        self.admin: Any = None
        self._last_snapshot = time.monotonic()
        if state_dir is not None:
            self.store = StateStore(state_dir, reset=reset_state)
            self.restore()

    def _components(self) -> dict[str, Any]:
        return {"slo": self.slo, "drift": self.drift, "anomaly": self.anomaly, "cost": self.cost, "alerts": self.alerts,
                "experiments": self.experiments}

    def restore(self) -> None:
        if self.store is None:
            return
        data = self.store.load()
        for name, comp in self._components().items():
            if name in data:
                comp.import_state(data[name])

    def snapshot(self) -> None:
        if self.store is None:
            return
        self.store.save({name: comp.export_state() for name, comp in self._components().items()})
        self._last_snapshot = time.monotonic()

    def maybe_snapshot(self, interval_s: float) -> bool:
        """Snapshot when ``interval_s`` has passed since the last one (a driver without the pipeline,
        whose ``state.snapshot_interval_s`` clock otherwise calls ``snapshot()``)."""
        if self.store is None or time.monotonic() - self._last_snapshot < interval_s:
            return False
        self.snapshot()
        return True

    def drain_transitions(self) -> list[Transition]:
        return self.alerts.drain_transitions()

    # -- the pipeline's optional hooks (Analytics is registered as a no-op analyser) -----------
    def observe(self, window: Any, records: Any) -> None:
        return None

    def close(self, window: Any) -> list[Any]:
        return []

    def start_admin(self) -> Any:
        """Start the admin endpoint (serve); returns it, or None when no token is configured."""
        from gensight.processor.analyse.admin import AdminServer

        adm = self.config.admin
        if not adm.enabled or not adm.token:
            if adm.enabled:
                log.warning("gensight: admin endpoint off: set analytics.admin.token or %s", ADMIN_TOKEN_ENV)
            return None
        host, port = parse_endpoint(adm.endpoint, "analytics.admin.endpoint")
        self.admin = AdminServer(self.drift, adm.token, host, port, on_change=self._save_drift)
        self.admin.start()
        log.info("gensight: admin endpoint on %s", self.admin.url)
        return self.admin

    def _save_drift(self) -> None:
        """After an admin edit: persist the baselines at once (runs on the admin thread)."""
        if self.store is not None:
            self.store.save({"drift": self.drift.export_state()})

    def shutdown(self) -> None:
        if self.admin is not None:
            self.admin.stop()
            self.admin = None
        self.anomaly.shutdown()
        self.alerts.shutdown()
        if self.store is not None:
            self.snapshot()
            self.store.close()
            self.store = None


def build(config: ProcessorConfig, context: PipelineContext) -> list[Analyser]:
    """Analyser factory for ``pipeline.ANALYSER_FACTORIES`` (``gensight.processor.analyse.analytics:build``)."""
    from gensight.processor.analyse.alert_delivery import logs_request
    from gensight.processor.analyse.state import StateError
    from gensight.processor.config import ConfigError

    try:
        cfg = AnalyticsConfig.from_dict(config.analytics)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    state_dir = str(context.state_dir) if context.state_dir is not None else None
    try:
        analytics = Analytics(cfg, state_dir=state_dir, reset_state=config.state.reset,
                              deterministic=not context.live)
    except StateError as exc:
        raise ConfigError(f"state.dir: {exc}") from None
    analytics.alerts.sink = lambda transitions: context.emit_logs(logs_request(transitions))
    analytics.experiments.sink = context.emit_logs  # experiment_decided log records
    if context.live:
        try:
            analytics.start_admin()
        except OSError as exc:
            analytics.shutdown()
            raise ConfigError(f"analytics.admin.endpoint: cannot listen on {cfg.admin.endpoint}: {exc}") from None
    return [*analytics.analysers, analytics]


def build_analysers(config: Mapping[str, Any] | AnalyticsConfig | None = None, *, state_dir: str | None = None,
                    reset_state: bool = False, deterministic: bool = False) -> Analytics:
    """The pipeline's hook: ``build_analysers(cfg).analysers`` go after the SLI analyser."""
    cfg = config if isinstance(config, AnalyticsConfig) else AnalyticsConfig.from_dict(config)
    return Analytics(cfg, state_dir=state_dir, reset_state=reset_state, deterministic=deterministic)


def run_windows(analysers: list[Any], records: Any, window_s: float = 60.0,
                on_close: Any = None) -> list[Any]:
    """Feed time-ordered records through ``analysers`` in tumbling event-time windows.

    A minimal stand-in for the pipeline's window stage (no lateness): tests and the detection
    benchmark use it to drive the analysers directly. Empty windows between records are closed
    too, as the pipeline's watermark would. Returns every point; ``on_close(window, points)``
    is called after each window.
    """
    from gensight.processor.pipeline.series import RecordBatch
    from gensight.processor.points import Window

    step = int(window_s * 1e9)
    out: list[Any] = []
    batch: list[Any] = RecordBatch()  # the analysers share its grouping by series, as in the pipeline
    current: int | None = None

    def flush(start: int) -> None:
        w = Window(start, start + step)
        if batch:
            for a in analysers:
                a.observe(w, batch)
        pts = []
        for a in analysers:
            pts.extend(a.close(w))
        out.extend(pts)
        if on_close is not None:
            on_close(w, pts)

    for rec in records:
        start = (rec.end_ns // step) * step
        if current is None:
            current = start
        while start > current:
            flush(current)
            batch = RecordBatch()
            current += step
        batch.append(rec)
    if current is not None:
        flush(current)
    return out
