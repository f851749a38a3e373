"""Hallucination-risk matching stays linear on adversarial text.

Not a speed test: the matcher's time is compared with a known-linear scan of the same text
(ten word-boundary searches), interleaved, in CPU time of this thread (other processes on a
loaded machine do not count), so machine speed and load cancel out. For linear
matching that relative cost stays flat when the text grows 8x; a pattern that backtracked
quadratically would make it grow about 8x. The bound (3x) leaves room for noise.
"""

from __future__ import annotations

import re
import time

import pytest

from gensight.processor.analyse.hallucination_risk import risk_flags

N = 40_000
GROWTH_LIMIT = 3.0
# a known-linear scan of the same text: ten word-boundary searches that never match
_REFERENCE = [re.compile(r"\bzq" + str(i) + r"x") for i in range(10)]

HOSTILE = {
    "dose words without a unit": "take " + "1" * N,
    "dose word then digits and spaces": ("take 1 " + "2 " * 20) * (N // 46),
    "repeated trigger prefixes": "guaranteed " * (N // 11),
    "word characters only": "a" * N,
    "dots and digits": "1." * (N // 2),
    "many medium words": "law " * (N // 4),
    "hyphen runs": "risk-" * (N // 5),
}


def _reference(text: str) -> None:
    for pattern in _REFERENCE:
        pattern.search(text)


def _relative_cost(text: str, trials: int = 7) -> float:
    """min over interleaved trials of time(risk_flags) / time(reference): load on the machine hits
    both alike, so the ratio is steadier than either time."""
    best = float("inf")
    for _ in range(trials):
        t0 = time.thread_time()
        risk_flags(text)
        t1 = time.thread_time()
        _reference(text)
        t2 = time.thread_time()
        best = min(best, (t1 - t0) / max(t2 - t1, 1e-9))
    return best


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_scanning_cost_grows_like_a_linear_scan(name):
    base = HOSTILE[name]
    growth = _relative_cost(base * 8) / _relative_cost(base)
    assert growth < GROWTH_LIMIT, f"{name}: relative cost grew {growth:.1f}x for 8x the text"
