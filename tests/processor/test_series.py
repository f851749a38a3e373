"""Series registry: a hard cardinality cap with one overflow series, idle series expire."""

from __future__ import annotations

from gensight.processor.records import OVERFLOW_KEY, CallRecord, SeriesKey
from gensight.processor.series import SeriesConfig, SeriesRegistry

S = 1_000_000_000


def rec(model: str, end_s: float = 1.0) -> CallRecord:
    return CallRecord("chat", "svc", "openai", model, 0, int(end_s * S), 0.1)


def test_series_within_cap_keep_their_key():
    reg = SeriesRegistry(SeriesConfig(max_series=3))
    out = reg.admit([rec("a"), rec("b"), rec("a")])
    assert [r.target for r in out] == ["a", "b", "a"] and len(reg) == 2


def test_series_over_cap_fold_into_overflow():
    reg = SeriesRegistry(SeriesConfig(max_series=2))
    out = reg.admit([rec("a"), rec("b"), rec("c"), rec("d"), rec("a")])
    assert [r.key == OVERFLOW_KEY for r in out] == [False, False, True, True, False]
    assert reg.overflowed == 2 and len(reg) == 2


def test_cap_holds_under_a_hundred_thousand_distinct_series():
    reg = SeriesRegistry(SeriesConfig(max_series=100))
    for i in range(0, 100_000, 1000):
        reg.admit([rec(f"m{j}") for j in range(i, i + 1000)])
    assert len(reg) == 100


def test_idle_series_expire_in_event_time_and_free_their_slot():
    reg = SeriesRegistry(SeriesConfig(max_series=1, idle_expiry_s=60))
    reg.admit([rec("a", end_s=10)])
    assert reg.admit([rec("b", end_s=20)])[0].key == OVERFLOW_KEY
    assert reg.expire(watermark_ns=50 * S) == []
    assert reg.expire(watermark_ns=80 * S) == [SeriesKey("svc", "chat", "openai", "a")]
    assert reg.admit([rec("b", end_s=90)])[0].target == "b"


def test_recent_activity_keeps_a_series_alive():
    reg = SeriesRegistry(SeriesConfig(max_series=5, idle_expiry_s=60))
    reg.admit([rec("a", end_s=10)])
    reg.admit([rec("a", end_s=70)])
    assert reg.expire(watermark_ns=100 * S) == []
