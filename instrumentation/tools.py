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
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar, overload

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


# ``with`` blocks open per context (thread / asyncio task), so one spec object used by concurrent
# tasks pairs each exit with its own enter.
_open_blocks: contextvars.ContextVar[tuple[tuple[int, Any, Any], ...]] = contextvars.ContextVar(
    "gensight_open_blocks", default=()
)


def _push_open(spec: object, call: Any, activation: Any) -> None:
    _open_blocks.set((*_open_blocks.get(), (id(spec), call, activation)))


def _pop_open(spec: object) -> tuple[Any, Any]:
    """(call, activation) of the innermost open block of ``spec`` here; (None, None) if none."""
    blocks = _open_blocks.get()
    for i in range(len(blocks) - 1, -1, -1):
        if blocks[i][0] == id(spec):
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


class _ToolSpec:
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

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = spec._start(name, _lazy_args(spec, fn, args, kwargs))
                try:
                    with call.invocation.activate():
                        result = await fn(*args, **kwargs)
                except BaseException as exc:
                    call.fail(exc)
                    raise
                call.set_result(result)
                call.stop()
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            call = spec._start(name, _lazy_args(spec, fn, args, kwargs))
            try:
                with call.invocation.activate():
                    result = fn(*args, **kwargs)
            except BaseException as exc:
                call.fail(exc)
                raise
            call.set_result(result)
            call.stop()
            return result

        return wrapper  # type: ignore[return-value]

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> ToolCall:
        if self.name is None:
            raise TypeError("tool(...) used as a context manager needs a name: with tool('search') as call")
        call = self._start(self.name)
        activation = call.invocation.activate()
        activation.__enter__()
        _push_open(self, call, activation)
        return call

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        call, activation = _pop_open(self)
        if call is None:
            return
        activation.__exit__(exc_type, exc, tb)
        if exc is not None:
            call.fail(exc)
        else:
            call.stop()

    async def __aenter__(self) -> ToolCall:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


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
