"""Series registry: the cardinality cap and idle-series expiry.

Why: a model name, tool name or service is data from the wire; a buggy or hostile client can
mint a new one per call. Every analyser keeps per-series state, so the number of series must be
bounded *before* records reach them. The first ``max_series`` distinct series keep their own
identity; records of any further series are rewritten onto ``OVERFLOW_KEY`` (exported with
``otel.metric.overflow=true``, as the Collector's spanmetrics connector does). A series that has
seen no call for ``idle_expiry_s`` of *event* time is forgotten, freeing its slot, and the
analysers are told so they drop its state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gensight.processor.records import OVERFLOW, OVERFLOW_KEY, CallRecord, SeriesKey

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class SeriesConfig:
    max_series: int = 2000
    idle_expiry_s: float = 3600.0


class SeriesRegistry:
    def __init__(self, config: SeriesConfig):
        self.max_series = config.max_series
        self.idle_ns = int(config.idle_expiry_s * NS_PER_S)
        # internal key = the record's first four fields (kind, service, provider, target): a
        # tuple slice, so no SeriesKey is built per record
        self._last_seen: dict[tuple, int] = {}
        self.overflowed = 0  # records folded into the overflow series

    def __len__(self) -> int:
        return len(self._last_seen)

    def admit(self, records: Sequence[CallRecord]) -> list[CallRecord]:
        """``records`` with over-cap series rewritten onto the overflow series."""
        seen = self._last_seen
        cap = self.max_series
        out: list[CallRecord] | None = None
        for i, r in enumerate(records):
            k = r[:4]
            last = seen.get(k)
            if last is not None:
                if r.end_ns > last:
                    seen[k] = r.end_ns
                continue
            if len(seen) < cap:
                seen[k] = r.end_ns
                continue
            if r.kind == OVERFLOW:
                continue
            if out is None:
                out = list(records)
            out[i] = r._replace(kind=OVERFLOW, service=OVERFLOW, provider=OVERFLOW, target=OVERFLOW)
            self.overflowed += 1
        return list(records) if out is None else out

    def expire(self, watermark_ns: int) -> list[SeriesKey]:
        """Forget series idle for longer than ``idle_expiry_s`` before ``watermark_ns``."""
        if self.idle_ns <= 0:
            return []
        cutoff = watermark_ns - self.idle_ns
        gone = [k for k, last in self._last_seen.items() if last < cutoff]
        for k in gone:
            del self._last_seen[k]
        return [SeriesKey(k[1], k[0], k[2], k[3]) for k in gone]

    def keys(self) -> list[SeriesKey]:
        return [SeriesKey(k[1], k[0], k[2], k[3]) for k in self._last_seen]


def is_overflow(key: SeriesKey) -> bool:
    return key == OVERFLOW_KEY
