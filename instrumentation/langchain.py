"""LangChain instrumentation: tools as ``execute_tool`` spans, retrievers as ``retrieval`` spans.
Entry point ``gensight_langchain``.

* ``BaseTool.run`` / ``arun`` (what ``invoke`` / ``ainvoke`` and agents call): span
  ``execute_tool {tool.name}`` with ``gen_ai.tool.call.id`` (from a ``ToolCall`` input),
  ``gen_ai.tool.type=function``, ``gen_ai.tool.description``. A tool that raises fails the span
  (``error.type`` = exception class). A tool error LangChain *handles*
  (``handle_tool_error`` / ``handle_validation_error``) still returns to the agent, but the span
  is marked failed with the handled exception's class, so tool success rates stay true.
* ``BaseRetriever.invoke`` / ``ainvoke``: span ``retrieval {retriever name}`` with
  ``gen_ai.request.top_k`` (``k`` or ``search_kwargs["k"]``), document count, and top/mean
  similarity from each document's ``metadata`` (``score``, ``relevance_score`` or
  ``similarity``; values outside [0, 1] are ignored).

Both go through :mod:`gensight.instrumentation.tools` / :mod:`.retrieval`, the same code as the
decorators, and so through the one shared invocation lifecycle.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from gensight.instrumentation.instrumentor import GensightInstrumentor
from gensight.instrumentation.lifecycle import Telemetry
from gensight.instrumentation.retrieval import RetrievalCall, finish_with_documents, start_retrieval
from gensight.instrumentation.tools import (
    ToolCall,
    method_wrapper,
    run_in_span,
    run_in_span_async,
    start_tool,
)

logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "gensight.instrumentation.langchain"

_TOOLS_MODULE = "langchain_core.tools.base"
_RETRIEVERS_MODULE = "langchain_core.retrievers"
_ERROR_HANDLERS = ("_handle_tool_error", "_handle_validation_error")

# The exception class names LangChain handled inside the tool run now in progress.
_handled_errors: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "gensight_langchain_handled_errors", default=None
)


class LangChainInstrumentor(GensightInstrumentor):
    """Instruments ``langchain_core`` tools and retrievers."""

    scope = INSTRUMENTATION_SCOPE
    dependencies = ("langchain-core >= 0.3",)

    def _wrap_methods(self, telemetry: Telemetry, kwargs: Mapping[str, Any]) -> None:
        targets: list[tuple[str, str | None, str, Callable[..., Any]]] = [
            (_TOOLS_MODULE, "BaseTool", "run", _tool_run_wrapper(telemetry)),
            (_TOOLS_MODULE, "BaseTool", "arun", _tool_arun_wrapper(telemetry)),
            (_RETRIEVERS_MODULE, "BaseRetriever", "invoke", _retriever_wrapper(telemetry, is_async=False)),
            (_RETRIEVERS_MODULE, "BaseRetriever", "ainvoke", _retriever_wrapper(telemetry, is_async=True)),
        ]
        # the module-level functions LangChain turns a tool's exception into content with
        targets += [(_TOOLS_MODULE, None, name, _error_handler_wrapper) for name in _ERROR_HANDLERS]
        for module_name, owner, method, wrapper in targets:
            self._wrap(module_name, owner, method, wrapper)


# -- tools -------------------------------------------------------------------------------------
def _error_handler_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """LangChain turned a tool exception into content: remember its class for the span."""
    handled = _handled_errors.get()
    if handled is not None and args and isinstance(args[0], BaseException):
        handled.append(type(args[0]).__name__)
    return wrapped(*args, **kwargs)


def _start_tool(telemetry: Telemetry, instance: Any, args: Any, kwargs: Any) -> ToolCall:
    name = getattr(instance, "name", None)
    description = getattr(instance, "description", None)
    call_id = kwargs.get("tool_call_id")
    return start_tool(
        telemetry,
        name if isinstance(name, str) and name else type(instance).__name__,
        call_id=call_id if isinstance(call_id, str) else None,
        description=description if isinstance(description, str) and description else None,
        arguments=args[0] if args else kwargs.get("tool_input"),
    )


def _finish_tool(call: ToolCall, handled: list[str], result: Any) -> None:
    status = getattr(result, "status", None)  # a ToolMessage when the call had an id
    if handled:
        call.set_result(getattr(result, "content", result))
        call.fail(handled[-1])
    elif status == "error":
        call.set_result(getattr(result, "content", result))
        call.fail("ToolException")
    else:
        call.set_result(getattr(result, "content", result))
        call.stop()


@contextmanager
def _collecting_handled_errors() -> Iterator[list[str]]:
    """The list :func:`_error_handler_wrapper` fills while the tool run inside this block lasts."""
    handled: list[str] = []
    token = _handled_errors.set(handled)
    try:
        yield handled
    finally:
        _handled_errors.reset(token)


def _tool_run_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        call = _start_tool(telemetry, instance, args, kwargs)
        with _collecting_handled_errors() as handled:
            return run_in_span(call, wrapped, args, kwargs, lambda c, result: _finish_tool(c, handled, result))

    return wrapper


def _tool_arun_wrapper(telemetry: Telemetry) -> Callable[..., Any]:
    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        call = _start_tool(telemetry, instance, args, kwargs)
        with _collecting_handled_errors() as handled:
            return await run_in_span_async(
                call, wrapped, args, kwargs, lambda c, result: _finish_tool(c, handled, result)
            )

    return wrapper


# -- retrievers --------------------------------------------------------------------------------
def _top_k(instance: Any) -> int | None:
    k = getattr(instance, "k", None)
    if not isinstance(k, int):
        search_kwargs = getattr(instance, "search_kwargs", None)
        k = search_kwargs.get("k") if isinstance(search_kwargs, dict) else None
    return k if isinstance(k, int) and not isinstance(k, bool) else None


def _retriever_name(instance: Any) -> str:
    try:
        name = instance.get_name()
        if isinstance(name, str) and name:
            return name
    except Exception:
        pass
    return type(instance).__name__


def _retriever_wrapper(telemetry: Telemetry, *, is_async: bool) -> Callable[..., Any]:
    def start(instance: Any, args: Any, kwargs: Any) -> RetrievalCall:
        query = args[0] if args else kwargs.get("input")
        return start_retrieval(telemetry, _retriever_name(instance), top_k=_top_k(instance), query=query)

    def finish(call: RetrievalCall, instance: Any, documents: Any) -> None:
        finish_with_documents(call, documents)

    return method_wrapper(start, finish, is_async=is_async)
