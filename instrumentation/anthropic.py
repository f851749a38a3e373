"""Anthropic Messages API instrumentation: ``chat`` spans, token/cost metrics, streams, tool_use.

Wraps ``messages.create`` / ``messages.parse`` / ``messages.stream`` (sync and async, stable and
beta resources). ``create`` and ``parse`` get the shared call wrapper
(:mod:`gensight.instrumentation.calls`) like every LLM client method; the ``messages.stream``
helper returns a manager whose request starts only when its ``with`` block opens, so it gets a
manager proxy that starts the span then. Either way the call is one shared
:class:`~gensight.instrumentation.lifecycle.Invocation` and streams go through the shared
:mod:`gensight.instrumentation.stream` proxy. Anthropic's request/response/event shapes are
translated in :mod:`._anthropic_messages` (where the token accounting is explained).

One span per call, not two: recent ``anthropic`` releases trace themselves with OpenTelemetry;
for the calls we instrument the SDK's span is folded into ours (:mod:`._anthropic_sdk_spans`).
SDK calls we do not instrument (``count_tokens``, batches, files, the tool runner, ...) keep the
SDK's spans. ``GENSIGHT_ANTHROPIC_SDK_SPANS=keep`` (or ``instrument(sdk_spans="keep")``) leaves
the SDK's span in place as a child of ours, for those who want both.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from gensight.instrumentation import attributes as A
from gensight.instrumentation._anthropic_messages import (
    StreamState,
    input_messages,
    provider_name,
    record_message,
    request_attributes,
    system_instructions,
)
from gensight.instrumentation._anthropic_sdk_spans import (  # noqa: F401  (SDK_SPANS_*: public names)
    SDK_NORMAL,
    SDK_PASS_THROUGH,
    SDK_SPANS_ENV,
    SDK_SPANS_KEEP,
    SDK_SPANS_SUPPRESS,
    SdkTracerMode,
    patch_sdk_tracer,
    prepare_call,
    restore_sdk_tracer,
    sdk_spans_mode,
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
from gensight.instrumentation.stream import AsyncStreamProxy, SyncStreamProxy

logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "gensight.instrumentation.anthropic"

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


class AnthropicInstrumentor(GensightInstrumentor):
    """Instruments the ``anthropic`` SDK. Entry point ``gensight_anthropic``.

    ``instrument(tracer_provider=..., meter_provider=..., pricing=..., capture=..., sdk_spans=...)``;
    every keyword is optional (global providers, bundled pricing, content capture from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, SDK spans from
    ``GENSIGHT_ANTHROPIC_SDK_SPANS``).
    """

    scope = INSTRUMENTATION_SCOPE
    dependencies = ("anthropic >= 0.40",)

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(self, "_original_tracer_property"):  # kept across handles, like what was wrapped
            self._original_tracer_property: property | None = None

    def _wrap_methods(self, telemetry: Telemetry, kwargs: Mapping[str, Any]) -> None:
        suppress = sdk_spans_mode(kwargs.get("sdk_spans")) == SDK_SPANS_SUPPRESS
        if suppress:
            self._original_tracer_property = patch_sdk_tracer()
        start = functools.partial(_start_call, telemetry)
        prepare = prepare_call if suppress else None
        for module_name, class_name, method, is_async in _WRAPPED_METHODS:
            if method == "stream":
                manager_proxy = _AsyncStreamManagerProxy if is_async else _StreamManagerProxy
                wrapper = _stream_wrapper(telemetry, suppress, manager_proxy)
            else:
                wrapper = (async_call_wrapper if is_async else sync_call_wrapper)(start, _finish_call, prepare)
            self._wrap(module_name, class_name, method, wrapper)

    def _restore(self) -> None:
        restore_sdk_tracer(self._original_tracer_property)
        self._original_tracer_property = None


# -- create / parse ----------------------------------------------------------------------------
def _start(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any], streaming: bool) -> Invocation:
    client = getattr(instance, "_client", None)
    address, port = server_of(client)
    model = kwargs.get("model")
    inv = telemetry.start(
        A.OP_CHAT,
        provider=provider_name(client),
        request_model=model if isinstance(model, str) else None,
        server_address=address,
        server_port=port,
        attributes=request_attributes(kwargs, streaming),
    )
    if inv.capture_content.enabled:
        try:
            inv.record_content(
                input_messages=input_messages(kwargs.get("messages")),
                system_instructions=system_instructions(kwargs.get("system")),
            )
        except Exception:
            logger.debug("gensight: could not record anthropic input content", exc_info=True)
    return inv


def _start_call(telemetry: Telemetry, instance: Any, kwargs: Mapping[str, Any]) -> Invocation:
    return _start(telemetry, instance, kwargs, kwargs.get("stream") is True)


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


def _finish_call(inv: Invocation, result: Any, kwargs: Mapping[str, Any], proxy_cls: type) -> Any:
    """What a ``create``/``parse`` wrapper returns: a stream behind the shared stream proxy (which
    ends the span), or the message, recorded and the span ended."""
    if _is_stream(result):
        state = StreamState(inv.capture_content.enabled)
        return proxy_stream(inv, result, proxy_cls, state.on_chunk, state.on_end)
    record_response(inv, record_message, _message_of(result, kwargs.get("stream") is True))
    return result


# -- the messages.stream helper ----------------------------------------------------------------
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

    def _sdk_tracer_mode(self) -> SdkTracerMode:
        return SdkTracerMode(SDK_PASS_THROUGH if self._self_suppress else SDK_NORMAL)


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
    state = StreamState(inv.capture_content.enabled)
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
