"""The one wrapper shape for LLM client methods (OpenAI, Anthropic), sync and async.

Every instrumented SDK method runs the same way::

    inv = start(instance, kwargs)                  # the span starts (attributes samplers see)
    with inv.activate():                           # current while the SDK sends the request,
        result = wrapped(*args, **kwargs)          # so HTTP-client spans nest under it
    # the SDK raised: inv.fail(exc), the exception re-raised unchanged
    # (written out as attach / try / finally detach: one object less on every call)
    return finish(inv, result, kwargs, proxy_cls)  # what the app gets back

``finish`` hands a stream to the shared stream proxy (:func:`proxy_stream`: the proxy ends the
span when the stream ends), or reads the response and ends the span (:func:`record_response`).
``prepare`` (optional) runs with the span current just before the SDK call and may swap the
call's keyword arguments and wrap the call in a context manager (Anthropic: fold the SDK's own
span into ours). With instrumentation suppressed the method runs alone.

Tools and retrievers run through :func:`gensight.instrumentation.tools.run_in_span` instead: their
result always reaches the app unchanged, while an LLM call's result may be swapped for a stream
proxy, so ``finish`` here returns what the app gets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from gensight.instrumentation.lifecycle import Invocation, attach, detach
from gensight.instrumentation.stream import AsyncStreamProxy, ChunkHandler, EndHandler, SyncStreamProxy

logger = logging.getLogger(__name__)

Start = Callable[[Any, Mapping[str, Any]], Invocation]
"""(SDK resource instance, call kwargs) -> the started invocation."""

Finish = Callable[[Invocation, Any, Mapping[str, Any], type], Any]
"""(invocation, SDK result, call kwargs, stream proxy class) -> what the app gets back."""

Prepare = Callable[[Any, dict[str, Any]], tuple[AbstractContextManager[Any], dict[str, Any]]]
"""(instance, kwargs) -> (context the SDK call runs in, the kwargs to call it with)."""


def sync_call_wrapper(start: Start, finish: Finish, prepare: Prepare | None = None) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for a synchronous SDK method (see the module docstring)."""

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        inv = start(instance, kwargs)
        token = attach(inv.span)  # inv.activate() without the context-manager object: the hot path
        try:
            if prepare is None:
                result = wrapped(*args, **kwargs)
            else:
                context, call_kwargs = prepare(instance, kwargs)
                with context:
                    result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            inv.fail(exc)
            raise
        finally:
            detach(token)
        return finish(inv, result, kwargs, SyncStreamProxy)

    return wrapper


def async_call_wrapper(start: Start, finish: Finish, prepare: Prepare | None = None) -> Callable[..., Any]:
    """:func:`sync_call_wrapper` for a coroutine SDK method (awaited with the span current)."""

    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        inv = start(instance, kwargs)
        token = attach(inv.span)  # inv.activate() without the context-manager object: the hot path
        try:
            if prepare is None:
                result = await wrapped(*args, **kwargs)
            else:
                context, call_kwargs = prepare(instance, kwargs)
                with context:
                    result = await wrapped(*args, **call_kwargs)
        except BaseException as exc:
            inv.fail(exc)
            raise
        finally:
            detach(token)
        return finish(inv, result, kwargs, AsyncStreamProxy)

    return wrapper


def proxy_stream(inv: Invocation, stream: Any, proxy_cls: type, on_chunk: ChunkHandler | None,
                 on_end: EndHandler | None) -> Any:
    """``stream`` behind the shared stream proxy, which ends the span when the stream ends. If
    the proxy cannot be built the span ends now and the app gets the stream unchanged."""
    try:
        return proxy_cls(stream, inv, on_chunk, on_end)
    except Exception:
        logger.debug("gensight: could not wrap stream", exc_info=True)
        inv.stop()
        return stream


def record_response(inv: Invocation, on_response: Callable[[Invocation, Any], None], response: Any) -> None:
    """Read a complete response into the invocation (an unreadable one loses only its
    attributes) and end the span."""
    try:
        on_response(inv, response)
    except Exception:
        logger.debug("gensight: could not read the response", exc_info=True)
    inv.stop()
