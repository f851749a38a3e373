"""Hallucination-risk matching stays linear on adversarial text.

Not a speed test: the time for 8x the text is compared with the time for the text itself, in the
same process (best of seven), so machine speed cancels out. Linear work gives a ratio near 8; a
pattern that backtracks quadratically would give about 64. The bound (32) leaves room for a loaded machine.
"""

from __future__ import annotations

import time

import pytest

from gensight.processor.analyse.hallucination_risk import risk_flags

N = 40_000
RATIO_LIMIT = 32.0

HOSTILE = {
    "dose words without a unit": "take " + "1" * N,
    "dose word then digits and spaces": ("take 1 " + "2 " * 20) * (N // 46),
    "repeated trigger prefixes": "guaranteed " * (N // 11),
    "word characters only": "a" * N,
    "dots and digits": "1." * (N // 2),
    "many medium words": "law " * (N // 4),
    "hyphen runs": "risk-" * (N // 5),
}


def _best_time(text: str, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        risk_flags(text)
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_scanning_time_grows_linearly(name):
    base = HOSTILE[name]
    small = _best_time(base)
    large = _best_time(base * 8)
    assert large / max(small, 1e-6) < RATIO_LIMIT, f"{name}: 8x text took {large / small:.1f}x the time"
