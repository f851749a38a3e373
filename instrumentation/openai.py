"""OpenTelemetry instrumentation for the ``openai`` Python SDK (1.x - 3.x).

Wraps ``chat.completions.create``, ``responses.create`` and ``embeddings.create`` (sync and
async, streamed or not), and the legacy ``completions.create`` (``text_completion``). Each call becomes one GenAI-semconv span plus metrics, with token usage
(cache reads, cache writes, reasoning tokens) and USD cost. Loaded by ``opentelemetry-instrument``
through the ``gensight_openai`` entry point, or by hand::

    from gensight.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=..., meter_provider=...)   # both optional

The wrappers are thin: they turn SDK arguments/responses into calls on the shared
:class:`~gensight.instrumentation.lifecycle.Invocation`; streams are handed to the shared
stream proxy with an OpenAI chunk handler. Message content is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` enables it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from opentelemetry.trace import set_span_in_context
from wrapt import wrap_function_wrapper

from gensight.instrumentation import attributes as A
from gensight.instrumentation.dependencies import require_library
from gensight.instrumentation.lifecycle import Invocation, Telemetry
from gensight.instrumentation.stream import AsyncStreamProxy, SyncStreamProxy

logger = logging.getLogger(__name__)

_INSTRUMENTS = ("openai >= 1.0",)
_SCOPE = "gensight.instrumentation.openai"

# (module, class, operation, request parser, response parser, stream handler factory)
_CHAT_MODULE = "openai.resources.chat.completions"
_RESPONSES_MODULE = "openai.resources.responses"
_EMBEDDINGS_MODULE = "openai.resources.embeddings"
_COMPLETIONS_MODULE = "openai.resources.completions"  # legacy text completions


def _given(value: Any) -> bool:
    """True for a real argument value (not None and not the SDK's NOT_GIVEN / omit sentinels)."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


# -- request side ------------------------------------------------------------------------------
_CHAT_PARAMS = (
    ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", A.GEN_AI_REQUEST_TOP_P),
    ("frequency_penalty", A.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", A.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("seed", A.GEN_AI_REQUEST_SEED),
    ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("max_completion_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("max_output_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("service_tier", A.GEN_AI_OPENAI_REQUEST_SERVICE_TIER),
)


def _request_attributes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for param, key in _CHAT_PARAMS:
        value = kwargs.get(param)
        if value is not None and _given(value) and isinstance(value, (int, float, str)):
            attrs[key] = value
    n = kwargs.get("n")
    if isinstance(n, int) and n != 1:
        attrs[A.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, (list, tuple)) and stop:
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]
    if kwargs.get("stream") is True:
        attrs[A.GEN_AI_REQUEST_STREAM] = True
    fmt = kwargs.get("response_format")
    fmt_type = fmt.get("type") if isinstance(fmt, Mapping) else None
    if fmt_type:
        attrs[A.GEN_AI_OUTPUT_TYPE] = "text" if fmt_type == "text" else "json"
    return attrs


def _embedding_request_attributes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    fmt = kwargs.get("encoding_format")
    if isinstance(fmt, str):
        attrs[A.GEN_AI_REQUEST_ENCODING_FORMATS] = [fmt]
    dims = kwargs.get("dimensions")
    if isinstance(dims, int) and not isinstance(dims, bool):
        attrs[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dims
    return attrs


def _server(instance: Any) -> tuple[str | None, int | None]:
    """server.address / server.port from the client's base_url (cheap; no parsing of strings)."""
    try:
        url = instance._client.base_url
        host = url.host or None
        port = url.port or (443 if url.scheme == "https" else 80 if url.scheme == "http" else None)
        return host, port
    except Exception:
        return None, None


def _provider(host: str | None) -> str:
    if host and host.endswith(".openai.azure.com"):
        return A.PROVIDER_AZURE_OPENAI
    return A.PROVIDER_OPENAI


# -- content (only when capture is on) ---------------------------------------------------------
def _parts_of(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, (list, tuple)):
        for p in content:
            if isinstance(p, Mapping) and p.get("type") in ("text", "input_text", "output_text"):
                parts.append({"type": "text", "content": p.get("text")})
            elif isinstance(p, Mapping):
                parts.append({"type": str(p.get("type", "unknown"))})
    return parts


def _chat_input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for m in messages or ():
        if not isinstance(m, Mapping):
            continue
        role = m.get("role")
        parts = _parts_of(m.get("content"))
        for tc in m.get("tool_calls") or ():
            fn = tc.get("function") or {}
            parts.append({"type": "tool_call", "id": tc.get("id"), "name": fn.get("name"),
                          "arguments": fn.get("arguments")})
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": m.get("tool_call_id"), "response": m.get("content")}]
        out.append({"role": role, "parts": parts})
    return out


def _responses_input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    out = []
    for item in value or ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "function_call_output":
            out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": item.get("call_id"),
                                                   "response": item.get("output")}]})
        elif kind == "function_call":
            out.append({"role": "assistant", "parts": [{"type": "tool_call", "id": item.get("call_id"),
                                                        "name": item.get("name"), "arguments": item.get("arguments")}]})
        else:
            out.append({"role": item.get("role", "user"), "parts": _parts_of(item.get("content"))})
    return out


# -- response side ----------------------------------------------------------------------------
def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _apply_chat_usage(inv: Invocation, usage: Any) -> None:
    if usage is None:
        return
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    inv.set_usage(
        input_tokens=_int(getattr(usage, "prompt_tokens", None)),
        output_tokens=_int(getattr(usage, "completion_tokens", None)),
        cache_read_tokens=_int(getattr(prompt_details, "cached_tokens", None)) if prompt_details else None,
        cache_write_tokens=_int(getattr(prompt_details, "cache_write_tokens", None)) if prompt_details else None,
        reasoning_tokens=_int(getattr(completion_details, "reasoning_tokens", None)) if completion_details else None,
    )


def _set_tool_calls(inv: Invocation, names: list[str], ids: list[str]) -> None:
    if names:
        inv.set_attribute(A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES, names)
    if ids:
        inv.set_attribute(A.GENSIGHT_RESPONSE_TOOL_CALL_IDS, ids)


def _on_chat_response(inv: Invocation, result: Any) -> None:
    choices = getattr(result, "choices", None)
    if choices is None:  # e.g. a with_raw_response wrapper: nothing we can read cheaply
        return
    finish_reasons = []
    names: list[str] = []
    ids: list[str] = []
    for choice in choices:
        finish_reasons.append(choice.finish_reason or "")
        for tc in getattr(choice.message, "tool_calls", None) or ():
            fn = getattr(tc, "function", None)
            if fn is not None and fn.name:
                names.append(fn.name)
            if tc.id:
                ids.append(tc.id)
    inv.set_response(model=result.model, id=result.id, finish_reasons=finish_reasons)
    _apply_chat_usage(inv, getattr(result, "usage", None))
    _set_tool_calls(inv, names, ids)
    inv.set_attribute(A.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT, getattr(result, "system_fingerprint", None))
    inv.set_attribute(A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, getattr(result, "service_tier", None))
    if inv.capture_content.enabled:
        out = []
        for choice in choices:
            msg = choice.message
            parts = _parts_of(msg.content)
            for tc in getattr(msg, "tool_calls", None) or ():
                fn = getattr(tc, "function", None)
                parts.append({"type": "tool_call", "id": tc.id, "name": getattr(fn, "name", None),
                              "arguments": getattr(fn, "arguments", None)})
            out.append({"role": msg.role or "assistant", "parts": parts, "finish_reason": choice.finish_reason})
        inv.record_content(output_messages=out)


def _on_completion_response(inv: Invocation, result: Any) -> None:
    choices = getattr(result, "choices", None)
    if choices is None:
        return
    inv.set_response(model=result.model, id=result.id, finish_reasons=[c.finish_reason or "" for c in choices])
    _apply_chat_usage(inv, getattr(result, "usage", None))
    if inv.capture_content.enabled:
        inv.record_content(output_messages=[
            {"role": "assistant", "parts": [{"type": "text", "content": c.text}], "finish_reason": c.finish_reason}
            for c in choices
        ])


def _responses_finish_reason(response: Any) -> str:
    status = getattr(response, "status", None)
    if status == "incomplete":
        details = getattr(response, "incomplete_details", None)
        return getattr(details, "reason", None) or "incomplete"
    if status == "failed":
        return "error"
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", None) == "function_call":
            return "tool_calls"
    return "stop"


def _on_responses_response(inv: Invocation, response: Any) -> None:
    if getattr(response, "output", None) is None:
        return
    inv.set_response(model=response.model, id=response.id, finish_reasons=[_responses_finish_reason(response)])
    usage = getattr(response, "usage", None)
    if usage is not None:
        in_details = getattr(usage, "input_tokens_details", None)
        out_details = getattr(usage, "output_tokens_details", None)
        inv.set_usage(
            input_tokens=_int(getattr(usage, "input_tokens", None)),
            output_tokens=_int(getattr(usage, "output_tokens", None)),
            cache_read_tokens=_int(getattr(in_details, "cached_tokens", None)) if in_details else None,
            cache_write_tokens=_int(getattr(in_details, "cache_write_tokens", None)) if in_details else None,
            reasoning_tokens=_int(getattr(out_details, "reasoning_tokens", None)) if out_details else None,
        )
    names = []
    ids = []
    parts: list[dict[str, Any]] = []
    for item in response.output:
        kind = getattr(item, "type", None)
        if kind == "function_call":
            names.append(item.name)
            ids.append(item.call_id)
            parts.append({"type": "tool_call", "id": item.call_id, "name": item.name, "arguments": item.arguments})
        elif kind == "message" and inv.capture_content.enabled:
            for c in item.content or ():
                if getattr(c, "type", None) == "output_text":
                    parts.append({"type": "text", "content": c.text})
    _set_tool_calls(inv, names, ids)
    inv.set_attribute(A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, getattr(response, "service_tier", None))
    if inv.capture_content.enabled:
        inv.record_content(output_messages=[{"role": "assistant", "parts": parts,
                                             "finish_reason": _responses_finish_reason(response)}])


def _on_embeddings_response(inv: Invocation, result: Any) -> None:
    usage = getattr(result, "usage", None)
    inv.set_response(model=getattr(result, "model", None))
    if usage is not None:
        inv.set_usage(input_tokens=_int(getattr(usage, "prompt_tokens", None)))
    data = getattr(result, "data", None)
    if data:
        emb = getattr(data[0], "embedding", None)
        if isinstance(emb, list):
            inv.set_attribute(A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, len(emb))


# -- streams ----------------------------------------------------------------------------------
class _ChatStreamState:
    """Accumulates a chat-completions stream: ids, finish reasons, tool calls, usage, content."""

    __slots__ = ("finish_reasons", "tool_calls", "text", "capture")

    def __init__(self, capture: bool):
        self.finish_reasons: dict[int, str] = {}
        self.tool_calls: dict[tuple[int, int], list[Any]] = {}  # (choice, index) -> [id, name, args]
        self.text: dict[int, list[str]] = {}
        self.capture = capture

    def on_chunk(self, inv: Invocation, chunk: Any) -> None:
        if inv.response_id is None:
            inv.set_response(model=getattr(chunk, "model", None), id=getattr(chunk, "id", None))
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            _apply_chat_usage(inv, usage)
        for choice in getattr(chunk, "choices", None) or ():
            idx = choice.index
            if choice.finish_reason:
                self.finish_reasons[idx] = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            for tc in delta.tool_calls or ():
                slot = self.tool_calls.get((idx, tc.index))
                if slot is None:
                    slot = self.tool_calls[(idx, tc.index)] = [None, None, []]
                if tc.id:
                    slot[0] = tc.id
                fn = tc.function
                if fn is not None:
                    if fn.name:
                        slot[1] = fn.name
                    if self.capture and fn.arguments:
                        slot[2].append(fn.arguments)
            if self.capture and delta.content:
                self.text.setdefault(idx, []).append(delta.content)

    def on_end(self, inv: Invocation) -> None:
        if self.finish_reasons:
            inv.set_response(finish_reasons=[self.finish_reasons[k] for k in sorted(self.finish_reasons)])
        calls = [self.tool_calls[k] for k in sorted(self.tool_calls)]
        _set_tool_calls(inv, [c[1] for c in calls if c[1]], [c[0] for c in calls if c[0]])
        if self.capture:
            choices = sorted(set(self.text) | set(self.finish_reasons) | {k[0] for k in self.tool_calls})
            out = []
            for idx in choices:
                parts: list[dict[str, Any]] = []
                if idx in self.text:
                    parts.append({"type": "text", "content": "".join(self.text[idx])})
                for (c, _), (cid, name, args) in sorted(self.tool_calls.items()):
                    if c == idx:
                        parts.append({"type": "tool_call", "id": cid, "name": name, "arguments": "".join(args)})
                out.append({"role": "assistant", "parts": parts, "finish_reason": self.finish_reasons.get(idx)})
            inv.record_content(output_messages=out)


class _CompletionStreamState:
    """Accumulates a legacy completions stream: ids, finish reasons, usage, text."""

    __slots__ = ("finish_reasons", "text", "capture")

    def __init__(self, capture: bool):
        self.finish_reasons: dict[int, str] = {}
        self.text: dict[int, list[str]] = {}
        self.capture = capture

    def on_chunk(self, inv: Invocation, chunk: Any) -> None:
        if inv.response_id is None:
            inv.set_response(model=getattr(chunk, "model", None), id=getattr(chunk, "id", None))
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            _apply_chat_usage(inv, usage)
        for choice in getattr(chunk, "choices", None) or ():
            if choice.finish_reason:
                self.finish_reasons[choice.index] = choice.finish_reason
            if self.capture and choice.text:
                self.text.setdefault(choice.index, []).append(choice.text)

    def on_end(self, inv: Invocation) -> None:
        if self.finish_reasons:
            inv.set_response(finish_reasons=[self.finish_reasons[k] for k in sorted(self.finish_reasons)])
        if self.capture:
            inv.record_content(output_messages=[
                {"role": "assistant", "parts": [{"type": "text", "content": "".join(self.text.get(i, []))}],
                 "finish_reason": self.finish_reasons.get(i)}
                for i in sorted(set(self.text) | set(self.finish_reasons))
            ])


_RESPONSE_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _on_responses_event(inv: Invocation, event: Any) -> None:
    kind = getattr(event, "type", None)
    if kind in _RESPONSE_FINAL_EVENTS:
        _on_responses_response(inv, event.response)
    elif kind == "response.created" and inv.response_id is None:
        response = event.response
        inv.set_response(model=getattr(response, "model", None), id=getattr(response, "id", None))


# -- wrappers ---------------------------------------------------------------------------------
def _start(telemetry: Telemetry, operation: str, instance: Any, kwargs: Mapping[str, Any],
           attributes: dict[str, Any]) -> Invocation:
    host, port = _server(instance)
    model = kwargs.get("model")
    return telemetry.start(
        operation,
        provider=_provider(host),
        request_model=model if isinstance(model, str) else None,
        server_address=host,
        server_port=port,
        attributes=attributes,
    )


def _chat_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    inv = _start(telemetry, A.OP_CHAT, instance, kwargs, _request_attributes(kwargs))
    if telemetry.capture.enabled:
        inv.record_content(input_messages=_chat_input_messages(kwargs.get("messages")))
    return inv


def _responses_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    inv = _start(telemetry, A.OP_CHAT, instance, kwargs, _request_attributes(kwargs))
    if telemetry.capture.enabled:
        instructions = kwargs.get("instructions")
        inv.record_content(
            input_messages=_responses_input_messages(kwargs.get("input")),
            system_instructions=[{"type": "text", "content": instructions}] if isinstance(instructions, str) else None,
        )
    return inv


def _completion_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    inv = _start(telemetry, A.OP_TEXT_COMPLETION, instance, kwargs, _request_attributes(kwargs))
    if telemetry.capture.enabled:
        prompt = kwargs.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else [p for p in prompt or () if isinstance(p, str)]
        inv.record_content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": p}]}
                                           for p in prompts])
    return inv


def _completion_stream_handlers(telemetry: Telemetry) -> tuple[Any, Any]:
    state = _CompletionStreamState(telemetry.capture.enabled)
    return state.on_chunk, state.on_end


def _embeddings_start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    return _start(telemetry, A.OP_EMBEDDINGS, instance, kwargs, _embedding_request_attributes(kwargs))


def _chat_stream_handlers(telemetry: Telemetry) -> tuple[Any, Any]:
    state = _ChatStreamState(telemetry.capture.enabled)
    return state.on_chunk, state.on_end


def _responses_stream_handlers(telemetry: Telemetry) -> tuple[Any, Any]:
    return _on_responses_event, None


# operation kind -> (start, on_response, stream handler factory or None)
_KINDS: dict[str, tuple[Any, Any, Any]] = {
    "chat": (_chat_start, _on_chat_response, _chat_stream_handlers),
    "responses": (_responses_start, _on_responses_response, _responses_stream_handlers),
    "embeddings": (_embeddings_start, _on_embeddings_response, None),
    "completions": (_completion_start, _on_completion_response, _completion_stream_handlers),
}


# ``with_raw_response`` / ``with_streaming_response`` results: the parsed object is one step away
_RAW_RESPONSES = frozenset({"LegacyAPIResponse", "APIResponse", "AsyncAPIResponse"})


def _parsed(result: Any, kwargs: Mapping[str, Any]) -> Any:
    """The parsed body of a ``with_raw_response`` result (already read; ``parse()`` caches), or
    None when reading it would consume a body the app has not read yet (streamed responses)."""
    if type(result).__name__ != "LegacyAPIResponse" or kwargs.get("stream") is True:
        return None
    return result.parse()


def _attach(inv: Invocation) -> object | None:
    """Make the call's span current while the SDK sends the request (so HTTP-client spans nest
    under it); plain attach/detach rather than a context manager: this is the hot path."""
    try:
        return otel_context.attach(set_span_in_context(inv.span))
    except Exception:  # pragma: no cover - defensive
        return None


def _detach(token: object | None) -> None:
    if token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:  # pragma: no cover - defensive
            logger.debug("gensight: detach failed", exc_info=True)


def _finish(telemetry: Telemetry, kind: str, inv: Any, result: Any, kwargs: dict[str, Any], proxy: Any) -> Any:
    """After the SDK call returned: hand a stream to ``proxy`` (it finishes the span when the
    stream ends), or read the response and stop. Shared by the sync and async wrappers."""
    _, on_response, stream_handlers = _KINDS[kind]
    raw = type(result).__name__ in _RAW_RESPONSES
    if stream_handlers is not None and kwargs.get("stream") is True and not raw:
        try:
            on_chunk, on_end = stream_handlers(telemetry)
            return proxy(result, inv, on_chunk, on_end)
        except Exception:
            logger.debug("gensight: could not wrap stream", exc_info=True)
            inv.stop()
            return result
    try:
        on_response(inv, _parsed(result, kwargs) if raw else result)
    except Exception:
        logger.debug("gensight: could not read %s response", kind, exc_info=True)
    inv.stop()
    return result


def _sync_wrapper(telemetry: Telemetry, kind: str) -> Any:
    start = _KINDS[kind][0]

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        inv = start(telemetry, instance, kwargs)
        token = _attach(inv)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            inv.fail(exc)
            raise
        finally:
            _detach(token)
        return _finish(telemetry, kind, inv, result, kwargs, SyncStreamProxy)

    return wrapper


def _async_wrapper(telemetry: Telemetry, kind: str) -> Any:
    start = _KINDS[kind][0]

    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        inv = start(telemetry, instance, kwargs)
        token = _attach(inv)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            inv.fail(exc)
            raise
        finally:
            _detach(token)
        return _finish(telemetry, kind, inv, result, kwargs, AsyncStreamProxy)

    return wrapper


# (module, sync class, async class, kind)
_TARGETS = (
    (_CHAT_MODULE, "Completions", "AsyncCompletions", "chat"),
    (_RESPONSES_MODULE, "Responses", "AsyncResponses", "responses"),
    (_EMBEDDINGS_MODULE, "Embeddings", "AsyncEmbeddings", "embeddings"),
    (_COMPLETIONS_MODULE, "Completions", "AsyncCompletions", "completions"),
)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the OpenAI SDK. Options: ``tracer_provider``, ``meter_provider``,
    ``pricing`` (a :class:`gensight.pricing.PricingTable`), ``capture`` (a ContentCapture)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        import importlib

        require_library(self)  # the launcher skips the dependency check (see .dependencies)
        telemetry = Telemetry(
            kwargs.get("tracer_provider"),
            kwargs.get("meter_provider"),
            pricing=kwargs.get("pricing"),
            capture=kwargs.get("capture"),
            scope=_SCOPE,
        )
        for module_name, sync_cls, async_cls, kind in _TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:  # e.g. an openai 1.x without the Responses API
                logger.debug("gensight: %s not available; not instrumented", module_name)
                continue
            for cls_name, factory in ((sync_cls, _sync_wrapper), (async_cls, _async_wrapper)):
                cls = getattr(module, cls_name, None)
                if cls is None or not hasattr(cls, "create"):
                    continue
                wrap_function_wrapper(cls, "create", factory(telemetry, kind))

    def _uninstrument(self, **kwargs: Any) -> None:
        import importlib

        # BaseInstrumentor is a per-class singleton whose __init__ runs on every call, so the
        # targets are re-derived here rather than remembered on the instance.
        for module_name, sync_cls, async_cls, _ in _TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            for cls_name in (sync_cls, async_cls):
                cls = getattr(module, cls_name, None)
                if cls is not None and hasattr(getattr(cls, "create", None), "__wrapped__"):
                    unwrap(cls, "create")
