"""Downstream outage: the metrics backend (a real OTLP/gRPC sink) goes away for a while.

Exported metrics are buffered up to the configured bound (``export.max_queue_requests``) and
delivered when the backend returns; beyond the bound the oldest are dropped and counted
(``gensight.processor.export.items{outcome=dropped}``); ingestion keeps answering OK throughout.
Short windows (0.2 s) make every window close produce an export request.
"""

from __future__ import annotations

import random
import time
from typing import Any

from harness import MetricsSink, processor_config, running_processor, wait_for
from hostile_client import grpc_channel, send_grpc
from hostile_corpus import _Ids, make_span, resource_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

WINDOW_S = 0.2


def _config(sink_port: int, max_queue_requests: int) -> Any:
    return processor_config(
        sink_port,
        pipeline={"window_s": WINDOW_S, "allowed_lateness_s": 0.0, "idle_tick_s": 0.02},
        export={"max_queue_requests": max_queue_requests, "initial_backoff_s": 0.05, "max_backoff_s": 0.2,
                "timeout_s": 1.0},
    )


IDS = _Ids(random.Random(3))


def _send(channel: Any, service: str) -> bool:
    body = ExportTraceServiceRequest(resource_spans=[resource_spans(service, [make_span(IDS, time.time_ns())])])
    return send_grpc(channel, body.SerializeToString(), timeout_s=5).ok


def _services(sink: MetricsSink) -> set[str]:
    return {service for service, *_ in sink.rows("gensight.calls")}


def _exporter(server: Any) -> Any:
    return server.sinks[0].metrics


def test_metrics_are_buffered_while_the_backend_is_down_and_delivered_when_it_returns():
    sink = MetricsSink()
    try:
        with running_processor(_config(sink.port, max_queue_requests=1000)) as server, \
                grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            assert _send(channel, "before-outage")
            assert wait_for(lambda: "before-outage" in _services(sink))
            sink.stop()
            answers = []
            for i in range(3):
                answers.append(_send(channel, f"during-outage-{i}"))
                time.sleep(WINDOW_S)
            assert all(answers), "ingestion must not block or fail while the backend is down"
            assert wait_for(lambda: _exporter(server).stats().queued_requests >= 3)
            sink.start()  # same port
            assert wait_for(lambda: {f"during-outage-{i}" for i in range(3)} <= _services(sink), timeout_s=40)
            assert _exporter(server).stats().dropped_requests == 0
    finally:
        sink.stop()


def test_beyond_the_buffer_bound_the_oldest_metrics_are_dropped_and_counted():
    sink = MetricsSink()
    try:
        with running_processor(_config(sink.port, max_queue_requests=3)) as server, \
                grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            assert _send(channel, "before-outage")
            assert wait_for(lambda: "before-outage" in _services(sink))
            sink.stop()
            answers = []
            for i in range(10):
                answers.append(_send(channel, f"during-outage-{i}"))
                time.sleep(WINDOW_S)
            assert all(answers), "ingestion must not block or fail while the backend is down"
            assert wait_for(lambda: _exporter(server).stats().dropped_requests > 0)
            assert _exporter(server).stats().queued_requests <= 3 + 1  # the bound + the one being retried
            sink.start()
            assert wait_for(lambda: "during-outage-9" in _services(sink), timeout_s=40)
            delivered = {s for s in _services(sink) if s.startswith("during-outage-")}
            # the newest survive; buffered ones in between were dropped (the request being
            # retried when the buffer overflowed is kept)
            assert len(delivered) <= 3 + 1 + 1 and "during-outage-9" in delivered
            # the drop is counted in the processor's own exported telemetry
            assert wait_for(lambda: any(dict(attrs).get("outcome") == "dropped" and value > 0
                                        for _, _, attrs, value in sink.rows("gensight.processor.export.items")),
                            timeout_s=40)
    finally:
        sink.stop()
