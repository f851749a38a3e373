"""Trend alerts: ``quality_trending_down`` and ``cost_per_call_trending_up``.

The monitoring this grows from asked for "confidence trending down more than 2 % per hour for
3 hours". A threshold on the level cannot say that (a slow slide never crosses it until too late),
and a least-squares slope is dragged by one bad bucket. So, per series (and evaluation name):

1. values are summed into event-time buckets (``bucket_s``, default 10 min): the mean score of the
   evaluations (quality), or the mean cost of the calls that carry a cost (cost per call); a bucket
   with fewer than ``min_per_bucket`` values is left out;
2. when a bucket completes, the last ``lookback_s`` (default 3 h: 18 buckets) are tested, if at
   least ``min_buckets`` (12) of them are usable:
   * slope: the **Theil–Sen** estimator (median of pairwise slopes; robust to outlier buckets),
     relative to the median bucket value, per hour;
   * evidence: the one-sided **Mann–Kendall** test (normal approximation, tie-corrected, with
     continuity correction) that the buckets trend in that direction;
3. the alert condition holds when the relative slope is beyond ``quality_drop_per_h`` (default
   0.02: 2 %/h down) or ``cost_rise_per_h`` (2 %/h up) **and** the Mann–Kendall p-value is below
   ``alpha`` (default 5e-4).

False alarms: on trendless noise, each test fires with probability at most ``alpha`` (the slope
condition only removes firings), and there is one test per bucket: 144 a day with 10-minute
buckets, so at most 144 x 5e-4 = 0.072 false alarms per series, alert and day (overlapping tests are
positively correlated, so the real rate is lower; ``tests/processor/analyse/test_trends.py``
measures it on 60 seeded days). Trendless means no seasonality within 3 h: a cost that climbs every
morning is a real 3-hour trend and will fire; raise ``cost_rise_per_h`` or disable the rule then.
The state is in memory (it rebuilds within ``lookback_s`` after a restart).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gensight.processor.analyse.alerts import TICKET, AlertEngine
from gensight.processor.config_fields import Section, check, check_positive, fmt
from gensight.processor.labels import series_id
from gensight.processor.pipeline.series import series_groups
from gensight.processor.points import MetricPoint, Window
from gensight.processor.records import F_COST_USD, CallRecord, SeriesKey

QUALITY_TRENDING_DOWN = "quality_trending_down"
COST_PER_CALL_TRENDING_UP = "cost_per_call_trending_up"
NS_PER_S = 1_000_000_000
NS_PER_H = 3600 * NS_PER_S


@dataclass(frozen=True)
class TrendConfig(Section):
    """YAML ``analytics.trends``."""

    enabled: bool = True
    bucket_s: float = 600.0
    lookback_s: float = 10800.0
    min_buckets: int = 12
    min_per_bucket: int = 5
    quality_drop_per_h: float = 0.02
    cost_rise_per_h: float = 0.02
    alpha: float = 5e-4
    max_series: int = 2000

    def validate(self, key: str = "analytics.trends") -> None:
        check_positive(self, key)
        check(self.alpha < 1, f"{key}.alpha", f"must be in (0, 1), got {fmt(self.alpha)}")
        check(self.lookback_s >= 3 * self.bucket_s, f"{key}.lookback_s",
              f"must be at least 3 buckets ({3 * self.bucket_s:g} s)")
        check(3 <= self.min_buckets <= self.lookback_s // self.bucket_s, f"{key}.min_buckets",
              f"must be 3 .. lookback_s / bucket_s, got {self.min_buckets}")


# -- the statistics (checked against scipy.stats.theilslopes / kendalltau in the tests) ----------

def theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the pairwise slopes (pairs with equal x left out)."""
    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    return float(np.median((y[j] - y[i])[keep] / dx[keep]))


def mann_kendall_z(y: np.ndarray, *, continuity: bool = True) -> float:
    """Mann–Kendall z of ``y`` in order (positive: increasing), tie-corrected variance."""
    n = len(y)
    i, j = np.triu_indices(n, k=1)
    s = float(np.sign(y[j] - y[i]).sum())
    _, ties = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18.0
    if var <= 0:
        return 0.0
    if continuity and s != 0:
        s -= math.copysign(1.0, s)
    return s / math.sqrt(var)


def _norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class TrendResult:
    slope_per_h: float  # relative to the median level, per hour
    p_value: float  # one-sided, in the alert's direction
    buckets: int


def trend(times_h: Sequence[float], values: Sequence[float], direction: int) -> TrendResult | None:
    """Relative Theil–Sen slope and one-sided Mann–Kendall p (direction -1: down, +1: up)."""
    x = np.asarray(times_h, dtype=float)
    y = np.asarray(values, dtype=float)
    level = float(np.median(y))
    if len(y) < 3 or not level > 0:
        return None
    slope = theil_sen_slope(x, y) / level
    z = mann_kendall_z(y)
    return TrendResult(slope, _norm_sf(direction * z), len(y))


# -- the analyser ---------------------------------------------------------------------------------

class _Series:
    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets: deque[list[float]] = deque()  # [bucket index, sum, count]

    def add(self, b: int, total: float, n: int) -> None:
        if self.buckets and self.buckets[-1][0] == b:
            self.buckets[-1][1] += total
            self.buckets[-1][2] += n
        elif not self.buckets or b > self.buckets[-1][0]:
            self.buckets.append([b, total, n])
        else:  # an older bucket (allowed lateness, evaluations out of order): find it
            for entry in self.buckets:
                if entry[0] == b:
                    entry[1] += total
                    entry[2] += n
                    return


class TrendAnalyser:
    """Implements ``Analyser`` + ``observe_evaluations``; evaluates the two trend rules into the
    shared alert engine (register it before the engine)."""

    def __init__(self, config: TrendConfig | None = None, alerts: AlertEngine | None = None) -> None:
        self.config = config = config or TrendConfig()
        self.alerts = alerts
        self.bucket_ns = int(config.bucket_s * NS_PER_S)
        self.n_buckets = int(config.lookback_s // config.bucket_s)
        # (alert, series key, evaluation name or "") -> per-bucket sums
        self._series: dict[tuple[str, SeriesKey, str], _Series] = {}
        self.last: dict[tuple[str, SeriesKey, str], TrendResult] = {}  # latest test per series (admin, tests)

    def _get(self, k: tuple[str, SeriesKey, str]) -> _Series | None:
        s = self._series.get(k)
        if s is None:
            if len(self._series) >= self.config.max_series:
                return None
            s = self._series[k] = _Series()
        return s

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        if not self.config.enabled:
            return
        b = window.start_ns // self.bucket_ns
        for g in series_groups(records):  # the grouping the other analysers share
            costs, total = g.finite[F_COST_USD]
            if costs:
                s = self._get((COST_PER_CALL_TRENDING_UP, g.series, ""))
                if s is not None:
                    s.add(b, float(total), len(costs))

    def observe_evaluations(self, window: Window, evaluations: Sequence[Any]) -> None:
        if not self.config.enabled:
            return
        sums: dict[tuple[SeriesKey, str], list[float]] = {}
        for ev in evaluations:
            if ev.score is None or ev.call is None:
                continue
            k = (ev.call.key, ev.name)
            acc = sums.get(k)
            if acc is None:
                acc = sums[k] = [0.0, 0]
            acc[0] += ev.score
            acc[1] += 1
        b = window.start_ns // self.bucket_ns
        for (key, name), (total, n) in sums.items():
            s = self._get((QUALITY_TRENDING_DOWN, key, name))
            if s is not None:
                s.add(b, total, int(n))

    def close(self, window: Window) -> list[MetricPoint]:
        if not self.config.enabled or window.end_ns % self.bucket_ns:
            return []  # tests run when a bucket completes
        done = window.end_ns // self.bucket_ns  # buckets < done are complete
        first = done - self.n_buckets
        cfg = self.config
        for k in list(self._series):
            s = self._series[k]
            while s.buckets and s.buckets[0][0] < first:
                s.buckets.popleft()
            if not s.buckets:
                del self._series[k]
                self.last.pop(k, None)
                continue
            usable = [(b, total / n) for b, total, n in s.buckets if b < done and n >= cfg.min_per_bucket]
            alert, key, name = k
            active = False
            result = None
            if len(usable) >= cfg.min_buckets:
                hours = [(b - first) * cfg.bucket_s / 3600.0 for b, _ in usable]
                direction = -1 if alert == QUALITY_TRENDING_DOWN else 1
                result = trend(hours, [v for _, v in usable], direction)
                if result is not None:
                    self.last[k] = result
                    limit = cfg.quality_drop_per_h if direction < 0 else cfg.cost_rise_per_h
                    active = direction * result.slope_per_h > limit and result.p_value < cfg.alpha
            if self.alerts is not None:
                sid = series_id(key) + (f"|{name}" if name else "")
                attrs = (("gen_ai.evaluation.name", name),) if name else ()
                threshold = -cfg.quality_drop_per_h if alert == QUALITY_TRENDING_DOWN else cfg.cost_rise_per_h
                self.alerts.evaluate(alert, sid, active, value=result.slope_per_h if result else 0.0,
                                     threshold=threshold, time_ns=window.end_ns, severity=TICKET,
                                     service=key.service, attributes=attrs)
        return []

    def expire(self, keys: Sequence[SeriesKey]) -> None:
        gone = set(keys)
        for k in [k for k in self._series if k[1] in gone]:
            del self._series[k]
            self.last.pop(k, None)
