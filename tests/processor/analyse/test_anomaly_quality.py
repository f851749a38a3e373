"""The anomaly analyser's ``quality`` signal: evaluation scores, in their own window, tested downwards."""

import math

import numpy as np

from gensight.processor.analyse.alerts import FIRING, AlertEngine
from gensight.processor.analyse.anomaly import AnomalyAnalyser, AnomalyConfig
from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.points import Window
from gensight.processor.records import CallRecord, SeriesKey

MIN = 60 * 10**9
T0 = 1_700_000_000 * 10**9
KEY = SeriesKey("svc", "chat", "openai", "gpt-4o")
LAG_MIN = 2  # the judge reports two windows after the call


def run(a, minutes, seed, drop_at=None, per_min=20):
    """Calls every minute; their evaluations (mean 0.85, 0.6 from ``drop_at``) in the window LAG_MIN
    later. Returns {minute: {signal: score}} for the series and the alert attributes seen."""
    rng = np.random.default_rng(seed)
    out: dict[int, dict[str, float]] = {}
    pending: dict[int, list[Evaluation]] = {}
    for m in range(minutes):
        w = Window(T0 + m * MIN, T0 + (m + 1) * MIN)
        calls = []
        for i in range(per_min):
            t = w.start_ns + (i + 1) * (MIN // (per_min + 1))
            d = float(rng.lognormal(0, 0.3))
            calls.append(CallRecord("chat", "svc", "openai", "gpt-4o", t - int(d * 1e9), t, d,
                                    input_tokens=100, output_tokens=80))
        a.observe(w, calls)
        dropped = drop_at is not None and m >= drop_at
        for c in calls:
            score = float(rng.beta(6, 4) if dropped else rng.beta(8.5, 1.5))
            t = c.end_ns + LAG_MIN * MIN
            pending.setdefault(m + LAG_MIN, []).append(
                Evaluation("relevance", score, None, None, "judge", t, b"", b"", None, call=c))
        a.observe_evaluations(w, pending.pop(m, []))
        sig = {dict(p.attributes)["signal"]: p.value for p in a.close(w) if p.name == "gensight.anomaly.signal"}
        out[m] = sig
    return out


def test_a_quality_drop_raises_the_quality_signal_and_the_alert_names_it():
    alerts = AlertEngine()
    a = AnomalyAnalyser(AnomalyConfig(iforest=False), alerts=alerts)
    scores = run(a, 80, 1, drop_at=60)
    before = [scores[m].get("quality", 0.0) for m in range(20, 60 + LAG_MIN)]
    assert max(before) < 0.7
    first = next(m for m in range(60, 80) if scores[m].get("quality", 0.0) >= 0.7)
    assert first - (60 + LAG_MIN) <= 4  # within a few windows of the first dropped evaluations
    fired = [t for t in alerts.drain_transitions() if t.state == FIRING]
    assert fired
    attrs = dict(fired[0].attributes)
    assert attrs["gensight.alert.signal"] == "quality"
    assert attrs["gensight.alert.signal_value"] < attrs["gensight.alert.baseline"]  # p5 of the window vs baseline


def test_stationary_quality_stays_within_the_stated_false_alarm_rate():
    """At 144 false alarms per series-day (alpha per test and window = the config's alpha), the
    fraction of windows where the quality signal is at or over 0.7 stays within 2 alpha (+ 12 s.e.:
    runs over h are correlated)."""
    cfg = AnomalyConfig(iforest=False, false_alarms_per_series_per_day=144)
    a = AnomalyAnalyser(cfg)
    scores = run(a, 1500, 2)
    n = len(scores)
    alpha = cfg.alpha(60.0)
    frac = sum(s.get("quality", 0.0) >= 0.7 for s in scores.values()) / n
    assert sum("quality" in s for s in scores.values()) > 1400  # tested nearly every window
    assert frac <= 2 * alpha + 12 * math.sqrt(2 * alpha / n)


def test_a_window_of_evaluations_only_is_tested_and_snapshots_round_trip():
    a = AnomalyAnalyser(AnomalyConfig(iforest=False))
    run(a, 20, 3)
    b = AnomalyAnalyser(AnomalyConfig(iforest=False))
    b.import_state(a.export_state())
    assert len(b._series[KEY].refs["quality"].sorted) == len(a._series[KEY].refs["quality"].sorted) > 0
    w = Window(T0 + 30 * MIN, T0 + 31 * MIN)
    call = CallRecord("chat", "svc", "openai", "gpt-4o", T0, T0 + MIN, 1.0)
    b.observe_evaluations(w, [Evaluation("relevance", 0.0, None, None, "judge", w.start_ns + 1, b"", b"", None,
                                         call=call)] * 20)
    sig = {dict(p.attributes)["signal"]: p.value for p in b.close(w) if p.name == "gensight.anomaly.signal"}
    assert sig["quality"] > 0
