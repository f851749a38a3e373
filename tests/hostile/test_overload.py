"""Overload: a saturated processor pushes back (RESOURCE_EXHAUSTED + RetryInfo, HTTP 503 +
Retry-After), keeps its memory bounded, and recovers with no stuck state once load drops.

Saturation is made deterministic by an analyser that blocks the pipeline worker until the test
opens its gate (capacity zero: any offered load is far beyond 3x capacity), with a small queue
bound (``queue.max_spans``). The load comes from the real OTel SDK ``OTLPSpanExporter`` (gRPC and
HTTP) on loopback, plus raw clients to read the exact answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from google.rpc import error_details_pb2
from harness import MetricsSink, processor_config, wait_for
from hostile_client import grpc_channel, http_get, send_grpc, send_http
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gensight.processor.server import ProcessorServer

QUEUE_MAX_SPANS = 1000
SPANS_PER_REQUEST = 500  # two requests fill the queue exactly
# While a flood is refused, memory is held by the requests in flight (6 concurrent 4 MB requests:
# client encoding, gRPC/HTTP buffers, decoded protobuf, call records, ~40 MB each), never by the
# backlog: the queue holds at most QUEUE_MAX_SPANS records. An unbounded queue would keep the
# whole flood (96 k spans of 2 KB, several hundred MB) and grow with every round.
MAX_RSS_GROWTH_MB = 500
MAX_RSS_PLATEAU_GROWTH_MB = 60


class Gate:
    """An analyser that holds the pipeline worker inside ``observe`` until opened (max 30 s)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()

    def observe(self, window: Any, records: Any) -> None:
        self.entered.set()
        self.opened.wait(30)

    def close(self, window: Any) -> list:
        return []


def sdk_spans(n: int, service: str, payload_bytes: int = 0) -> list[ReadableSpan]:
    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("gensight.test.overload")
    blob = "x" * payload_bytes
    for i in range(n):
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 10 + i % 7)
            span.set_attribute("gen_ai.usage.output_tokens", 5)
            if blob:
                span.set_attribute("app.payload", blob)
    provider.shutdown()
    return list(mem.get_finished_spans())


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture
def gated() -> Iterator[tuple[ProcessorServer, Gate]]:
    sink = MetricsSink()
    gate = Gate()
    config = processor_config(sink.port, queue={"max_spans": QUEUE_MAX_SPANS, "max_items": 64})
    server = ProcessorServer(config, analysers=[gate])
    server.start()
    try:
        yield server, gate
    finally:
        gate.opened.set()
        server.stop()
        sink.stop()


def saturate(server: ProcessorServer, gate: Gate) -> bytes:
    """Block the worker and fill the queue; returns a request body the queue refuses."""
    body = encode_spans(sdk_spans(SPANS_PER_REQUEST, "saturate")).SerializeToString()
    with grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        assert send_grpc(channel, body).ok
        assert wait_for(gate.entered.is_set)
        for _ in range(2):
            assert send_grpc(channel, body).ok
    assert wait_for(lambda: not server.pipeline.ready())
    return body


def test_saturated_grpc_receiver_answers_resource_exhausted_with_retry_info(gated):
    server, gate = gated
    body = saturate(server, gate)
    with grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                   request_serializer=None, response_deserializer=None)
        import grpc

        with pytest.raises(grpc.RpcError) as err:
            call(body, timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(err.value.trailing_metadata())
    info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert info.retry_delay.seconds + info.retry_delay.nanos / 1e9 > 0
    assert "grpc-status-details-bin" in trailers


def test_saturated_http_receiver_answers_503_with_retry_after(gated):
    server, gate = gated
    body = saturate(server, gate)
    answer = send_http(server.http_port, body)
    assert answer.code == "503"
    assert answer.retry_after is not None and int(answer.retry_after) >= 1


def test_refused_spans_are_counted_as_refused(gated):
    server, gate = gated
    body = saturate(server, gate)
    before = server.pipeline.counts["refused"]
    with grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        assert send_grpc(channel, body).code == "RESOURCE_EXHAUSTED"
    assert server.pipeline.counts["refused"] - before == SPANS_PER_REQUEST


def test_readyz_is_503_while_saturated_and_200_after_the_queue_drains(gated):
    server, gate = gated
    saturate(server, gate)
    assert http_get(server.http_port, "/readyz")[0] == 503
    assert http_get(server.http_port, "/healthz")[0] == 200  # alive, just not ready
    gate.opened.set()
    assert wait_for(lambda: http_get(server.http_port, "/readyz")[0] == 200)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_exporter_retries_and_delivers_once_load_drops(gated, protocol):
    server, gate = gated
    saturate(server, gate)
    if protocol == "grpc":
        exporter: Any = GrpcSpanExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True, timeout=20)
    else:
        exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces", timeout=20)
    spans = sdk_spans(SPANS_PER_REQUEST, f"retry-{protocol}")
    refused_before = server.pipeline.counts["refused"]
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(exporter.export(spans)))
    thread.start()
    try:
        # the exporter was refused at least once (it is now backing off), then load drops
        assert wait_for(lambda: server.pipeline.counts["refused"] > refused_before, timeout_s=15)
        gate.opened.set()
        thread.join(30)
    finally:
        gate.opened.set()
        thread.join(30)
        exporter.shutdown()
    assert result == [SpanExportResult.SUCCESS]
    # everything offered before and after the overload is processed: no stuck state
    assert wait_for(lambda: server.pipeline.counts["accepted"] >= 4 * SPANS_PER_REQUEST, timeout_s=20)


def test_flood_far_beyond_capacity_keeps_rss_bounded_and_recovers(gated):
    server, gate = gated
    saturate(server, gate)
    spans = sdk_spans(2000, "flood", payload_bytes=2048)  # one shared batch: ~4 MB of span data
    baseline = rss_mb()
    peak = [baseline]
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.05):
            peak[0] = max(peak[0], rss_mb())

    def flood(i: int, rounds: int) -> None:
        exporter: Any
        if i % 2:
            exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True, timeout=1)
        else:
            exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces", timeout=1)
        try:
            for _ in range(rounds):
                exporter.export(spans)  # refused; the SDK gives up within its 1 s deadline
        finally:
            exporter.shutdown()

    def phase(rounds: int) -> float:
        threads = [threading.Thread(target=flood, args=(i, rounds)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return peak[0]

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        first = phase(4)
        second = phase(4)
    finally:
        stop_sampling.set()
        sampler.join()
    print(f"RSS baseline {baseline:.0f} MB, peak after flood 1 {first:.0f} MB, after flood 2 {second:.0f} MB")
    # up to 6 x 8 x 2000 spans offered (the SDK may give up on some before sending them), none
    # queued beyond the bound while the worker is blocked
    assert server.pipeline.counts["refused"] >= 10 * 2000
    assert server.pipeline.queue_size <= QUEUE_MAX_SPANS
    # memory is held only by in-flight requests (bounded by concurrency), not by the backlog: a
    # second, equal flood adds less than the first did (with an unbounded queue it would add as much)
    assert second - first < max(MAX_RSS_PLATEAU_GROWTH_MB, first - baseline), f"RSS {baseline:.0f} -> {first:.0f} -> {second:.0f} MB"
    assert second - baseline < MAX_RSS_GROWTH_MB, f"RSS grew {second - baseline:.0f} MB"
    # load drops: the worker runs again, readiness returns, new data is accepted
    gate.opened.set()
    assert wait_for(lambda: server.pipeline.ready(), timeout_s=20)
    with grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        body = encode_spans(sdk_spans(10, "after-flood")).SerializeToString()
        answer = send_grpc(channel, body)
    assert answer.ok
    assert wait_for(lambda: server.pipeline.queue_size == 0, timeout_s=20)
