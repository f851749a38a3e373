"""The drift analyser's configuration (``analytics.drift``).

Why a module of its own: the analyser module holds the per-series lifecycle; its settings (and the
one YAML convenience, a duration for ``reference_period_s``) are read by the config loader and the
admin tools without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gensight.processor.config_fields import Section, build_section, check, check_positive
from gensight.processor.labels import DEFAULT_MAX_SERIES


@dataclass(frozen=True)
class DriftConfig(Section):
    reference_calls: int = 1000
    reference_period_s: float | None = None
    max_reference_sample: int = 5000
    bins: int = 10
    min_eval_count: int = 500
    max_eval_windows: int = 30
    psi_warn: float = 0.1
    psi_alert: float = 0.2
    js_alert: float = 0.1
    psi_floor: float = 1e-4
    max_categories: int = 20
    max_series: int = DEFAULT_MAX_SERIES
    max_values_per_window: int = 10_000
    false_alarms_per_series_per_day: float = 0.1
    # a numeric feature drifts only if its distribution moved at least this share of its mean
    # (Wasserstein-1 / |reference mean|): PSI alone flags 2 % shifts of near-constant latencies
    min_relative_shift: float = 0.05

    @classmethod
    def from_mapping(cls, data: Any, key: str = "drift") -> DriftConfig:
        """As ``Section.from_mapping``; ``reference_period_s`` also takes a duration (``7d``)."""
        from gensight.processor.analyse.slo import parse_duration_s

        if isinstance(data, Mapping) and isinstance(data.get("reference_period_s"), str):
            data = {**data, "reference_period_s": float(parse_duration_s(data["reference_period_s"],
                                                                          f"{key}.reference_period_s"))}
        return build_section(cls, {} if data is None else data, key)

    def validate(self, key: str = "drift") -> None:
        check_positive(self, key)
        check(self.bins >= 2, f"{key}.bins", "must be at least 2")
        check(self.psi_warn <= self.psi_alert, f"{key}.psi_warn", f"must not exceed psi_alert ({self.psi_alert})")
