"""Drift's ``quality`` feature: evaluation scores against a frozen reference, calibrated score."""

import numpy as np

from gensight.processor.analyse.drift import DriftAnalyser, DriftConfig
from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

MIN = 60 * 10**9
T0 = 1_700_000_000 * 10**9
CALL = CallRecord("chat", "svc", "openai", "gpt-4o", T0, T0 + 1, 1.0)


def drift_scores(minutes, seed, shift_at=None, per_min=100):
    """{minute: (drift score, quality psi)} of a series whose evaluation scores (mean 0.85) drop to
    mean 0.6 from ``shift_at``."""
    a = DriftAnalyser(DriftConfig())
    rng = np.random.default_rng(seed)
    out = {}
    for m in range(minutes):
        w = Window(T0 + m * MIN, T0 + (m + 1) * MIN)
        shifted = shift_at is not None and m >= shift_at
        scores = rng.beta(6, 4, per_min) if shifted else rng.beta(8.5, 1.5, per_min)
        a.observe_evaluations(w, [Evaluation("relevance", float(s), None, None, "judge", w.start_ns + i + 1,
                                             b"", b"", None, call=CALL) for i, s in enumerate(scores)])
        pts = a.close(w)
        score = [p.value for p in pts if p.name == "gensight.drift.score"]
        psi = [p.value for p in pts if p.name == "gensight.drift" and ("feature", "quality") in p.attributes
               and ("method", "psi") in p.attributes]
        if score:
            out[m] = (score[0], psi[0])
    return out


def test_a_quality_shift_scores_drift():
    scores = drift_scores(40, 1, shift_at=30)
    assert max(s for m, (s, _) in scores.items() if m < 30) < 0.5
    assert max(s for m, (s, _) in scores.items() if m >= 30) >= 0.5


def test_stationary_quality_stays_low():
    scores = drift_scores(300, 2)
    assert len(scores) > 250  # scored every window once the reference froze
    assert max(s for s, _ in scores.values()) < 0.5
    assert max(p for _, p in scores.values()) < 0.1
