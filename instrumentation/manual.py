"""The manual API: record LLM calls made by clients we do not instrument, and the shared
telemetry that the decorators (:mod:`.tools`, :mod:`.retrieval`) record into.

Teams with an in-house client (or their own monitoring wrapper) call one context manager and
get the same span, metrics and cost as the automatic instrumentors, because it drives the same
:class:`~gensight.instrumentation.lifecycle.Invocation`::

    from gensight.instrumentation import track_llm_call

    with track_llm_call("acme", "acme-large", server_address="llm.internal") as call:
        reply = my_client.complete(prompt)
        call.set_usage(input_tokens=reply.prompt_tokens, output_tokens=reply.completion_tokens)
        call.set_response(model=reply.model, id=reply.id, finish_reasons=[reply.stop])

    # an answer served from the application's own response cache: no provider call was billed
    with track_llm_call("openai", "gpt-4o-mini", cache_hit=True, input_tokens=812, output_tokens=95):
        reply = cache[key]

``cache_hit=True`` sets ``gensight.cache.hit=true`` (span and metric attribute) and cost 0.0; the
token counts stay, so hit ratio and cost saved (tokens x price of the cache hits) can be computed
downstream. ``cache_hit=False`` marks an explicit miss; leave it ``None`` when there is no cache.

Exceptions inside the block fail the span (``error.type`` = the exception class) and are
re-raised unchanged. Telemetry errors never reach the application.

Where spans go: the global tracer/meter providers (what ``opentelemetry-instrument`` sets up),
unless :func:`configure` was given others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from gensight.instrumentation import attributes as A
from gensight.instrumentation._values import non_negative_int
from gensight.instrumentation.config import ContentCapture
from gensight.instrumentation.lifecycle import Invocation, Telemetry
from gensight.pricing import PricingTable

logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "gensight.instrumentation.manual"

_default: Telemetry | None = None
_default_lock = threading.Lock()


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    pricing: PricingTable | None = None,
    capture: ContentCapture | None = None,
    logger_provider: Any = None,
) -> Telemetry:
    """Choose where the manual API and the ``tool`` / ``retrieval`` decorators record.

    Call with no arguments to go back to the global providers (and re-read the content
    capture switch). Returns the telemetry now in use. ``logger_provider``: where
    ``record_evaluation`` / ``record_feedback`` emit their log records.
    """
    global _default
    from gensight.instrumentation.evaluation import set_logger_provider

    set_logger_provider(logger_provider)
    telemetry = Telemetry(tracer_provider, meter_provider, pricing=pricing, capture=capture, scope=INSTRUMENTATION_SCOPE)
    with _default_lock:
        _default = telemetry
    return telemetry


def default_telemetry() -> Telemetry:
    """The telemetry of the manual API; created on first use from the global providers (which
    are proxies until the SDK is set up, so early use is fine)."""
    global _default
    telemetry = _default
    if telemetry is None:
        with _default_lock:
            if _default is None:
                _default = Telemetry(scope=INSTRUMENTATION_SCOPE)
            telemetry = _default
    return telemetry


class LLMCall:
    """One manually tracked LLM call. Use as a context manager (``with`` in sync or async code)."""

    __slots__ = ("_telemetry", "_operation", "_provider", "_model", "_server", "_attributes", "_preset",
                 "_cache_hit", "_cost_usd", "invocation")

    def __init__(
        self,
        telemetry: Telemetry,
        operation: str,
        provider: str,
        model: str | None,
        server: tuple[str | None, int | None],
        attributes: Mapping[str, Any] | None,
        preset: dict[str, Any],
        cache_hit: bool | None,
        cost_usd: float | None,
    ):
        self._telemetry = telemetry
        self._operation = operation
        self._provider = provider
        self._model = model
        self._server = server
        self._attributes = attributes
        self._preset = preset
        self._cache_hit = cache_hit
        self._cost_usd = cost_usd
        self.invocation: Invocation | None = None

    # -- while in flight -------------------------------------------------------------------------
    def _inv(self) -> Invocation:
        if self.invocation is None:
            raise RuntimeError("track_llm_call(...) must be entered with 'with' before use")
        return self.invocation

    def set_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        """Token counts; ``input_tokens`` INCLUDES cache reads/writes (GenAI semconv)."""
        self._inv().set_usage(
            input_tokens=_count(input_tokens),
            output_tokens=_count(output_tokens),
            cache_read_tokens=_count(cache_read_tokens),
            cache_write_tokens=_count(cache_write_tokens),
            reasoning_tokens=_count(reasoning_tokens),
        )

    def set_response(
        self, *, model: str | None = None, id: str | None = None, finish_reasons: Sequence[str] | None = None
    ) -> None:
        self._inv().set_response(model=model, id=id, finish_reasons=list(finish_reasons) if finish_reasons else None)

    def mark_cache_hit(self, hit: bool = True) -> None:
        """The answer came from the application's own cache (no provider call, cost 0)."""
        inv = self._inv()
        inv.add_metric_attribute(A.GENSIGHT_CACHE_HIT, bool(hit))
        if hit:
            inv.set_cost(0.0)

    def mark_first_chunk(self) -> None:
        """A streamed answer's first chunk arrived: records time to first chunk (first call wins)."""
        self._inv().mark_first_chunk()

    def set_cost(self, cost_usd: float) -> None:
        """A cost your client knows better than the pricing table (wins over it)."""
        self._inv().set_cost(cost_usd)

    def set_attribute(self, key: str, value: Any) -> None:
        self._inv().set_attribute(key, value)

    def record_content(self, *, input_messages: Any = None, output_messages: Any = None,
                       system_instructions: Any = None) -> None:
        """Messages in the semconv JSON shape; recorded only when content capture is on."""
        self._inv().record_content(input_messages=input_messages, output_messages=output_messages,
                                   system_instructions=system_instructions)

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> LLMCall:
        inv = self._telemetry.start(
            self._operation,
            provider=self._provider,
            request_model=self._model,
            server_address=self._server[0],
            server_port=self._server[1],
            attributes=self._attributes,
        )
        self.invocation = inv
        try:
            if self._preset:
                self.set_usage(**self._preset)
            if self._cache_hit is not None:
                self.mark_cache_hit(self._cache_hit)
            if self._cost_usd is not None:
                inv.set_cost(self._cost_usd)
        except Exception:  # pragma: no cover - defensive: never break the caller
            logger.debug("gensight: could not preset the manual call", exc_info=True)
        inv.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.invocation is not None:
            self.invocation.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> LLMCall:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def _count(value: Any) -> int | None:
    """A token count, or None for anything that is not a non-negative int (never raise)."""
    count = non_negative_int(value)
    if count is None and value is not None:
        logger.debug("gensight: ignoring bad token count %r", value)
    return count


def track_llm_call(
    provider: str,
    model: str | None,
    *,
    operation: str = A.OP_CHAT,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    cache_hit: bool | None = None,
    cost_usd: float | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    telemetry: Telemetry | None = None,
) -> LLMCall:
    """Record one LLM call made by a client Gensight does not instrument. See the module doc.

    ``provider`` is the ``gen_ai.provider.name`` (``openai``, ``anthropic``, ... or your own
    name; the pricing table is looked up with it), ``model`` the requested model. Token counts
    given here can be updated inside the block with :meth:`LLMCall.set_usage`.
    """
    preset = {
        k: v
        for k, v in (
            ("input_tokens", input_tokens),
            ("output_tokens", output_tokens),
            ("cache_read_tokens", cache_read_tokens),
            ("cache_write_tokens", cache_write_tokens),
            ("reasoning_tokens", reasoning_tokens),
        )
        if v is not None
    }
    return LLMCall(
        telemetry or default_telemetry(),
        operation,
        provider,
        model,
        (server_address, server_port),
        attributes,
        preset,
        cache_hit,
        cost_usd,
    )
