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
``error_message`` without rejected spans is a warning (OTLP allows it: ``rejected_spans`` 0 and a
message), e.g. that invalid UTF-8 was replaced; receivers send it as ``partial_success`` too.

When lenient decoding (``lenient.py``) had to leave spans out or repair strings, the receiver
passes what it did as a third argument, ``consumer(request, raw, defects)`` (only then: a
consumer that never sees defective requests may ignore it); the consumer counts the rejected
spans with its own and folds them into its ``Admission`` (``Defects.fold``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from gensight.processor.pipeline.queue import BoundedQueue

DEFAULT_RETRY_AFTER_S = 1.0


class Admission(NamedTuple):
    accepted: bool
    rejected_spans: int = 0
    error_message: str = ""
    retry_after_s: float | None = None


ACCEPTED = Admission(True)


class Defects(NamedTuple):
    """What lenient decoding did to a request whose framing held (``lenient.py``)."""

    rejected_spans: int  # spans that could not be decoded: left out of the request
    repaired_values: int  # strings whose invalid UTF-8 was replaced with U+FFFD (spans kept)
    message: str  # names the first defect by its path (never a value); safe to send back

    def fold(self, rejected_spans: int, message: str) -> tuple[int, str]:
        """A consumer's own (rejected spans, message) with these defects added, decode's first."""
        return rejected_spans + self.rejected_spans, "; ".join(m for m in (self.message, message) if m)


class Consumer(Protocol):
    def __call__(self, request: ExportTraceServiceRequest, raw: bytes | None = None,
                 defects: Defects | None = None) -> Admission: ...


def deliver(consumer: Consumer, request: ExportTraceServiceRequest, raw: bytes | None,
            defects: Defects | None) -> Admission:
    """The receivers' call of ``consumer``: defects are passed only when there are some."""
    if defects is None:
        return consumer(request, raw)
    return consumer(request, raw, defects)


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

    def __call__(self, request: ExportTraceServiceRequest, raw: bytes | None = None,
                 defects: Defects | None = None) -> Admission:
        if self.queue.closed:
            return Admission(False, error_message="shutting down")
        if self.queue.offer(request, count_spans(request)):
            return ACCEPTED if defects is None else Admission(True, *defects.fold(0, ""))
        return Admission(False, error_message="queue full", retry_after_s=self.retry_after_s)


def export_response(admission: Admission, logs: bool) -> tuple[Any, bool]:
    """The OTLP answer to an accepted request (traces or logs) and whether it is partial: rejected
    items, or a message alone (a warning, e.g. strings repaired), go into ``partial_success``.
    One place for both receivers, so gRPC and HTTP answer alike."""
    response: Any = ExportLogsServiceResponse() if logs else ExportTraceServiceResponse()
    if not (admission.rejected_spans or admission.error_message):
        return response, False
    field = "rejected_log_records" if logs else "rejected_spans"
    setattr(response.partial_success, field, admission.rejected_spans)
    response.partial_success.error_message = admission.error_message
    return response, True
