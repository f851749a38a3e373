"""Tag the GenAI, tool and retrieval spans of an experiment arm with its feature-flag variant.

::

    from gensight.instrumentation import variant

    with variant("summary-model", "small"):        # every span started inside carries
        client.chat.completions.create(...)        # feature_flag.key = "summary-model"
                                                   # feature_flag.result.variant = "small"
    @variant("prompt", "v2")                       # a decorator too (sync and async functions)
    async def answer(question: str) -> str: ...

Why a context variable and not a span processor: the attributes must be on the span *at start*
(samplers and the processor's experiment grouping read them) and only on the spans Gensight starts
for GenAI operations, tools and retrievals — all of which start in one place,
:class:`gensight.instrumentation.lifecycle.Invocation`, which reads :func:`current_variant`. A
:class:`contextvars.ContextVar` follows the code the way OpenTelemetry's own context does: asyncio
tasks copy it when they are created, ``contextvars.copy_context().run`` carries it into a thread,
and a plain new thread starts without it (as with the active span). Blocks nest; the innermost
variant wins. Apps that set the feature-flag attributes themselves need none of this.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["FEATURE_FLAG_KEY", "FEATURE_FLAG_RESULT_VARIANT", "current_variant", "variant"]

# OpenTelemetry semantic conventions, feature-flag attributes
FEATURE_FLAG_KEY = "feature_flag.key"
FEATURE_FLAG_RESULT_VARIANT = "feature_flag.result.variant"

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("gensight_variant", default=None)


def current_variant() -> dict[str, str] | None:
    """The feature-flag span attributes of the innermost active :func:`variant` block, or None.
    The dict is shared: callers copy it, never mutate it."""
    return _current.get()


class variant:  # noqa: N801 - used like a function: ``with variant(...)`` / ``@variant(...)``
    """Context manager (``with`` / ``async with``) and decorator that tags spans with a variant."""

    __slots__ = ("_attributes", "_tokens")

    def __init__(self, flag: str, variant: str):
        if not isinstance(flag, str) or not flag:
            raise ValueError("variant(): flag must be a non-empty string")
        if not isinstance(variant, str) or not variant:
            raise ValueError("variant(): variant must be a non-empty string")
        self._attributes = {FEATURE_FLAG_KEY: flag, FEATURE_FLAG_RESULT_VARIANT: variant}
        # one object may be entered by several threads / tasks at once: tokens per context
        self._tokens: contextvars.ContextVar[tuple[contextvars.Token[Any], ...]] = contextvars.ContextVar(
            "gensight_variant_tokens", default=()
        )

    @property
    def flag(self) -> str:
        return self._attributes[FEATURE_FLAG_KEY]

    @property
    def value(self) -> str:
        """The variant (``feature_flag.result.variant``)."""
        return self._attributes[FEATURE_FLAG_RESULT_VARIANT]

    def __enter__(self) -> variant:
        token = _current.set(self._attributes)
        self._tokens.set((*self._tokens.get(), token))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        tokens = self._tokens.get()
        if not tokens:  # exited in a context it was not entered in: nothing of ours to undo
            return
        self._tokens.set(tokens[:-1])
        try:
            _current.reset(tokens[-1])
        except ValueError:  # token from another context (entered in a task, exited elsewhere)
            _current.set(None)

    async def __aenter__(self) -> variant:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        attributes = self._attributes
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = _current.set(attributes)
                try:
                    return await fn(*args, **kwargs)
                finally:
                    _current.reset(token)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _current.set(attributes)
            try:
                return fn(*args, **kwargs)
            finally:
                _current.reset(token)

        return wrapper  # type: ignore[return-value]
