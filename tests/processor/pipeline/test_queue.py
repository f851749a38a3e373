"""BoundedQueue: bounded by items and spans, never blocks producers, drains after close."""

from __future__ import annotations

import threading

import pytest

from gensight.processor.pipeline.queue import BoundedQueue
from gensight.processor.receive.admission import ACCEPTED, Admission, QueueConsumer, count_spans


def test_offer_is_refused_when_item_bound_is_reached():
    q: BoundedQueue[str] = BoundedQueue(max_items=2, max_spans=100)
    assert q.offer("a") and q.offer("b")
    assert not q.offer("c")
    assert q.stats().refused_items == 1


def test_offer_is_refused_when_span_bound_is_reached():
    q: BoundedQueue[str] = BoundedQueue(max_items=10, max_spans=100)
    assert q.offer("a", spans=60)
    assert not q.offer("b", spans=41)
    assert q.offer("c", spans=40)
    s = q.stats()
    assert (s.spans, s.refused_spans, s.accepted_spans) == (100, 41, 100)


def test_oversized_item_is_admitted_only_into_an_empty_queue():
    q: BoundedQueue[str] = BoundedQueue(max_items=10, max_spans=100)
    assert q.offer("huge", spans=500)
    assert not q.offer("small", spans=1)
    assert q.get(0) == "huge"
    assert q.offer("small", spans=1)


def test_get_returns_items_in_fifo_order_and_frees_room():
    q: BoundedQueue[int] = BoundedQueue(max_items=2)
    q.offer(1)
    q.offer(2)
    assert q.get(0) == 1
    assert q.offer(3)
    assert [q.get(0), q.get(0)] == [2, 3]


def test_get_times_out_with_none():
    q: BoundedQueue[int] = BoundedQueue()
    assert q.get(0.01) is None


def test_get_batch_takes_up_to_max_items():
    q: BoundedQueue[int] = BoundedQueue()
    for i in range(5):
        q.offer(i)
    assert q.get_batch(3, 0) == [0, 1, 2]
    assert q.get_batch(10, 0) == [3, 4]
    assert q.get_batch(10, 0) == []


def test_close_refuses_offers_but_lets_consumers_drain():
    q: BoundedQueue[int] = BoundedQueue()
    q.offer(1)
    q.close()
    assert not q.offer(2)
    assert not q.drained
    assert q.get(0) == 1
    assert q.drained
    assert q.get(None) is None  # does not block once closed and empty


def test_close_wakes_a_blocked_get():
    q: BoundedQueue[int] = BoundedQueue()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.get(None)))
    t.start()
    q.close()
    t.join(5)
    assert not t.is_alive() and got == [None]


def test_has_room_reflects_fullness():
    q: BoundedQueue[int] = BoundedQueue(max_items=1)
    assert q.has_room()
    q.offer(1)
    assert not q.has_room()


@pytest.mark.parametrize("kwargs", [{"max_items": 0}, {"max_spans": 0}])
def test_invalid_bounds_fail_fast(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BoundedQueue(**kwargs)


def test_concurrent_producers_never_exceed_the_bound():
    q: BoundedQueue[int] = BoundedQueue(max_items=50, max_spans=10_000)
    accepted = []

    def produce():
        accepted.append(sum(q.offer(i, spans=3) for i in range(100)))

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(accepted) == 50 == len(q)
    assert q.stats().refused_items == 350


def test_queue_consumer_admits_until_full_then_asks_to_retry(make_request):
    q = BoundedQueue(max_items=1)
    consume = QueueConsumer(q, retry_after_s=2.5)
    req = make_request(3)
    assert consume(req) == ACCEPTED
    assert consume(req) == Admission(False, error_message="queue full", retry_after_s=2.5)
    assert count_spans(q.get(0)) == 3


def test_queue_consumer_refuses_without_retry_when_closed(make_request):
    q = BoundedQueue()
    q.close()
    adm = QueueConsumer(q)(make_request(1))
    assert not adm.accepted and adm.retry_after_s is None
