"""OpenTelemetry instrumentation for the ``openai`` Python SDK (1.x - 3.x).

Wraps ``chat.completions.create``, ``responses.create`` and ``embeddings.create`` (sync and
async, streamed or not), and the legacy ``completions.create`` (``text_completion``). Each call
becomes one GenAI-semconv span plus metrics, with token usage (cache reads, cache writes,
reasoning tokens) and USD cost. Loaded by ``opentelemetry-instrument`` through the
``gensight_openai`` entry point, or by hand::

    from gensight.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=..., meter_provider=...)   # both optional

The wrappers are thin: every method gets the shared call wrapper
(:mod:`gensight.instrumentation.calls`) around one shared
:class:`~gensight.instrumentation.lifecycle.Invocation`; this module only says, per kind of
call, how to start it (request side: :mod:`._openai_request`) and how to read its response or
stream (:mod:`._openai_response`). Streams go through the shared stream proxy. Message content
is recorded only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` enables it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from gensight.instrumentation import attributes as A
from gensight.instrumentation._openai_request import (
    chat_input_messages,
    embedding_request_attributes,
    provider_for,
    request_attributes,
    responses_input_messages,
)
from gensight.instrumentation._openai_response import (
    ChatStreamState,
    CompletionStreamState,
    on_chat_response,
    on_completion_response,
    on_embeddings_response,
    on_responses_event,
    on_responses_response,
)
from gensight.instrumentation._values import server_of
from gensight.instrumentation.calls import (
    async_call_wrapper,
    proxy_stream,
    record_response,
    sync_call_wrapper,
)
from gensight.instrumentation.instrumentor import GensightInstrumentor
from gensight.instrumentation.lifecycle import Invocation, Telemetry
from gensight.instrumentation.stream import ChunkHandler, EndHandler

logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "gensight.instrumentation.openai"

_CHAT_MODULE = "openai.resources.chat.completions"
_RESPONSES_MODULE = "openai.resources.responses"
_EMBEDDINGS_MODULE = "openai.resources.embeddings"
_COMPLETIONS_MODULE = "openai.resources.completions"  # legacy text completions

# (module, sync class, async class, kind): each class's ``create`` is wrapped
_TARGETS = (
    (_CHAT_MODULE, "Completions", "AsyncCompletions", "chat"),
    (_RESPONSES_MODULE, "Responses", "AsyncResponses", "responses"),
    (_EMBEDDINGS_MODULE, "Embeddings", "AsyncEmbeddings", "embeddings"),
    (_COMPLETIONS_MODULE, "Completions", "AsyncCompletions", "completions"),
)


class OpenAIInstrumentor(GensightInstrumentor):
    """Instruments the OpenAI SDK. Options: ``tracer_provider``, ``meter_provider``,
    ``pricing`` (a :class:`gensight.pricing.PricingTable`), ``capture`` (a ContentCapture)."""

    scope = INSTRUMENTATION_SCOPE
    dependencies = ("openai >= 1.0",)

    def _wrap_methods(self, telemetry: Telemetry, kwargs: Mapping[str, Any]) -> None:
        for module_name, sync_cls, async_cls, kind in _TARGETS:  # a 1.x SDK may lack the Responses API
            self._wrap(module_name, sync_cls, "create", _sync_wrapper(telemetry, kind))
            self._wrap(module_name, async_cls, "create", _async_wrapper(telemetry, kind))


# -- starting a call, per kind ----------------------------------------------------------------
def _start(telemetry: Telemetry, operation: str, instance: Any, kwargs: Mapping[str, Any],
           attributes: dict[str, Any]) -> Invocation:
    host, port = server_of(getattr(instance, "_client", None))
    model = kwargs.get("model")
    return telemetry.start(
        operation,
        provider=provider_for(host),
        request_model=model if isinstance(model, str) else None,
        server_address=host,
        server_port=port,
        attributes=attributes,
    )


def _chat_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    inv = _start(telemetry, A.OP_CHAT, instance, kwargs, request_attributes(kwargs))
    if telemetry.capture.enabled:
        inv.record_content(input_messages=chat_input_messages(kwargs.get("messages")))
    return inv


def _responses_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    inv = _start(telemetry, A.OP_CHAT, instance, kwargs, request_attributes(kwargs))
    if telemetry.capture.enabled:
        instructions = kwargs.get("instructions")
        inv.record_content(
            input_messages=responses_input_messages(kwargs.get("input")),
            system_instructions=[{"type": "text", "content": instructions}] if isinstance(instructions, str) else None,
        )
    return inv


def _completion_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    inv = _start(telemetry, A.OP_TEXT_COMPLETION, instance, kwargs, request_attributes(kwargs))
    if telemetry.capture.enabled:
        prompt = kwargs.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else [p for p in prompt or () if isinstance(p, str)]
        inv.record_content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": p}]}
                                           for p in prompts])
    return inv


def _embeddings_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    return _start(telemetry, A.OP_EMBEDDINGS, instance, kwargs, embedding_request_attributes(kwargs))


# -- reading a stream, per kind: a fresh state per stream, its bound methods as the callbacks --
StreamHandlers = Callable[[Telemetry], tuple[ChunkHandler, EndHandler | None]]


def _chat_stream_handlers(telemetry: Telemetry) -> tuple[ChunkHandler, EndHandler | None]:
    state = ChatStreamState(telemetry.capture.enabled)
    return state.on_chunk, state.on_end


def _completion_stream_handlers(telemetry: Telemetry) -> tuple[ChunkHandler, EndHandler | None]:
    state = CompletionStreamState(telemetry.capture.enabled)
    return state.on_chunk, state.on_end


def _responses_stream_handlers(telemetry: Telemetry) -> tuple[ChunkHandler, EndHandler | None]:
    return on_responses_event, None  # the final event carries the whole response


# kind -> (start, on_response, stream handler factory or None)
_KINDS: dict[str, tuple[Callable[[Telemetry, Any, Mapping[str, Any]], Invocation],
                        Callable[[Invocation, Any], None], StreamHandlers | None]] = {
    "chat": (_chat_start, on_chat_response, _chat_stream_handlers),
    "responses": (_responses_start, on_responses_response, _responses_stream_handlers),
    "embeddings": (_embeddings_start, on_embeddings_response, None),
    "completions": (_completion_start, on_completion_response, _completion_stream_handlers),
}


# -- finishing a call -------------------------------------------------------------------------
# ``with_raw_response`` / ``with_streaming_response`` results: the parsed object is one step away
_RAW_RESPONSES = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})


def _parsed(result: Any, kwargs: Mapping[str, Any]) -> Any:
    """The parsed body of a ``with_raw_response`` result (already read; ``parse()`` caches), or
    None when reading it would consume a body the app has not read yet (streamed responses)
    or cannot be parsed (the response readers take None as "nothing to read")."""
    if type(result).__name__ != "LegacyAPIResponse" or kwargs.get("stream") is True:
        return None
    try:
        return result.parse()
    except Exception:
        logger.debug("gensight: could not parse a raw openai response", exc_info=True)
        return None


def _finish(telemetry: Telemetry, on_response: Callable[[Invocation, Any], None],
            stream_handlers: StreamHandlers | None, inv: Invocation, result: Any, kwargs: Mapping[str, Any],
            proxy_cls: type) -> Any:
    """After the SDK call returned: a stream goes behind the stream proxy (which finishes the
    span when the stream ends); anything else is read and the span finished."""
    raw = type(result).__name__ in _RAW_RESPONSES
    if stream_handlers is not None and kwargs.get("stream") is True and not raw:
        return proxy_stream(inv, result, proxy_cls, *stream_handlers(telemetry))
    record_response(inv, on_response, _parsed(result, kwargs) if raw else result)
    return result


def _sync_wrapper(telemetry: Telemetry, kind: str) -> Callable[..., Any]:
    start, on_response, stream_handlers = _KINDS[kind]
    return sync_call_wrapper(functools.partial(start, telemetry),
                             functools.partial(_finish, telemetry, on_response, stream_handlers))


def _async_wrapper(telemetry: Telemetry, kind: str) -> Callable[..., Any]:
    start, on_response, stream_handlers = _KINDS[kind]
    return async_call_wrapper(functools.partial(start, telemetry),
                              functools.partial(_finish, telemetry, on_response, stream_handlers))
