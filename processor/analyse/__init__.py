"""Analyse: the analysers that turn a closed window of call records into metric points.

SLIs, SLO burn rates, drift, anomaly, cost and budgets, content flags, live experiments, and the
alert engine they feed (``alerts``: the state machine; ``alert_delivery``: OTLP log records and the
Alertmanager webhook); ``analytics`` wires them from the config, ``state`` persists their
baselines (SQLite), ``admin`` serves the baseline endpoints. ``comparison`` is the offline
experiment report behind ``gensight compare``."""

from __future__ import annotations

from gensight._lazy import lazy_exports

__all__ = ["AdminServer", "AlertEngine", "AlertsConfig", "Analytics", "AnalyticsConfig", "AnomalyAnalyser", "AnomalyConfig", "Comparison", "ContentChecksConfig", "ContentFlagsAnalyser", "CostAnalyser", "CostConfig", "DriftAnalyser", "DriftConfig", "ExampleTracker", "ExperimentAnalyser", "ExperimentConfig", "SLIAnalyser", "SLOAnalyser", "SLOConfig", "StateError", "StateStore", "Transition", "build_analysers", "compare_arms", "run_windows"]

_EXPORTS = {
    "Analytics": "gensight.processor.analyse.analytics",
    "AnalyticsConfig": "gensight.processor.analyse.analytics",
    "build_analysers": "gensight.processor.analyse.analytics",
    "run_windows": "gensight.processor.analyse.analytics",
    "AlertEngine": "gensight.processor.analyse.alerts",
    "AlertsConfig": "gensight.processor.analyse.alerts",
    "Transition": "gensight.processor.analyse.alerts",
    "AnomalyAnalyser": "gensight.processor.analyse.anomaly",
    "AnomalyConfig": "gensight.processor.analyse.anomaly",
    "CostAnalyser": "gensight.processor.analyse.cost",
    "CostConfig": "gensight.processor.analyse.cost",
    "DriftAnalyser": "gensight.processor.analyse.drift",
    "DriftConfig": "gensight.processor.analyse.drift_config",
    "ExampleTracker": "gensight.processor.analyse.examples",
    "SLIAnalyser": "gensight.processor.analyse.sli",
    "SLOAnalyser": "gensight.processor.analyse.slo",
    "SLOConfig": "gensight.processor.analyse.slo",
    "ContentChecksConfig": "gensight.processor.analyse.content_checks",
    "ContentFlagsAnalyser": "gensight.processor.analyse.content_checks",
    "StateError": "gensight.processor.analyse.state",
    "StateStore": "gensight.processor.analyse.state",
    "AdminServer": "gensight.processor.analyse.admin",
    "Comparison": "gensight.processor.analyse.comparison",
    "compare_arms": "gensight.processor.analyse.comparison",
    "ExperimentAnalyser": "gensight.processor.analyse.experiments",
    "ExperimentConfig": "gensight.processor.analyse.experiments",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
