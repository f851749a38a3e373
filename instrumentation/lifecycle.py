"""One invocation lifecycle for every GenAI operation: chat, completions, embeddings, tools, retrievals.

An instrumentor builds one :class:`Telemetry` (tracer + metric instruments + content-capture
mode + pricing table) in ``_instrument`` and starts one :class:`Invocation` per operation. The
invocation owns the span and all metric recording, so provider wrappers only translate their
SDK's request/response objects into calls on it.

Public interface
----------------
::

    from gensight.instrumentation.lifecycle import Telemetry
    telemetry = Telemetry(tracer_provider=None, meter_provider=None)   # None = global providers
    # optional: pricing=PricingTable(...), capture=ContentCapture.SPAN_ONLY, scope="gensight.x"

    inv = telemetry.start(
        "chat",                       # gen_ai.operation.name (attributes.OP_*)
        provider="openai",            # gen_ai.provider.name  (also picks the pricing table)
        request_model="gpt-4o-mini",  # gen_ai.request.model
        name=None,                    # span name target when not the model: tool name / data source id
        server_address="api.openai.com", server_port=443,
        attributes={...},             # extra span attributes set AT START (samplers see them)
    )
    # span name "{operation} {name or request_model}"; kind CLIENT, or INTERNAL for execute_tool
    # (pass kind=SpanKind.X to override). For execute_tool / retrieval, ``name`` is also set as
    # gen_ai.tool.name / gen_ai.data_source.id on the span and the metrics.

    inv.set_attribute(key, value) / inv.set_attributes({...})  # span only; None values skipped;
                                        # buffered, applied in one batch when the call finishes
    inv.add_metric_attribute(key, value)                        # LOW-cardinality only
    inv.set_response(model=..., id=..., finish_reasons=[...])
    inv.set_usage(input_tokens=, output_tokens=, cache_read_tokens=, cache_write_tokens=,
                  reasoning_tokens=)    # input INCLUDES cache read/write (semconv); None = keep
    inv.set_cost(0.0)                   # caller-known cost wins over the pricing table
    inv.mark_first_chunk()              # streams: records time to first chunk (first call wins)
    inv.capture_content                 # ContentCapture: check .enabled before building messages
    inv.record_content(input_messages=[...], output_messages=[...], system_instructions=[...])
                                        # no-op unless capture is on; JSON-encoded per the semconv;
                                        # span attributes and/or ONE span event
                                        # gen_ai.client.inference.operation.details at finish
    inv.stop()                          # success: cost, span attributes, metrics, span.end()
    inv.fail(exc_or_error_type)         # error.type (class name, "_OTHER" fallback) + status
    inv.finished                        # True once stop/fail ran (they run at most once)

    with telemetry.start(...) as inv:   # span is current inside; exception -> fail + re-raise,
        ...                             # normal exit -> stop()
    with inv.activate():                # span current inside, NOT finished on exit (streams:
        resp = call()                   # hand the invocation to gensight.instrumentation.stream)

Guarantees: telemetry code never raises into the application (internal errors are logged at
debug level and swallowed); span attributes are only set while ``span.is_recording()``, but
metrics are recorded for every call (metrics computed after sampling would undercount); an
invocation finishes exactly once; an unknown model gets no cost attribute and one warning
(from :mod:`gensight.pricing`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, TracerProvider

from gensight._version import __version__
from gensight.instrumentation import attributes as A
from gensight.instrumentation.config import ContentCapture, content_capture_mode
from gensight.instrumentation.metrics import INSTRUMENTATION_SCOPE, SCHEMA_URL, Instruments
from gensight.instrumentation.variants import current_variant
from gensight.pricing import PricingTable, default_table, service_tier

logger = logging.getLogger(__name__)

CONTENT_EVENT_NAME = "gen_ai.client.inference.operation.details"
_MAX_STATUS_DESCRIPTION_CHARS = 256


class Telemetry:
    """Tracer, instruments, capture mode and pricing shared by all invocations of one instrumentor."""

    __slots__ = ("tracer", "instruments", "capture", "_pricing")

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        pricing: PricingTable | None = None,
        capture: ContentCapture | None = None,
        scope: str = INSTRUMENTATION_SCOPE,
    ):
        self.tracer = trace.get_tracer(scope, __version__, tracer_provider, schema_url=SCHEMA_URL)
        self.instruments = Instruments(meter_provider, scope)
        self.capture = content_capture_mode() if capture is None else capture
        self._pricing = pricing

    @property
    def pricing(self) -> PricingTable:
        """The given table, else the process-wide one (re-read after ``reset_default_table()``)."""
        return self._pricing if self._pricing is not None else default_table()

    def start(
        self,
        operation: str,
        *,
        provider: str | None = None,
        request_model: str | None = None,
        name: str | None = None,
        kind: SpanKind | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Invocation:
        """Open the span for one operation. Never raises: on an internal error the invocation
        is a no-op one (non-recording span) and the application carries on."""
        try:
            return Invocation(
                self, operation, provider, request_model, name, kind, server_address, server_port, attributes
            )
        except Exception:  # pragma: no cover - defensive
            logger.debug("gensight: could not start invocation", exc_info=True)
            return Invocation.noop(self)


def attach(span: Span) -> object | None:
    """Make ``span`` current; the token to undo it with (None if that failed). What
    :meth:`Invocation.activate` does on entry, for hot paths that cannot afford the ``with``
    object (:mod:`gensight.instrumentation.calls`)."""
    try:
        return otel_context.attach(trace.set_span_in_context(span))
    except Exception:  # pragma: no cover - defensive
        logger.debug("gensight: attach failed", exc_info=True)
        return None


def detach(token: object | None) -> None:
    """Undo :func:`attach` (a None token: nothing to undo)."""
    if token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:  # pragma: no cover - defensive
            logger.debug("gensight: detach failed", exc_info=True)


class _Activation:
    """What :meth:`Invocation.activate` returns: a plain context manager rather than a
    ``@contextmanager`` generator, because every instrumented call goes through one."""

    __slots__ = ("_invocation", "_token")

    def __init__(self, invocation: Invocation):
        self._invocation = invocation
        self._token: object | None = None

    def __enter__(self) -> Invocation:
        self._token = attach(self._invocation.span)
        return self._invocation

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        token, self._token = self._token, None
        detach(token)


class Invocation:
    """One operation in flight. See the module docstring for the interface."""

    __slots__ = (
        "_telemetry",
        "span",
        "operation",
        "provider",
        "request_model",
        "response_model",
        "response_id",
        "finish_reasons",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "time_to_first_chunk_s",
        "error_type",
        "_metric_attrs",
        "_start_s",
        "_done",
        "_token",
        "_pending",
        "_content_event",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        operation: str,
        provider: str | None,
        request_model: str | None,
        name: str | None,
        kind: SpanKind | None,
        server_address: str | None,
        server_port: int | None,
        attributes: Mapping[str, Any] | None,
    ):
        self._telemetry = telemetry
        self.operation = operation
        self.provider = provider
        self.request_model = request_model
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: Sequence[str] | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.cost_usd: float | None = None
        self.time_to_first_chunk_s: float | None = None
        self.error_type: str | None = None
        self._done = False
        self._token: object | None = None
        self._pending: dict[str, Any] = {}
        self._content_event: dict[str, Any] | None = None

        metric_attrs: dict[str, Any] = {A.GEN_AI_OPERATION_NAME: operation}
        if provider:
            metric_attrs[A.GEN_AI_PROVIDER_NAME] = provider
        if request_model:
            metric_attrs[A.GEN_AI_REQUEST_MODEL] = request_model
        if server_address:
            metric_attrs[A.SERVER_ADDRESS] = server_address
            if server_port:
                metric_attrs[A.SERVER_PORT] = server_port
        if name:
            if operation == A.OP_EXECUTE_TOOL:
                metric_attrs[A.GEN_AI_TOOL_NAME] = name
            elif operation == A.OP_RETRIEVAL:
                metric_attrs[A.GEN_AI_DATA_SOURCE_ID] = name
        self._metric_attrs = metric_attrs

        span_attrs = dict(metric_attrs)
        flag = current_variant()  # inside ``with variant(flag, value)``: the experiment arm
        if flag is not None:
            span_attrs.update(flag)
        if attributes:
            for key, value in attributes.items():
                if value is not None:
                    span_attrs[key] = value
        target = name or request_model
        if kind is None:
            kind = SpanKind.INTERNAL if operation == A.OP_EXECUTE_TOOL else SpanKind.CLIENT
        self.span: Span = telemetry.tracer.start_span(
            f"{operation} {target}" if target else operation, kind=kind, attributes=span_attrs
        )
        self._start_s = time.perf_counter()

    @classmethod
    def noop(cls, telemetry: Telemetry) -> Invocation:
        inv = cls.__new__(cls)
        inv._telemetry = telemetry
        inv.span = INVALID_SPAN
        inv._done = True
        inv._token = None
        inv._pending = {}
        inv._content_event = None
        inv._metric_attrs = {}
        for slot in ("operation", "provider", "request_model", "response_model", "response_id",
                     "finish_reasons", "input_tokens", "output_tokens", "cache_read_tokens",
                     "cache_write_tokens", "reasoning_tokens", "cost_usd", "time_to_first_chunk_s",
                     "error_type"):
            setattr(inv, slot, None)
        inv._start_s = time.perf_counter()
        return inv

    # -- while in flight -----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self._done

    @property
    def capture_content(self) -> ContentCapture:
        return self._telemetry.capture

    def set_attribute(self, key: str, value: Any) -> None:
        """Set a span attribute (None is skipped). Buffered and applied at finish in one batch:
        each SDK ``set_attribute`` takes a lock and validates, and this is the hot path."""
        if value is not None and not self._done:
            self._pending[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self._done:
            for key, value in attributes.items():
                if value is not None:
                    self._pending[key] = value

    def add_metric_attribute(self, key: str, value: Any) -> None:
        """Add a low-cardinality attribute to this call's metrics (and span)."""
        if value is not None:
            self._metric_attrs[key] = value
            self.set_attribute(key, value)

    def set_response(
        self,
        *,
        model: str | None = None,
        id: str | None = None,  # noqa: A002 - mirrors gen_ai.response.id
        finish_reasons: Sequence[str] | None = None,
    ) -> None:
        if model:
            self.response_model = model
        if id:
            self.response_id = id
        if finish_reasons:
            self.finish_reasons = finish_reasons

    def set_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        if input_tokens is not None:
            self.input_tokens = input_tokens
        if output_tokens is not None:
            self.output_tokens = output_tokens
        if cache_read_tokens is not None:
            self.cache_read_tokens = cache_read_tokens
        if cache_write_tokens is not None:
            self.cache_write_tokens = cache_write_tokens
        if reasoning_tokens is not None:
            self.reasoning_tokens = reasoning_tokens

    def set_cost(self, cost_usd: float | None) -> None:
        """A cost the caller knows (e.g. 0.0 for an application-cache hit); it wins over the
        pricing table. Negative or non-finite values are ignored."""
        if isinstance(cost_usd, (int, float)) and not isinstance(cost_usd, bool) and 0 <= cost_usd < float("inf"):
            self.cost_usd = float(cost_usd)

    def mark_first_chunk(self) -> None:
        if self.time_to_first_chunk_s is None and not self._done:
            self.time_to_first_chunk_s = time.perf_counter() - self._start_s

    def record_content(
        self,
        *,
        input_messages: Any = None,
        output_messages: Any = None,
        system_instructions: Any = None,
    ) -> None:
        """Record messages (semconv JSON) when content capture is on; otherwise do nothing."""
        mode = self._telemetry.capture
        if not mode.enabled or self._done or not self.span.is_recording():
            return
        try:
            attrs = {}
            for key, value in (
                (A.GEN_AI_INPUT_MESSAGES, input_messages),
                (A.GEN_AI_OUTPUT_MESSAGES, output_messages),
                (A.GEN_AI_SYSTEM_INSTRUCTIONS, system_instructions),
            ):
                if value is not None:
                    attrs[key] = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
            if not attrs:
                return
            if mode.on_span:
                self._pending.update(attrs)
            if mode.on_event:  # one event per operation, with input and output, added at finish
                if self._content_event is None:
                    self._content_event = {}
                self._content_event.update(attrs)
        except Exception:
            logger.debug("gensight: record_content failed", exc_info=True)

    def activate(self) -> _Activation:
        """``with inv.activate():`` the span is current inside the block, and not finished on exit."""
        return _Activation(self)

    def __enter__(self) -> Invocation:
        self._token = attach(self.span)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        token, self._token = self._token, None
        detach(token)
        if exc is not None:
            self.fail(exc)
        else:
            self.stop()

    # -- finishing -----------------------------------------------------------------------------
    def stop(self, end_time_ns: int | None = None) -> None:
        """Finish successfully. Second and later calls do nothing."""
        if self._done:
            return
        self._done = True
        try:
            self._finish(end_time_ns)
        except Exception:
            logger.debug("gensight: finishing invocation failed", exc_info=True)

    def fail(self, error: BaseException | str | None, end_time_ns: int | None = None) -> None:
        """Finish as failed: ``error.type`` = the exception's class name (or the given string,
        ``_OTHER`` when empty), span status ERROR. Second and later calls do nothing."""
        if self._done:
            return
        self._done = True
        try:
            if isinstance(error, BaseException):
                self.error_type = type(error).__name__ or A.ERROR_TYPE_OTHER
                description = f"{self.error_type}: {error}"[:_MAX_STATUS_DESCRIPTION_CHARS]
            else:
                self.error_type = error or A.ERROR_TYPE_OTHER
                description = self.error_type
            span = self.span
            if span.is_recording():
                span.set_status(Status(StatusCode.ERROR, description))
                span.set_attribute(A.ERROR_TYPE, self.error_type)
                if isinstance(error, Exception):
                    span.record_exception(error)
            self._metric_attrs[A.ERROR_TYPE] = self.error_type
            self._finish(end_time_ns)
        except Exception:
            logger.debug("gensight: failing invocation failed", exc_info=True)

    def _finish(self, end_time_ns: int | None) -> None:
        duration_s = time.perf_counter() - self._start_s
        model_for_price = self.response_model or self.request_model
        if self.cost_usd is None and (self.input_tokens is not None or self.output_tokens is not None):
            self.cost_usd = self._telemetry.pricing.cost_usd(
                self.provider,
                model_for_price,
                self.input_tokens,
                self.output_tokens,
                self.cache_read_tokens or 0,
                self.cache_write_tokens or 0,
                tier=service_tier(self._pending),  # priced at the tier the response reports
                at_ns=end_time_ns,  # the call's event time (None: now)
            )
        span = self.span
        if span.is_recording():
            attrs: dict[str, Any] = self._pending
            if self.response_model:
                attrs[A.GEN_AI_RESPONSE_MODEL] = self.response_model
            if self.response_id:
                attrs[A.GEN_AI_RESPONSE_ID] = self.response_id
            if self.finish_reasons:
                attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = list(self.finish_reasons)
            if self.input_tokens is not None:
                attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
            if self.output_tokens is not None:
                attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
            if self.cache_read_tokens is not None:
                attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read_tokens
            if self.cache_write_tokens is not None:
                attrs[A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = self.cache_write_tokens
            if self.reasoning_tokens is not None:
                attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning_tokens
            if self.cost_usd is not None:
                attrs[A.GEN_AI_USAGE_COST] = self.cost_usd
            if self.time_to_first_chunk_s is not None:
                attrs[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.time_to_first_chunk_s
            if attrs:
                span.set_attributes(attrs)
            if self._content_event:
                span.add_event(CONTENT_EVENT_NAME, self._content_event)
            span.end(end_time_ns)
        else:
            span.end(end_time_ns)
        self._record_metrics(duration_s)

    def _record_metrics(self, duration_s: float) -> None:
        inst = self._telemetry.instruments
        attrs = self._metric_attrs
        if self.response_model:
            attrs[A.GEN_AI_RESPONSE_MODEL] = self.response_model
        inst.operation_duration.record(duration_s, attrs)
        if self.time_to_first_chunk_s is not None:
            inst.time_to_first_chunk.record(self.time_to_first_chunk_s, attrs)
        if self.input_tokens is not None:
            inst.token_usage.record(self.input_tokens, {**attrs, A.GEN_AI_TOKEN_TYPE: A.TOKEN_TYPE_INPUT})
        if self.output_tokens is not None:
            inst.token_usage.record(self.output_tokens, {**attrs, A.GEN_AI_TOKEN_TYPE: A.TOKEN_TYPE_OUTPUT})
        if self.cost_usd is not None:
            inst.cost.add(self.cost_usd, attrs)
