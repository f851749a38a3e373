"""Tool calls as ``execute_tool`` spans: a decorator and a context manager, sync and async.

::

    from gensight.instrumentation import tool

    @tool                                   # span "execute_tool get_weather"
    def get_weather(city: str) -> str: ...

    @tool("search_docs", tool_type="datastore")
    async def search(query: str) -> list[str]: ...

    with tool("get_weather", call_id=block.id) as call:   # agent loops that know the call id
        result = dispatch(block.name, block.input)
        call.set_result(result)                           # content: recorded only when capture is on

Span attributes: ``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name``,
``gen_ai.tool.call.id``, ``gen_ai.tool.type`` (``function`` by default), ``gen_ai.tool.description``,
``error.type`` (exception class) when the tool raises; the exception is re-raised unchanged.
Arguments and results (``gen_ai.tool.call.arguments`` / ``.result``) are content: recorded only
when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is on, JSON, at most 16 KiB each.

Generator functions: the span covers creating the generator, not consuming it; wrap the
consuming code in ``with tool(...)`` instead.

A tool span directly inside a tool span of the same name is not started again, so a function
decorated here *and* wrapped by an instrumented framework (LangChain ``@tool``) gives one span.

The LangChain instrumentor uses :func:`start_tool` too: one implementation for every source.
This module also holds the one "run code inside a span" machinery (:func:`run_in_span`,
:func:`wrap_in_span`, :func:`method_wrapper`, :class:`SpanBlock`) that ``@retriever`` and the
Chroma and LangChain instrumentors share.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, overload

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from gensight.instrumentation import attributes as A
from gensight.instrumentation.lifecycle import Invocation, Telemetry

logger = logging.getLogger(__name__)

MAX_CONTENT_CHARS = 16 * 1024
"""Cap on each captured argument/result JSON string (content capture only)."""

DEFAULT_TOOL_TYPE = "function"

F = TypeVar("F", bound=Callable[..., Any])

_active_tool: contextvars.ContextVar[str | None] = contextvars.ContextVar("gensight_active_tool", default=None)
_MISSING: Any = object()


def content_json(value: Any) -> str:
    """``value`` as JSON text (``str`` for what JSON cannot hold), cut to MAX_CONTENT_CHARS."""
    try:
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    except Exception:
        text = repr(value)
    return text if len(text) <= MAX_CONTENT_CHARS else text[: MAX_CONTENT_CHARS - 1] + "…"


class ToolCall:
    """One tool execution in flight: the handle a ``with tool(...)`` block gets."""

    __slots__ = ("invocation", "_token")

    def __init__(self, invocation: Invocation, token: contextvars.Token[str | None] | None):
        self.invocation = invocation
        self._token = token

    @property
    def recording(self) -> bool:
        return not self.invocation.finished

    def set_call_id(self, call_id: str | None) -> None:
        self.invocation.set_attribute(A.GEN_AI_TOOL_CALL_ID, call_id)

    def set_arguments(self, arguments: Any) -> None:
        """Record the tool's arguments (content: only with capture on)."""
        if self.invocation.capture_content.enabled:
            self.invocation.set_attribute(A.GEN_AI_TOOL_CALL_ARGUMENTS, content_json(arguments))

    def set_result(self, result: Any) -> None:
        """Record the tool's result (content: only with capture on)."""
        if self.invocation.capture_content.enabled:
            self.invocation.set_attribute(A.GEN_AI_TOOL_CALL_RESULT, content_json(result))

    def set_attribute(self, key: str, value: Any) -> None:
        self.invocation.set_attribute(key, value)

    def fail(self, error: BaseException | str) -> None:
        """Finish as failed without an exception reaching us (a tool that reports errors in-band)."""
        self._release()
        self.invocation.fail(error)

    def stop(self) -> None:
        self._release()
        self.invocation.stop()

    def _release(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                _active_tool.reset(token)
            except ValueError:  # finished in another context (e.g. another task): just clear it
                pass


# -- running code inside a span: the one implementation tools, retrievers and instrumentors share --
class SpanCall(Protocol):
    """A call in flight (:class:`ToolCall`, ``RetrievalCall``): its invocation, and how it ends."""

    invocation: Invocation

    def fail(self, error: BaseException | str) -> None: ...

    def stop(self) -> None: ...


C = TypeVar("C", bound=SpanCall)


def run_in_span(call: C, fn: Callable[..., Any], args: Any, kwargs: Any, finish: Callable[[C, Any], None]) -> Any:
    """Call ``fn`` with ``call``'s span current. The app's exception fails the call and is
    re-raised unchanged; a result goes to ``finish(call, result)``, which records it and ends the call."""
    try:
        with call.invocation.activate():
            result = fn(*args, **kwargs)
    except BaseException as exc:
        call.fail(exc)
        raise
    finish(call, result)
    return result


async def run_in_span_async(
    call: C, fn: Callable[..., Any], args: Any, kwargs: Any, finish: Callable[[C, Any], None]
) -> Any:
    """:func:`run_in_span` for a coroutine function (awaited with the span current)."""
    try:
        with call.invocation.activate():
            result = await fn(*args, **kwargs)
    except BaseException as exc:
        call.fail(exc)
        raise
    finish(call, result)
    return result


def wrap_in_span(
    fn: Callable[..., Any],
    start: Callable[[tuple[Any, ...], dict[str, Any]], C],
    finish: Callable[[C, Any], None],
) -> Callable[..., Any]:
    """What a decorator returns for ``fn`` (sync or async): each call opens ``start(args, kwargs)``
    (for a coroutine function: when awaited) and runs in it, see :func:`run_in_span`."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await run_in_span_async(start(args, kwargs), fn, args, kwargs, finish)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_in_span(start(args, kwargs), fn, args, kwargs, finish)

    return wrapper


def method_wrapper(
    start: Callable[[Any, Any, Any], C],
    finish: Callable[[C, Any, Any], None],
    *,
    is_async: bool,
) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for a library method (sync or async): with instrumentation enabled,
    each call opens ``start(instance, args, kwargs)`` and runs in it; ``finish(call, instance,
    result)`` records the result and ends the call. Disabled (suppressed): the method runs alone."""
    if is_async:

        async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            if not is_instrumentation_enabled():
                return await wrapped(*args, **kwargs)
            call = start(instance, args, kwargs)
            return await run_in_span_async(call, wrapped, args, kwargs, lambda c, r: finish(c, instance, r))

        return async_wrapper

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        call = start(instance, args, kwargs)
        return run_in_span(call, wrapped, args, kwargs, lambda c, r: finish(c, instance, r))

    return wrapper


# ``with`` blocks open per context (thread / asyncio task), so one spec object used by concurrent
# tasks pairs each exit with its own enter.
_open_blocks: contextvars.ContextVar[tuple[tuple[int, Any, Any], ...]] = contextvars.ContextVar(
    "gensight_open_blocks", default=()
)


class SpanBlock(Generic[C]):
    """``with`` / ``async with`` for the tool and retriever specs: ``_open()`` starts the call,
    the block makes its span current, and the exit fails (with the exception) or stops it."""

    def _open(self) -> C:
        raise NotImplementedError

    def __enter__(self) -> C:
        call = self._open()
        activation = call.invocation.activate()
        activation.__enter__()
        _open_blocks.set((*_open_blocks.get(), (id(self), call, activation)))
        return call

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        call, activation = self._pop_open()
        if call is None:
            return
        activation.__exit__(exc_type, exc, tb)
        if exc is not None:
            call.fail(exc)
        else:
            call.stop()

    async def __aenter__(self) -> C:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def _pop_open(self) -> tuple[Any, Any]:
        """(call, activation) of the innermost open block of this spec here; (None, None) if none."""
        blocks = _open_blocks.get()
        for i in range(len(blocks) - 1, -1, -1):
            if blocks[i][0] == id(self):
                _open_blocks.set(blocks[:i] + blocks[i + 1:])
                return blocks[i][1], blocks[i][2]
        logger.debug("gensight: a tool/retriever block exited that was not entered in this context")
        return None, None


def start_tool(
    telemetry: Telemetry,
    name: str,
    *,
    call_id: str | None = None,
    tool_type: str | None = DEFAULT_TOOL_TYPE,
    description: str | None = None,
    arguments: Any = _MISSING,
) -> ToolCall:
    """Open an ``execute_tool`` span (not made current: use ``with call.invocation.activate()``).

    Inside a tool span of the same name this returns a no-op call, so layered wrappers of one
    tool give one span.
    """
    if _active_tool.get() == name:
        return ToolCall(Invocation.noop(telemetry), None)
    invocation = telemetry.start(
        A.OP_EXECUTE_TOOL,
        name=name,
        attributes={
            A.GEN_AI_TOOL_CALL_ID: call_id,
            A.GEN_AI_TOOL_TYPE: tool_type,
            A.GEN_AI_TOOL_DESCRIPTION: description,
        },
    )
    call = ToolCall(invocation, _active_tool.set(name))
    if arguments is not _MISSING:
        call.set_arguments(arguments)
    return call


def _bound_arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
    except (TypeError, ValueError):
        return {"args": list(args), "kwargs": kwargs}


class _ToolSpec(SpanBlock[ToolCall]):
    """What ``tool(...)`` returns: a decorator and a (sync or async) context manager."""

    def __init__(
        self,
        name: str | None,
        call_id: str | None,
        tool_type: str | None,
        description: str | None,
        telemetry: Telemetry | None,
    ):
        self.name = name
        self.call_id = call_id
        self.tool_type = tool_type
        self.description = description
        self._telemetry = telemetry

    def _start(self, name: str, arguments: Any = _MISSING) -> ToolCall:
        from gensight.instrumentation.manual import default_telemetry

        return start_tool(
            self._telemetry or default_telemetry(),
            name,
            call_id=self.call_id,
            tool_type=self.tool_type,
            description=self.description,
            arguments=arguments,
        )

    # -- decorator -------------------------------------------------------------------------------
    def __call__(self, fn: F) -> F:
        name = self.name or getattr(fn, "__name__", None) or "tool"
        description = self.description
        if description is None:
            doc = inspect.getdoc(fn)
            description = doc.splitlines()[0] if doc else None
        spec = _ToolSpec(name, self.call_id, self.tool_type, description, self._telemetry)

        return wrap_in_span(fn, lambda args, kwargs: spec._start(name, _lazy_args(spec, fn, args, kwargs)),
                            _finish_with_result)  # type: ignore[return-value]

    # -- context manager (SpanBlock) -------------------------------------------------------------
    def _open(self) -> ToolCall:
        if self.name is None:
            raise TypeError("tool(...) used as a context manager needs a name: with tool('search') as call")
        return self._start(self.name)


def _finish_with_result(call: ToolCall, result: Any) -> None:
    call.set_result(result)
    call.stop()


def _lazy_args(spec: _ToolSpec, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Bind arguments only when they will be recorded (content capture on): no cost otherwise."""
    from gensight.instrumentation.manual import default_telemetry

    telemetry = spec._telemetry or default_telemetry()
    return _bound_arguments(fn, args, kwargs) if telemetry.capture.enabled else _MISSING


@overload
def tool(name: F, /) -> F: ...


@overload
def tool(
    name: str | None = None,
    /,
    *,
    call_id: str | None = None,
    tool_type: str | None = DEFAULT_TOOL_TYPE,
    description: str | None = None,
    telemetry: Telemetry | None = None,
) -> _ToolSpec: ...


def tool(
    name: Any = None,
    /,
    *,
    call_id: str | None = None,
    tool_type: str | None = DEFAULT_TOOL_TYPE,
    description: str | None = None,
    telemetry: Telemetry | None = None,
) -> Any:
    """Trace a tool: ``@tool``, ``@tool("name", ...)``, or ``with tool("name", call_id=...) as call``.

    ``tool_type``: ``function`` (default), ``extension`` or ``datastore`` (semconv values).
    ``telemetry``: where to record (default: :func:`gensight.instrumentation.manual.configure`).
    """
    if callable(name):
        return _ToolSpec(None, call_id, tool_type, description, telemetry)(name)
    return _ToolSpec(name, call_id, tool_type, description, telemetry)
