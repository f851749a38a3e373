"""The bounded queue between receiving and analysis.

Receivers run in many threads and must never block on analysis: they ``offer()`` and get an
immediate yes/no, which becomes gRPC ``RESOURCE_EXHAUSTED`` + ``RetryInfo`` / HTTP 503 +
``Retry-After`` upstream. The queue is bounded twice, by item count and by total spans, because a
few huge requests can hold as much memory as many small ones.

Interface::

    q = BoundedQueue(max_items=1024, max_spans=200_000)
    q.offer(item, spans=n) -> bool     # never blocks; False when full or closed
    q.get(timeout_s) -> item | None    # None on timeout, or when closed and drained
    q.get_batch(max_items, timeout_s) -> list[item]
    q.close()                          # offers refused from now on; get() drains what is left
    q.drained                          # closed and empty: the consumer loop may exit
    q.stats() -> QueueStats            # counters and current depth (for self-telemetry)
    q.has_room()                       # for readiness checks

An item larger than ``max_spans`` is admitted only into an *empty* queue, so one oversized
request cannot be refused forever (it would be retried forever by the client) while the memory
bound still holds to within one request.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")


class QueueStats(NamedTuple):
    items: int  # currently queued
    spans: int  # currently queued
    accepted_items: int
    accepted_spans: int
    refused_items: int
    refused_spans: int
    taken_items: int
    max_items: int
    max_spans: int


class BoundedQueue(Generic[T]):
    """A thread-safe FIFO bounded by item count and total spans; producers never block."""

    def __init__(self, max_items: int = 1024, max_spans: int = 200_000) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        if max_spans < 1:
            raise ValueError(f"max_spans must be >= 1, got {max_spans}")
        self.max_items = max_items
        self.max_spans = max_spans
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._spans = 0
        self._closed = False
        self._cond = threading.Condition(threading.Lock())
        self._accepted_items = 0
        self._accepted_spans = 0
        self._refused_items = 0
        self._refused_spans = 0
        self._taken_items = 0

    def offer(self, item: T, spans: int = 1) -> bool:
        """Enqueue without blocking; False (and counted as refused) when full or closed."""
        spans = max(0, int(spans))
        with self._cond:
            fits = (
                not self._closed
                and len(self._items) < self.max_items
                and (self._spans + spans <= self.max_spans or not self._items)
            )
            if not fits:
                self._refused_items += 1
                self._refused_spans += spans
                return False
            self._items.append((item, spans))
            self._spans += spans
            self._accepted_items += 1
            self._accepted_spans += spans
            self._cond.notify()
            return True

    def get(self, timeout_s: float | None = None) -> T | None:
        """The oldest item, waiting up to ``timeout_s`` (None = until an item or close)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._cond.wait(remaining)
            return self._pop()

    def get_batch(self, max_items: int, timeout_s: float | None = None) -> list[T]:
        """Up to ``max_items`` items: waits for the first like ``get``, then takes what is there."""
        first = self.get(timeout_s)
        if first is None:
            return []
        out = [first]
        with self._cond:
            while self._items and len(out) < max_items:
                out.append(self._pop())
        return out

    def _pop(self) -> T:
        item, spans = self._items.popleft()
        self._spans -= spans
        self._taken_items += 1
        return item

    def close(self) -> None:
        """Refuse further offers and wake every waiting ``get``; queued items can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def drained(self) -> bool:
        """Closed and empty: nothing more will ever come out."""
        with self._cond:
            return self._closed and not self._items

    def has_room(self) -> bool:
        """Whether a small offer would currently be accepted (readiness, not a reservation)."""
        with self._cond:
            return not self._closed and len(self._items) < self.max_items and self._spans < self.max_spans

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def stats(self) -> QueueStats:
        with self._cond:
            return QueueStats(
                items=len(self._items),
                spans=self._spans,
                accepted_items=self._accepted_items,
                accepted_spans=self._accepted_spans,
                refused_items=self._refused_items,
                refused_spans=self._refused_spans,
                taken_items=self._taken_items,
                max_items=self.max_items,
                max_spans=self.max_spans,
            )
