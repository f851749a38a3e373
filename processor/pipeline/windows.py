"""Event-time tumbling windows keyed on span END time, closed by a watermark.

Why event time: a window must mean "calls that finished in this minute", whatever the network,
collector batching or a backfill did to arrival order. The watermark is
``max(span end seen) − allowed lateness``; a window closes (in order, exactly once) when the
watermark passes its end. A span whose window already closed is *late*: counted, never silently
lost and never folded into a window that was already reported.

Live mode must still close windows when traffic stops: the watermark then advances by the
elapsed wall-clock idle time since the last span arrived (never snapped to "now"), so a
fresh server fed yesterday's spans in order treats them as a stream rather than as late data.
Replay mode never advances on idle and flushes every open window at end of input. The clock is
injected so tests run in milliseconds.

This stage holds no records: it assigns records to windows (the analysers aggregate them) and
says which windows to close, so memory is bounded by analyser state, not by traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from gensight.processor.config_fields import Section, check, fmt
from gensight.processor.pipeline.series import RecordBatch
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

NS_PER_S = 1_000_000_000
# A jump of the watermark across more empty windows than this skips them in one step (a span
# from far in the future or a backfill gap must not make us emit millions of empty windows).
MAX_EMPTY_WINDOWS = 1440


@dataclass(frozen=True)
class PipelineConfig(Section):
    """The ``pipeline`` section: the window clock's settings, plus the worker's idle tick and the
    consumer's future-skew limit (one section, so its defaults live in one place)."""

    window_s: float = 60.0
    allowed_lateness_s: float = 5.0
    idle_advance: bool = True  # live mode only (replay forces False): advance the watermark by idle wall time
    idle_tick_s: float = 1.0  # how often the worker checks for windows to close when idle
    # live mode: spans ending more than this after the wall clock are rejected (partial_success),
    # else one client with a fast clock (or a hostile timestamp) would push the watermark ahead
    # and make everyone else's spans late. null = off (simulations with compressed event time)
    max_future_skew_s: float | None = 300.0

    def validate(self, key: str = "pipeline") -> None:
        check(self.window_s > 0, f"{key}.window_s", f"must be > 0, got {fmt(self.window_s)}")
        check(self.allowed_lateness_s >= 0, f"{key}.allowed_lateness_s", f"must be >= 0, got {fmt(self.allowed_lateness_s)}")
        check(self.idle_tick_s > 0, f"{key}.idle_tick_s", f"must be > 0, got {fmt(self.idle_tick_s)}")
        check(self.max_future_skew_s is None or self.max_future_skew_s >= 0, f"{key}.max_future_skew_s",
              f"must be >= 0, got {fmt(self.max_future_skew_s)}")


# A request with at least this many records is split into windows with numpy (one pass per window
# present); below it, numpy's per-call overhead costs more than a plain loop over the records.
BULK_ASSIGN_MIN_RECORDS = 256
# more distinct windows than this in one request (a backfill, a sparse replay): use the plain loop
BULK_ASSIGN_MAX_WINDOWS = 16
_END_NS = itemgetter(CallRecord._fields.index("end_ns"))

Split = tuple[dict[int, list[CallRecord]], int, int]  # (window start -> records, late, max end of the rest)


def _split_loop(records: Sequence[CallRecord], wns: int, floor: int | None) -> Split:
    groups: dict[int, list[CallRecord]] = {}
    max_end = 0
    late = 0
    for r in records:
        end = r.end_ns
        ws = end - end % wns
        if floor is not None and ws < floor:
            late += 1
            continue
        g = groups.get(ws)
        if g is None:
            groups[ws] = RecordBatch((r,))
        else:
            g.append(r)
        if end > max_end:
            max_end = end
    return groups, late, max_end


def _split_bulk(records: Sequence[CallRecord], wns: int, floor: int | None) -> Split | None:
    """``_split_loop`` with numpy: the same lists (record order, windows in order of first record),
    the same late count and max end. None when it does not apply (too many windows, odd times)."""
    try:
        ends = np.fromiter(map(_END_NS, records), dtype=np.int64, count=len(records))
    except (OverflowError, TypeError, ValueError):
        return None
    starts = ends - ends % wns
    lo, hi = int(starts.min()), int(starts.max())
    if (hi - lo) // wns >= BULK_ASSIGN_MAX_WINDOWS:
        return None
    found = []
    for ws in range(lo, hi + 1, wns):
        rows = np.flatnonzero(starts == ws)
        if len(rows):
            found.append((int(rows[0]), ws, rows))
    groups: dict[int, list[CallRecord]] = {}
    max_end = 0
    late = 0
    for _, ws, rows in sorted(found, key=itemgetter(0)):
        if floor is not None and ws < floor:
            late += len(rows)
            continue
        picked = itemgetter(*rows.tolist())(records)
        groups[ws] = RecordBatch(picked if len(rows) > 1 else (picked,))
        max_end = max(max_end, int(ends[rows].max()))
    return groups, late, max_end


class WindowClock:
    """Assigns records to windows and closes windows when the watermark passes them."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        live: bool,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] | None = None,
    ):
        self.window_ns = int(config.window_s * NS_PER_S)
        if self.window_ns <= 0:
            raise ValueError("window_s must be > 0")
        self.lateness_ns = int(config.allowed_lateness_s * NS_PER_S)
        self.idle_advance = live and config.idle_advance
        self._monotonic = monotonic
        # live mode: the watermark never runs ahead of the wall clock, so one client whose clock
        # is fast (or a hostile timestamp within the accepted skew) cannot make everyone else late
        self._wall_ns = wall_ns if live else None
        self.max_end_ns = 0
        self._last_arrival = monotonic()  # wall-clock time of the last in-window record
        self.watermark_ns = 0
        self.next_close_ns: int | None = None  # start of the oldest window not yet closed
        self.closed_upto_ns: int | None = None  # every window starting before this is closed
        self.late = 0
        self._with_data: set[int] = set()  # starts of open windows that received records

    # -- assigning -----------------------------------------------------------------------------
    def assign(self, records: Sequence[CallRecord]) -> dict[int, list[CallRecord]]:
        """Group ``records`` by window start; late ones are counted and left out.

        Each window's list is a ``RecordBatch``: the analysers that all receive it share one
        grouping of it by series (see ``series.series_groups``)."""
        if not records:
            return {}
        wns = self.window_ns
        floor = self.closed_upto_ns
        if self.watermark_ns:
            # a window whose end the watermark already passed is closed (or would be at once):
            # its records are late. Without this, one span from 1970 arriving before any window
            # closed reopened half a century of windows (MAX_EMPTY_WINDOWS closes of every analyser).
            wm_floor = self.watermark_ns - wns + 1
            floor = wm_floor if floor is None else max(floor, wm_floor)
        split = _split_bulk(records, wns, floor) if len(records) >= BULK_ASSIGN_MIN_RECORDS else None
        groups, late, max_end = split or _split_loop(records, wns, floor)
        self.late += late
        self._with_data.update(groups)
        if groups:
            first = min(groups)
            if self.next_close_ns is None or first < self.next_close_ns:
                self.next_close_ns = first
        if max_end > self.max_end_ns:
            self.max_end_ns = max_end
        if groups:
            # traffic is flowing: "idle" is measured from the last arrival, not from the last
            # time the newest end moved (a steady stream within one window is not idleness)
            self._last_arrival = self._monotonic()
        return groups

    # -- closing -------------------------------------------------------------------------------
    def advance(self) -> list[Window]:
        """Move the watermark (idle advance in live mode) and return windows to close, in order."""
        candidate = self.max_end_ns - self.lateness_ns
        if self.idle_advance and self.max_end_ns:
            idle_ns = int((self._monotonic() - self._last_arrival) * NS_PER_S)
            candidate += max(0, idle_ns)
        if self._wall_ns is not None:
            candidate = min(candidate, self._wall_ns() - self.lateness_ns)
        if candidate > self.watermark_ns:
            self.watermark_ns = candidate
        return self._close_until(self.watermark_ns)

    def flush(self) -> list[Window]:
        """Close every window that may hold records (end of replay, shutdown)."""
        if self.next_close_ns is None:
            return []
        last_start = self.max_end_ns - self.max_end_ns % self.window_ns
        return self._close_until(last_start + self.window_ns)

    def _close_until(self, watermark_ns: int) -> list[Window]:
        out: list[Window] = []
        nxt = self.next_close_ns
        if nxt is None:
            return out
        wns = self.window_ns
        live = self._with_data
        empties = 0
        while nxt + wns <= watermark_ns:
            if nxt in live:
                live.discard(nxt)
            elif empties >= MAX_EMPTY_WINDOWS:
                # a long gap of empty windows: jump to the next window with data (or the last
                # closable one) instead of emitting millions of empty windows
                last = watermark_ns - watermark_ns % wns - wns
                ahead = [w for w in live if w > nxt]
                nxt = min([*ahead, last]) if ahead else last
                if nxt in live:
                    live.discard(nxt)
                empties = 0
            else:
                empties += 1
            out.append(Window(nxt, nxt + wns))
            nxt += wns
        self.next_close_ns = nxt
        if out:
            self.closed_upto_ns = nxt
        return out
