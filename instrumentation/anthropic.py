"""Anthropic Messages API instrumentation: ``chat`` spans, token/cost metrics, streams, tool_use.

Wraps ``messages.create`` / ``messages.parse`` / ``messages.stream`` (sync and async, stable and
beta resources). Every call goes through the shared :class:`~gensight.instrumentation.lifecycle.Invocation`
and, when it streams, the shared :mod:`gensight.instrumentation.stream` proxy; this module only
translates Anthropic's request/response/event shapes into calls on them.

Token accounting: Anthropic's ``usage.input_tokens`` *excludes* prompt-cache tokens, while the
GenAI semconv ``gen_ai.usage.input_tokens`` *includes* them. We report
``input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` and pass the
cache read / write counts to the pricing table separately, so each is priced at its own rate.

One span per call, not two: recent ``anthropic`` releases trace themselves with OpenTelemetry
(``anthropic/_tracing.py``, span ``anthropic.messages.create``) unless
``ANTHROPIC_OPEN_TELEMETRY=false``. For a client whose SDK tracing is on, the calls we instrument
fold the SDK's span into ours: ``create``/``parse`` skip the SDK's tracing for that call and send
our trace context in ``extra_headers`` where the SDK would have sent its own (only when the
client's ``propagation`` option is on; the caller's own headers win); the ``messages.stream``
helper, whose request is built before our span exists, gets a pass-through tracer whose span is a
non-recording stand-in carrying our span context, so the SDK itself propagates ours. A client with
SDK tracing off is left alone. SDK calls we do not instrument (``count_tokens``, batches, files,
the tool runner, ...) keep the SDK's spans. ``GENSIGHT_ANTHROPIC_SDK_SPANS=keep`` (or ``instrument(sdk_spans="keep")``) leaves
the SDK's span in place as a child of ours, for those who want both.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from gensight.instrumentation import attributes as A
from gensight.instrumentation.dependencies import begin_instrument, unwrap_all
from gensight.instrumentation.lifecycle import Invocation, Telemetry
from gensight.instrumentation.stream import AsyncStreamProxy, SyncStreamProxy

logger = logging.getLogger(__name__)

SDK_SPANS_ENV = "GENSIGHT_ANTHROPIC_SDK_SPANS"
"""``suppress`` (default): one span per call, ours. ``keep``: the SDK's span too, as our child."""

SDK_SPANS_SUPPRESS = "suppress"
SDK_SPANS_KEEP = "keep"

INSTRUMENTATION_SCOPE = "gensight.instrumentation.anthropic"
_MAX_CAPTURED_CHARS = 64 * 1024  # per streamed block: content capture is bounded even for huge answers

_STABLE_MODULE = "anthropic.resources.messages.messages"
_BETA_MODULE = "anthropic.resources.beta.messages.messages"
_WRAPPED_METHODS = (
    (_STABLE_MODULE, "Messages", "create", False),
    (_STABLE_MODULE, "Messages", "parse", False),
    (_STABLE_MODULE, "Messages", "stream", False),
    (_STABLE_MODULE, "AsyncMessages", "create", True),
    (_STABLE_MODULE, "AsyncMessages", "parse", True),
    (_STABLE_MODULE, "AsyncMessages", "stream", True),
    (_BETA_MODULE, "Messages", "create", False),
    (_BETA_MODULE, "Messages", "parse", False),
    (_BETA_MODULE, "Messages", "stream", False),
    (_BETA_MODULE, "AsyncMessages", "create", True),
    (_BETA_MODULE, "AsyncMessages", "parse", True),
    (_BETA_MODULE, "AsyncMessages", "stream", True),
)

# How the SDK's tracer reads while one of our chat spans starts its HTTP request.
_SDK_NORMAL = 0  # not inside our call: the SDK's own tracer
_SDK_PASS_THROUGH = 1  # a tracer whose span is a non-recording stand-in for ours (propagates ours)
_SDK_SKIP = 2  # no tracer: we already put our trace context into the request's extra_headers
_SDK_TRACER_MODE: contextvars.ContextVar[int] = contextvars.ContextVar("gensight_anthropic_sdk_tracer", default=0)
_original_tracer_get: Callable[[Any], Any] | None = None  # BaseClient._tracer's getter before we patched it


def _sdk_spans_mode(value: str | None) -> str:
    raw = (value if value is not None else os.environ.get(SDK_SPANS_ENV, "")).strip().lower()
    if raw in ("", SDK_SPANS_SUPPRESS):
        return SDK_SPANS_SUPPRESS
    if raw == SDK_SPANS_KEEP:
        return SDK_SPANS_KEEP
    logger.warning("gensight: %s=%r is not 'suppress' or 'keep'; using 'suppress'", SDK_SPANS_ENV, raw)
    return SDK_SPANS_SUPPRESS


class AnthropicInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the ``anthropic`` SDK. Entry point ``gensight_anthropic``.

    ``instrument(tracer_provider=..., meter_provider=..., pricing=..., capture=..., sdk_spans=...)``;
    every keyword is optional (global providers, bundled pricing, content capture from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, SDK spans from
    ``GENSIGHT_ANTHROPIC_SDK_SPANS``).
    """

    def __init__(self) -> None:
        super().__init__()
        # BaseInstrumentor is a per-class singleton whose __init__ runs again on every call of the
        # class: keep what an earlier handle wrapped, so a fresh handle can still uninstrument.
        if not hasattr(self, "_wrapped"):
            self._original_tracer_property: property | None = None
            self._wrapped: list[tuple[Any, str]] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 0.40",)

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = begin_instrument(self, kwargs, INSTRUMENTATION_SCOPE)  # checks the library first (see .dependencies)
        suppress = _sdk_spans_mode(kwargs.get("sdk_spans")) == SDK_SPANS_SUPPRESS
        if suppress:
            self._original_tracer_property = _patch_sdk_tracer()
        import importlib

        for module_name, class_name, method, is_async in _WRAPPED_METHODS:
            try:
                module = importlib.import_module(module_name)
                cls = getattr(module, class_name)
                if not hasattr(cls, method):
                    continue
            except Exception:  # an older SDK without the beta resource or the helper
                logger.debug("gensight: %s.%s.%s not found; not instrumented", module_name, class_name, method)
                continue
            if method == "stream":
                manager_proxy = _AsyncStreamManagerProxy if is_async else _StreamManagerProxy
                wrapper = _stream_wrapper(telemetry, suppress, manager_proxy)
            else:
                wrapper = (_async_create_wrapper if is_async else _create_wrapper)(telemetry, suppress)
            wrapt.wrap_function_wrapper(cls, method, wrapper)
            self._wrapped.append((cls, method))

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap_all(self._wrapped)
        if self._original_tracer_property is not None:
            try:
                from anthropic import _base_client

                _base_client.BaseClient._tracer = self._original_tracer_property  # type: ignore[method-assign,assignment]
            except Exception:  # pragma: no cover - defensive
                logger.debug("gensight: could not restore the anthropic tracer property", exc_info=True)
            self._original_tracer_property = None
        global _original_tracer_get
        _original_tracer_get = None


# -- the SDK's own spans ---------------------------------------------------------------------------
def _patch_sdk_tracer() -> property | None:
    """Make ``BaseClient._tracer`` a pass-through while our span starts a request. Returns the
    original property (to restore), or ``None`` when this SDK has no tracer of its own."""
    global _original_tracer_get
    try:
        from anthropic import _base_client

        original = _base_client.BaseClient.__dict__.get("_tracer")
        if not isinstance(original, property) or original.fget is None:
            return None
        original_get = original.fget

        def _tracer(self: Any) -> Any:
            mode = _SDK_TRACER_MODE.get()
            tracer = original_get(self)
            if mode == _SDK_NORMAL or tracer is None:
                return tracer
            # SDK tracing is on for this client, but our span has this call
            return None if mode == _SDK_SKIP else _PASS_THROUGH_TRACER

        _base_client.BaseClient._tracer = property(_tracer, doc=original.__doc__)  # type: ignore[method-assign,assignment]
        _original_tracer_get = original_get
        return original
    except Exception:
        logger.debug("gensight: could not patch the anthropic SDK tracer", exc_info=True)
        return None


class _PassThroughTracer(trace.Tracer):
    """The SDK's tracer while our span is active: its "span" is a non-recording stand-in that
    carries *our* span context. The SDK then records nothing, yet still sends our trace context
    when its ``propagation`` option is on (it injects whatever span context its span has)."""

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> trace.Span:
        return trace.NonRecordingSpan(trace.get_current_span(context).get_span_context())

    @contextmanager  # the SDK only calls start_span; this is for completeness
    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context)
        with trace.use_span(span, end_on_exit=False):
            yield span


_PASS_THROUGH_TRACER = _PassThroughTracer()


# -- request ---------------------------------------------------------------------------------------
def _client_of(instance: Any) -> Any:
    return getattr(instance, "_client", None)


def _provider_name(client: Any) -> str:
    name = getattr(client, "_gen_ai_provider_name", None)
    return name if isinstance(name, str) and name else A.PROVIDER_ANTHROPIC


def _server(client: Any) -> tuple[str | None, int | None]:
    try:
        url = client.base_url
        port = url.port or (443 if url.scheme == "https" else 80)
        return url.host or None, port
    except Exception:
        return None, None


def _request_attributes(kwargs: Mapping[str, Any], streaming: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, attr in (
        ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
        ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", A.GEN_AI_REQUEST_TOP_P),
        ("top_k", A.GEN_AI_REQUEST_TOP_K),
    ):
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    stop = kwargs.get("stop_sequences")
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    if streaming:
        attrs[A.GEN_AI_REQUEST_STREAM] = True
    return attrs


def _start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any], streaming: bool) -> Invocation:
    client = _client_of(instance)
    address, port = _server(client)
    model = kwargs.get("model")
    inv = telemetry.start(
        A.OP_CHAT,
        provider=_provider_name(client),
        request_model=model if isinstance(model, str) else None,
        server_address=address,
        server_port=port,
        attributes=_request_attributes(kwargs, streaming),
    )
    if inv.capture_content.enabled:
        try:
            inv.record_content(
                input_messages=_input_messages(kwargs.get("messages")),
                system_instructions=_system_instructions(kwargs.get("system")),
            )
        except Exception:
            logger.debug("gensight: could not record anthropic input content", exc_info=True)
    return inv


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _block_part(block: Any) -> dict[str, Any]:
    """One Anthropic content block as a semconv message part."""
    if isinstance(block, str):
        return {"type": "text", "content": block}
    kind = _get(block, "type")
    if kind == "text":
        return {"type": "text", "content": _get(block, "text")}
    if kind in ("tool_use", "server_tool_use"):
        return {"type": "tool_call", "id": _get(block, "id"), "name": _get(block, "name"), "arguments": _get(block, "input")}
    if kind == "tool_result":
        content = _get(block, "content")
        if isinstance(content, list):
            content = [_block_part(b) for b in content]
        return {"type": "tool_call_response", "id": _get(block, "tool_use_id"), "response": content}
    if kind == "thinking":
        return {"type": "reasoning", "content": _get(block, "thinking")}
    return {"type": str(kind)}


def _input_messages(messages: Any) -> list[dict[str, Any]] | None:
    if not isinstance(messages, (list, tuple)):
        return None
    out = []
    for message in messages:
        content = _get(message, "content")
        parts = [_block_part(content)] if isinstance(content, str) else [_block_part(b) for b in content or ()]
        out.append({"role": _get(message, "role"), "parts": parts})
    return out


def _system_instructions(system: Any) -> list[dict[str, Any]] | None:
    if isinstance(system, str):
        return [{"type": "text", "content": system}]
    if isinstance(system, (list, tuple)):
        return [_block_part(b) for b in system]
    return None


# -- response --------------------------------------------------------------------------------------
def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _apply_usage(inv: Invocation, usage: Any) -> None:
    """Anthropic usage -> semconv usage: input tokens INCLUDE cache reads and writes."""
    if usage is None:
        return
    plain = _int(_get(usage, "input_tokens"))
    read = _int(_get(usage, "cache_read_input_tokens"))
    write = _int(_get(usage, "cache_creation_input_tokens"))
    output = _int(_get(usage, "output_tokens"))
    details = _get(usage, "output_tokens_details")
    reasoning = _int(_get(details, "thinking_tokens")) if details is not None else None
    inv.set_usage(
        input_tokens=None if plain is None else plain + (read or 0) + (write or 0),
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )


def _set_tool_calls(inv: Invocation, calls: list[tuple[str | None, str | None]]) -> None:
    if not calls:
        return
    inv.set_attribute(A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES, [name or "" for name, _ in calls])
    inv.set_attribute(A.GENSIGHT_RESPONSE_TOOL_CALL_IDS, [call_id or "" for _, call_id in calls])


def _record_message(inv: Invocation, message: Any) -> None:
    """A complete ``Message`` (non-streamed response)."""
    if message is None:
        return
    try:
        stop_reason = _get(message, "stop_reason")
        model = _get(message, "model")
        msg_id = _get(message, "id")
        inv.set_response(
            model=model if isinstance(model, str) else None,
            id=msg_id if isinstance(msg_id, str) else None,
            finish_reasons=[stop_reason] if isinstance(stop_reason, str) else None,
        )
        _apply_usage(inv, _get(message, "usage"))
        content = _get(message, "content") or ()
        calls = [
            (_get(b, "name"), _get(b, "id")) for b in content if _get(b, "type") in ("tool_use", "server_tool_use")
        ]
        _set_tool_calls(inv, calls)
        if inv.capture_content.enabled:
            inv.record_content(
                output_messages=[
                    {"role": "assistant", "parts": [_block_part(b) for b in content], "finish_reason": stop_reason}
                ]
            )
    except Exception:
        logger.debug("gensight: could not read the anthropic response", exc_info=True)


class _StreamState:
    """Accumulates what a stream of raw Messages events tells us; hands it over once at the end."""

    __slots__ = ("capture", "model", "id", "stop_reason", "usage", "blocks")

    def __init__(self, capture: bool):
        self.capture = capture
        self.model: str | None = None
        self.id: str | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}

    def _merge_usage(self, usage: Any) -> None:
        if usage is None:
            return
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = _int(_get(usage, key))
            if value is not None:  # message_delta repeats counts cumulatively; null = unchanged
                self.usage[key] = value
        details = _get(usage, "output_tokens_details")
        if details is not None:
            self.usage["output_tokens_details"] = {"thinking_tokens": _get(details, "thinking_tokens")}

    def on_chunk(self, inv: Invocation, event: Any) -> None:
        kind = _get(event, "type")
        if kind == "message_start":
            message = _get(event, "message")
            self.model = _get(message, "model")
            self.id = _get(message, "id")
            self._merge_usage(_get(message, "usage"))
        elif kind == "content_block_start":
            block = _get(event, "content_block")
            index = _get(event, "index")
            if not isinstance(index, int):
                return
            entry: dict[str, Any] = {"type": _get(block, "type"), "id": _get(block, "id"), "name": _get(block, "name")}
            if self.capture:
                entry["text"] = [_get(block, "text") or ""] if entry["type"] == "text" else []
                entry["json"] = []
                entry["size"] = 0
            self.blocks[index] = entry
        elif kind == "content_block_delta" and self.capture:
            found = self.blocks.get(_get(event, "index"))
            delta = _get(event, "delta")
            if found is None or delta is None:
                return
            entry = found
            piece = _get(delta, "text") or _get(delta, "thinking") or _get(delta, "partial_json")
            if not isinstance(piece, str) or entry["size"] >= _MAX_CAPTURED_CHARS:
                return
            piece = piece[: _MAX_CAPTURED_CHARS - entry["size"]]
            entry["size"] += len(piece)
            (entry["json"] if _get(delta, "type") == "input_json_delta" else entry["text"]).append(piece)
        elif kind == "message_delta":
            delta = _get(event, "delta")
            stop = _get(delta, "stop_reason") if delta is not None else None
            if isinstance(stop, str):
                self.stop_reason = stop
            self._merge_usage(_get(event, "usage"))

    def on_end(self, inv: Invocation) -> None:
        inv.set_response(
            model=self.model if isinstance(self.model, str) else None,
            id=self.id if isinstance(self.id, str) else None,
            finish_reasons=[self.stop_reason] if self.stop_reason else None,
        )
        if self.usage:
            _apply_usage(inv, self.usage)
        ordered = [self.blocks[i] for i in sorted(self.blocks)]
        _set_tool_calls(
            inv, [(b["name"], b["id"]) for b in ordered if b["type"] in ("tool_use", "server_tool_use")]
        )
        if self.capture:
            parts = []
            for b in ordered:
                if b["type"] in ("tool_use", "server_tool_use"):
                    parts.append({"type": "tool_call", "id": b["id"], "name": b["name"], "arguments": "".join(b["json"])})
                elif b["type"] == "thinking":
                    parts.append({"type": "reasoning", "content": "".join(b["text"])})
                elif b["type"] == "text":
                    parts.append({"type": "text", "content": "".join(b["text"])})
                else:
                    parts.append({"type": str(b["type"])})
            inv.record_content(output_messages=[{"role": "assistant", "parts": parts, "finish_reason": self.stop_reason}])


def _message_of(result: Any, streaming: bool) -> Any:
    """The ``Message`` in a result: itself, or — for ``with_raw_response`` — the JSON body the
    SDK already read (a dict; ``_record_message`` reads both). ``None`` when reading the body
    would consume what the app has not read yet (``with_streaming_response``, raw streams)."""
    http_response = getattr(result, "http_response", None)
    if http_response is None:
        return result
    try:
        if streaming or not http_response.is_closed:
            return None
        if "json" not in http_response.headers.get("content-type", ""):
            return None
        return http_response.json()
    except Exception:
        logger.debug("gensight: could not read a raw anthropic response", exc_info=True)
        return None


def _is_stream(result: Any) -> bool:
    try:
        from anthropic import AsyncStream, Stream

        return isinstance(result, (Stream, AsyncStream))
    except Exception:  # pragma: no cover - defensive
        return False


# -- wrappers --------------------------------------------------------------------------------------
class _SdkTracerMode:
    """``with``: how the SDK's tracer reads inside (see ``_SDK_*``); restored on exit."""

    __slots__ = ("_mode", "_token")

    def __init__(self, mode: int):
        self._mode = mode
        self._token: contextvars.Token[int] | None = None

    def __enter__(self) -> None:
        if self._mode != _SDK_NORMAL:
            self._token = _SDK_TRACER_MODE.set(self._mode)

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            _SDK_TRACER_MODE.reset(self._token)
            self._token = None


def _fold_sdk_span(instance: Any, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """How to keep the SDK from making a second span for a ``create``/``parse`` call (run with
    our span current). Cheapest: skip the SDK's tracing entirely and send our trace context in
    ``extra_headers`` ourselves, where the SDK would have sent its own (its ``propagation``
    option on). The caller's own ``extra_headers`` win. Anything unexpected: pass-through mode."""
    get = _original_tracer_get
    if get is None:
        return _SDK_NORMAL, kwargs
    try:
        client = _client_of(instance)
        if client is None or get(client) is None:
            return _SDK_NORMAL, kwargs  # this client has no SDK tracing: nothing to fold
        options = getattr(client, "_open_telemetry", None) or {}
        if not options.get("propagation", True):
            return _SDK_SKIP, kwargs
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if not carrier:
            return _SDK_SKIP, kwargs
        extra = kwargs.get("extra_headers")
        headers = {**carrier, **extra} if isinstance(extra, Mapping) else carrier
        return _SDK_SKIP, {**kwargs, "extra_headers": headers}
    except Exception:
        logger.debug("gensight: could not fold the SDK span; using the pass-through tracer", exc_info=True)
        return _SDK_PASS_THROUGH, kwargs


def _create_result(inv: Invocation, result: Any, streaming: bool, proxy_cls: type) -> Any:
    """What a ``create``/``parse`` wrapper returns: a stream behind the shared stream proxy (which
    ends the span), or the message, recorded and the span ended."""
    if _is_stream(result):
        state = _StreamState(inv.capture_content.enabled)
        return proxy_cls(result, inv, state.on_chunk, state.on_end)
    _record_message(inv, _message_of(result, streaming))
    inv.stop()
    return result


def _create_wrapper(telemetry: Telemetry, suppress: bool) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        streaming = kwargs.get("stream") is True
        inv = _start(telemetry, instance, kwargs, streaming)
        try:
            with inv.activate():
                mode, call_kwargs = _fold_sdk_span(instance, kwargs) if suppress else (_SDK_NORMAL, kwargs)
                with _SdkTracerMode(mode):
                    result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            inv.fail(exc)
            raise
        return _create_result(inv, result, streaming, SyncStreamProxy)

    return wrapper


def _async_create_wrapper(telemetry: Telemetry, suppress: bool) -> Callable[..., Any]:
    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        streaming = kwargs.get("stream") is True
        inv = _start(telemetry, instance, kwargs, streaming)
        try:
            with inv.activate():
                mode, call_kwargs = _fold_sdk_span(instance, kwargs) if suppress else (_SDK_NORMAL, kwargs)
                with _SdkTracerMode(mode):
                    result = await wrapped(*args, **call_kwargs)
        except BaseException as exc:
            inv.fail(exc)
            raise
        return _create_result(inv, result, streaming, AsyncStreamProxy)

    return wrapper


class _ManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """What the sync and async stream-manager proxies share: the span they start on entry."""

    def __init__(self, manager: Any, start: Callable[[], Invocation], suppress: bool):
        super().__init__(manager)
        self._self_start = start
        self._self_suppress = suppress
        self._self_invocation: Invocation | None = None

    def _begin(self) -> Invocation:
        self._self_invocation = self._self_start()
        return self._self_invocation

    def _sdk_tracer_mode(self) -> _SdkTracerMode:
        return _SdkTracerMode(_SDK_PASS_THROUGH if self._self_suppress else _SDK_NORMAL)


class _StreamManagerProxy(_ManagerProxy):
    """Stands in for ``MessageStreamManager``: the span starts when the ``with`` block opens the
    request, and the shared stream proxy replaces the raw event stream the helper reads."""

    def __enter__(self) -> Any:
        inv = self._begin()
        try:
            with inv.activate(), self._sdk_tracer_mode():
                message_stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            inv.fail(exc)
            raise
        _attach(message_stream, inv, SyncStreamProxy)
        return message_stream

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _finish_unattached(self._self_invocation, exc)


class _AsyncStreamManagerProxy(_ManagerProxy):
    """``AsyncMessageStreamManager`` counterpart of :class:`_StreamManagerProxy`."""

    async def __aenter__(self) -> Any:
        inv = self._begin()
        try:
            with inv.activate(), self._sdk_tracer_mode():
                message_stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            inv.fail(exc)
            raise
        _attach(message_stream, inv, AsyncStreamProxy)
        return message_stream

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _finish_unattached(self._self_invocation, exc)


def _attach(message_stream: Any, inv: Invocation, proxy_cls: type) -> None:
    """Swap the helper's raw event stream for the shared stream proxy (the helper reads events
    through ``_raw_stream`` lazily, so events it yields later flow through the proxy)."""
    raw = getattr(message_stream, "_raw_stream", None)
    if raw is None or not _is_stream(raw):
        return  # an SDK we do not know: the manager's __exit__ finishes the span
    state = _StreamState(inv.capture_content.enabled)
    try:
        message_stream._raw_stream = proxy_cls(raw, inv, state.on_chunk, state.on_end)
    except Exception:  # pragma: no cover - defensive
        logger.debug("gensight: could not attach to the anthropic message stream", exc_info=True)


def _finish_unattached(inv: Invocation | None, exc: BaseException | None) -> None:
    """The stream proxy normally finished the span already; this only covers SDKs whose helper
    we could not attach to (finish-once makes it a no-op otherwise)."""
    if inv is None or inv.finished:
        return
    if exc is not None:
        inv.fail(exc)
    else:
        inv.stop()


def _stream_wrapper(telemetry: Telemetry, suppress: bool, manager_proxy: type[_ManagerProxy]) -> Callable[..., Any]:
    """``messages.stream`` (sync or async: the call itself is sync either way) returns a manager;
    hand back ``manager_proxy`` around it, which starts the span when the request is opened."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        manager = wrapped(*args, **kwargs)
        return manager_proxy(manager, lambda: _start(telemetry, instance, kwargs, True), suppress)

    return wrapper
