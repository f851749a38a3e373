"""Series registry: a hard cardinality cap with one overflow series, idle series expire."""

from __future__ import annotations

from gensight.processor.pipeline.series import SeriesConfig, SeriesRegistry
from gensight.processor.records import OVERFLOW_KEY, CallRecord, SeriesKey

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


def test_series_groups_are_columns_in_first_seen_and_record_order():
    from gensight.processor.pipeline.series import series_groups

    recs = [CallRecord("chat", "svc", "openai", "b", 0, 5, 0.5, input_tokens=10, cost_usd=0.1),
            CallRecord("chat", "svc", "openai", "a", 0, 6, 0.25),
            CallRecord("chat", "svc", "openai", "b", 0, 7, 1.5, input_tokens=30, cost_usd=float("nan"))]
    groups = series_groups(recs)
    assert [g.key for g in groups] == [("chat", "svc", "openai", "b"), ("chat", "svc", "openai", "a")]
    assert groups[0].series == SeriesKey("svc", "chat", "openai", "b")
    b = groups[0]
    assert list(b.columns[5]) == [5, 7] and list(b.columns[6]) == [0.5, 1.5]
    assert (list(b.present[7][0]), b.present[7][1]) == ([10, 30], 40)
    assert b.finite[6][1] == 2.0 and list(b.finite[10][0]) == [0.1]  # NaN cost is not finite
    a = groups[1]
    assert a.present[7] == ((), 0) and a.finite[10] == ((), 0)


def test_record_batch_groups_once_and_again_after_a_change():
    from gensight.processor.pipeline.series import RecordBatch, series_groups

    batch = RecordBatch([rec("a"), rec("b"), rec("a")])
    first = series_groups(batch)
    assert series_groups(batch) is first  # the SLI, drift and anomaly analysers share it
    batch[1] = rec("c")
    again = series_groups(batch)
    assert [g.key[3] for g in again] == ["a", "c"] and again is not first
    assert series_groups(list(batch)) == again  # a plain list: grouped every time, same result


def test_present_and_finite_leave_out_missing_and_bad_values():
    from gensight.processor.pipeline.series import finite, present

    col = [1.0, None, float("inf"), 2.0]
    assert present([1, 2]) == ([1, 2], 3)
    assert (list(present(col)[0]), present(col)[1]) == ([1.0, float("inf"), 2.0], float("inf"))
    assert (list(finite(col)[0]), finite(col)[1]) == ([1.0, 2.0], 3.0)
    assert finite([None, None]) == ((), 0)
