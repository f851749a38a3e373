import gc

import pytest
from opentelemetry.trace import StatusCode

from gensight.instrumentation import attributes as A
from gensight.instrumentation.lifecycle import Telemetry
from gensight.instrumentation.stream import AsyncStreamProxy, SyncStreamProxy


class FakeStream:
    """A stand-in SDK stream: iterator, close(), context manager; optionally breaks."""

    def __init__(self, chunks, break_after=None):
        self._chunks = list(chunks)
        self._i = 0
        self._break_after = break_after
        self.closed = False
        self.response = "the-http-response"

    def __iter__(self):
        return self

    def __next__(self):
        if self._break_after is not None and self._i >= self._break_after:
            raise ConnectionError("peer closed connection midway")
        if self._i >= len(self._chunks):
            raise StopIteration
        self._i += 1
        return self._chunks[self._i - 1]

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeAsyncStream:
    def __init__(self, chunks, break_after=None):
        self._sync = FakeStream(chunks, break_after)
        self.closed = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return next(self._sync)
        except StopIteration:
            raise StopAsyncIteration from None

    async def close(self):
        self.closed = True

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class Summer:
    """Per-stream state: sums chunk values into output tokens at the end."""

    def __init__(self):
        self.total = 0
        self.ends = 0

    def on_chunk(self, inv, chunk):
        self.total += chunk

    def on_end(self, inv):
        self.ends += 1
        inv.set_usage(input_tokens=1, output_tokens=self.total)


@pytest.fixture
def telemetry(tracer_provider, meter_provider):
    return Telemetry(tracer_provider, meter_provider)


def _span(span_exporter):
    (span,) = span_exporter.get_finished_spans()
    return span


def _proxy(telemetry, stream, cls=SyncStreamProxy):
    state = Summer()
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o-mini")
    return cls(stream, inv, state.on_chunk, state.on_end), state, inv


def test_exhausted_stream_finishes_span_with_usage_and_first_chunk_time(telemetry, span_exporter):
    proxy, state, _ = _proxy(telemetry, FakeStream([1, 2, 3]))
    assert list(proxy) == [1, 2, 3]
    span = _span(span_exporter)
    assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 6
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    assert state.ends == 1


def test_span_stays_open_until_the_stream_ends(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeStream([1, 2]))
    next(proxy)
    assert span_exporter.get_finished_spans() == ()
    list(proxy)
    assert len(span_exporter.get_finished_spans()) == 1


def test_stream_broken_midway_fails_span_and_reraises_original(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeStream([1, 2, 3], break_after=1))
    with pytest.raises(ConnectionError, match="midway"):
        list(proxy)
    span = _span(span_exporter)
    assert span.attributes[A.ERROR_TYPE] == "ConnectionError"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 1  # what arrived before the break


def test_closed_early_stream_finishes_once_and_closes_underlying(telemetry, span_exporter):
    stream = FakeStream([1, 2, 3])
    proxy, state, _ = _proxy(telemetry, stream)
    next(proxy)
    proxy.close()
    proxy.close()
    assert stream.closed
    span = _span(span_exporter)
    assert span.attributes[A.GENSIGHT_STREAM_ENDED_BY] == "close"
    assert span.status.status_code is StatusCode.UNSET
    assert state.ends == 1


def test_context_manager_exit_finishes_and_returns_the_proxy(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeStream([1, 2, 3]))
    with proxy as s:
        assert s is proxy
        next(s)
    assert len(span_exporter.get_finished_spans()) == 1


def test_exhausted_then_closed_is_not_marked_as_closed_early(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeStream([1]))
    with proxy:
        list(proxy)
    assert A.GENSIGHT_STREAM_ENDED_BY not in _span(span_exporter).attributes


def test_garbage_collected_unfinished_stream_ends_its_span(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeStream([1, 2, 3]))
    next(proxy)
    del proxy
    gc.collect()
    assert _span(span_exporter).attributes[A.GENSIGHT_STREAM_ENDED_BY] == "gc"


def test_proxy_forwards_attributes_and_isinstance(telemetry):
    stream = FakeStream([1])
    proxy, _, inv = _proxy(telemetry, stream)
    assert proxy.response == "the-http-response"
    assert isinstance(proxy, FakeStream)
    list(proxy)


def test_failing_chunk_handler_does_not_break_the_stream(telemetry, span_exporter):
    def boom(inv, chunk):
        raise RuntimeError("parser bug")

    inv = telemetry.start(A.OP_CHAT, request_model="m")
    assert list(SyncStreamProxy(FakeStream([1, 2]), inv, boom)) == [1, 2]
    assert _span(span_exporter).status.status_code is StatusCode.UNSET


async def test_async_stream_exhausted_finishes_span(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeAsyncStream([1, 2]), AsyncStreamProxy)
    assert [c async for c in proxy] == [1, 2]
    assert _span(span_exporter).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 3


async def test_async_stream_broken_midway_fails_span(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeAsyncStream([1, 2], break_after=1), AsyncStreamProxy)
    with pytest.raises(ConnectionError):
        async for _ in proxy:
            pass
    assert _span(span_exporter).attributes[A.ERROR_TYPE] == "ConnectionError"


async def test_async_stream_closed_early_finishes_span(telemetry, span_exporter):
    stream = FakeAsyncStream([1, 2, 3])
    proxy, _, _ = _proxy(telemetry, stream, AsyncStreamProxy)
    await proxy.__anext__()
    await proxy.close()
    assert stream.closed
    assert _span(span_exporter).attributes[A.GENSIGHT_STREAM_ENDED_BY] == "close"


async def test_async_context_manager_returns_proxy_and_finishes(telemetry, span_exporter):
    proxy, _, _ = _proxy(telemetry, FakeAsyncStream([1, 2]), AsyncStreamProxy)
    async with proxy as s:
        assert s is proxy
        await s.__anext__()
    assert len(span_exporter.get_finished_spans()) == 1
