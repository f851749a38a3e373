"""The receiver -> pipeline interface: one call per decoded request, answered with an ``Admission``.

Receivers (gRPC, HTTP) decode the request, then call ``consumer(request, raw) -> Admission`` in
the receiving thread; ``raw`` is the request's protobuf bytes when the receiver has them (None for
OTLP/JSON), so the normaliser's C scanner can read them instead of the parsed message. The
consumer (the pipeline's; a trivial ``QueueConsumer`` is here for tests and simple setups) must
not block: it normalises, offers to the bounded queue and returns at once.

How receivers translate an ``Admission``:

=================================================  =========================================  ==================================
Admission                                          gRPC                                       OTLP/HTTP
=================================================  =========================================  ==================================
accepted=True, rejected_spans=0                    OK                                         200, empty ExportTraceServiceResponse
accepted=True, rejected_spans=n, error_message=m   OK + partial_success(n, m)                 200 + partial_success(n, m)
accepted=False, retry_after_s=s                    RESOURCE_EXHAUSTED + google.rpc.RetryInfo  503 + ``Retry-After: ceil(s)``
accepted=False, retry_after_s=None                 UNAVAILABLE (e.g. shutting down)           503 without Retry-After
consumer raised                                    INTERNAL (logged, counted)                 500 (logged, counted)
=================================================  =========================================  ==================================

``rejected_spans`` counts spans the consumer could not use (partial success is still success:
clients must not retry it). An accepted request whose spans were all rejected is still accepted.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gensight.processor.pipeline.queue import BoundedQueue

DEFAULT_RETRY_AFTER_S = 1.0


class Admission(NamedTuple):
    accepted: bool
    rejected_spans: int = 0
    error_message: str = ""
    retry_after_s: float | None = None


ACCEPTED = Admission(True)


class Consumer(Protocol):
    def __call__(self, request: ExportTraceServiceRequest, raw: bytes | None = None) -> Admission: ...


def count_spans(request: ExportTraceServiceRequest) -> int:
    """Total spans in a request (cheap: no per-span Python work)."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


class QueueConsumer:
    """Offers whole requests to a ``BoundedQueue``; full queue -> not admitted, retry later.

    The simplest consumer: no normalisation, no partial success. The pipeline's consumer does the
    same admission logic on call records instead of raw requests.
    """

    def __init__(self, queue: BoundedQueue[ExportTraceServiceRequest], retry_after_s: float = DEFAULT_RETRY_AFTER_S) -> None:
        self.queue = queue
        self.retry_after_s = retry_after_s

    def __call__(self, request: ExportTraceServiceRequest, raw: bytes | None = None) -> Admission:
        if self.queue.closed:
            return Admission(False, error_message="shutting down")
        if self.queue.offer(request, count_spans(request)):
            return ACCEPTED
        return Admission(False, error_message="queue full", retry_after_s=self.retry_after_s)
