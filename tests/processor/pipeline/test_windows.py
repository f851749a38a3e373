"""Event-time windows: span end time decides the window; the watermark closes them in order."""

from __future__ import annotations

from gensight.processor.pipeline.windows import MAX_EMPTY_WINDOWS, PipelineConfig, WindowClock
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

S = 1_000_000_000
T0 = 1_700_000_040 * S  # minute boundary


def rec(end_s: float) -> CallRecord:
    end = T0 + int(end_s * S)
    return CallRecord("chat", "svc", "openai", "m", end - S // 10, end, 0.1)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def clock(live: bool = False, lateness_s: float = 5.0, idle: bool = True):
    fc = FakeClock()
    return WindowClock(PipelineConfig(60.0, lateness_s, idle), live=live, monotonic=fc), fc


def test_records_group_by_end_time_window():
    wc, _ = clock()
    groups = wc.assign([rec(1), rec(59.9), rec(61)])
    assert {k: len(v) for k, v in groups.items()} == {T0: 2, T0 + 60 * S: 1}


def test_window_stays_open_until_watermark_passes_end_plus_lateness():
    wc, _ = clock()
    wc.assign([rec(10), rec(64)])
    assert wc.advance() == []  # watermark = 64 - 5 = 59 < 60
    wc.assign([rec(65.5)])
    assert wc.advance() == [Window(T0, T0 + 60 * S)]


def test_windows_close_in_order_including_empty_ones_between():
    wc, _ = clock(lateness_s=0)
    wc.assign([rec(1)])
    wc.assign([rec(200)])
    assert [w.start_ns for w in wc.advance()] == [T0, T0 + 60 * S, T0 + 120 * S]


def test_record_behind_closed_window_is_late_and_counted():
    wc, _ = clock(lateness_s=0)
    wc.assign([rec(1), rec(70)])
    wc.advance()
    groups = wc.assign([rec(30), rec(75)])
    assert wc.late == 1 and list(groups) == [T0 + 60 * S]


def test_out_of_order_within_lateness_is_not_late():
    wc, _ = clock(lateness_s=10)
    wc.assign([rec(65)])
    wc.advance()
    wc.assign([rec(58)])
    assert wc.late == 0


def test_replay_never_advances_on_idle():
    wc, fc = clock(live=False)
    wc.assign([rec(1)])
    fc.t += 3600
    assert wc.advance() == []


def test_live_idle_advances_by_elapsed_wall_time():
    wc, fc = clock(live=True)
    wc.assign([rec(1)])
    fc.t += 30
    assert wc.advance() == []  # watermark = 1 - 5 + 30 = 26 s
    fc.t += 35
    assert wc.advance() == [Window(T0, T0 + 60 * S)]  # 61 s


def test_live_backfill_in_order_is_not_late():
    """A fresh server fed yesterday's spans treats them as a stream (no snap to 'now')."""
    wc, fc = clock(live=True)
    for i in range(5):
        wc.assign([rec(i * 60 + 1)])
        fc.t += 0.01
        wc.advance()
    assert wc.late == 0


def test_watermark_never_moves_back():
    wc, fc = clock(live=True)
    wc.assign([rec(1)])
    fc.t += 100
    wc.advance()
    mark = wc.watermark_ns
    wc.assign([rec(50)])
    wc.advance()
    assert wc.watermark_ns >= mark


def test_flush_closes_every_open_window():
    wc, _ = clock()
    wc.assign([rec(1), rec(61), rec(130)])
    assert [w.start_ns for w in wc.flush()] == [T0, T0 + 60 * S, T0 + 120 * S]
    assert wc.flush() == []


def test_long_gap_of_empty_windows_is_skipped_but_data_windows_close():
    wc, _ = clock(lateness_s=0)
    wc.assign([rec(1)])
    wc.assign([rec(10 * MAX_EMPTY_WINDOWS * 60.0)])
    closed = wc.advance()
    assert closed[0].start_ns == T0
    assert len(closed) <= MAX_EMPTY_WINDOWS + 2
    assert closed == sorted(closed)
    wc.flush()
    assert wc.late == 0


def test_window_length_is_configurable():
    wc = WindowClock(PipelineConfig(10.0, 0.0), live=False)
    wc.assign([rec(1), rec(11), rec(25)])
    assert [(w.end_ns - w.start_ns) // S for w in wc.advance()] == [10, 10]


def test_steady_arrivals_are_not_idleness():
    """Spans that keep arriving (even without a newer end time) hold the idle advance back."""
    wc, fc = clock(live=True)
    wc.assign([rec(30)])
    for _ in range(10):
        fc.t += 20
        wc.assign([rec(20)])
        assert wc.advance() == []
    fc.t += 40
    assert wc.advance() == [Window(T0, T0 + 60 * S)]


def test_large_requests_split_in_bulk_exactly_as_record_by_record():
    import random

    from gensight.processor.pipeline.windows import BULK_ASSIGN_MIN_RECORDS, _split_bulk, _split_loop

    rng = random.Random(5)
    recs = [rec(rng.uniform(-30, 200)) for _ in range(3 * BULK_ASSIGN_MIN_RECORDS)]
    wns = 60 * S
    for floor in (None, T0, T0 + 60 * S):
        bulk = _split_bulk(recs, wns, floor)
        assert bulk is not None
        loop = _split_loop(recs, wns, floor)
        assert list(bulk[0].items()) == list(loop[0].items()) and bulk[1:] == loop[1:]
    wc, _ = clock()
    assert sorted(wc.assign(recs)) == sorted(_split_loop(recs, wns, None)[0])
    assert _split_bulk([rec(i * 600.0) for i in range(300)], wns, None) is None  # too many windows: loop
