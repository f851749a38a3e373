"""One stream proxy, sync and async, for every provider's streamed responses.

The proxy stands in for the SDK's stream object (``wrapt.ObjectProxy``: attribute access,
``isinstance`` and ``.response`` etc. still reach the real stream), forwards iteration, hands
each chunk to a provider-specific callback, and finishes the :class:`Invocation` exactly once,
whichever comes first:

* the stream is exhausted (``StopIteration`` / ``StopAsyncIteration``) -> ``stop()``
* the stream raises (connection broken midway, ...) -> ``fail(exc)``, exception re-raised unchanged
* the app calls ``close()`` / ``aclose()`` early -> ``stop()``, ``gensight.stream.ended_by=close``
* the app's ``with`` / ``async with`` block exits -> ``stop()`` (or ``fail`` if the block raised)
* the proxy is garbage-collected unfinished -> ``stop()``, ``gensight.stream.ended_by=gc``

Public interface
----------------
::

    from gensight.instrumentation.stream import SyncStreamProxy, AsyncStreamProxy

    def on_chunk(inv: Invocation, chunk) -> None: ...   # parse one chunk (usage, ids, deltas)
    def on_end(inv: Invocation) -> None: ...            # optional: flush accumulated state
                                                        # (finish reasons, tool calls, content)
    with inv.activate():
        stream = client_call(...)                       # the SDK's Stream / AsyncStream
    return SyncStreamProxy(stream, inv, on_chunk, on_end)   # or AsyncStreamProxy

Keep per-stream state in a small object whose bound methods you pass as the callbacks.
``on_end`` runs before the invocation is finished, on every ending (also on errors). Callback
errors are logged at debug level and never reach the application; time to first chunk is
recorded by the proxy (``inv.mark_first_chunk()``) before ``on_chunk`` sees the first chunk.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import wrapt

from gensight.instrumentation.attributes import GENSIGHT_STREAM_ENDED_BY
from gensight.instrumentation.lifecycle import Invocation

logger = logging.getLogger(__name__)

ChunkHandler = Callable[[Invocation, Any], None]
EndHandler = Callable[[Invocation], None]

ENDED_BY_CLOSE = "close"
ENDED_BY_GC = "gc"


class _StreamProxyBase(wrapt.ObjectProxy):  # type: ignore[misc]
    """Shared finish-once logic; subclasses add the sync or async iteration protocol."""

    def __init__(
        self,
        stream: Any,
        invocation: Invocation,
        on_chunk: ChunkHandler | None = None,
        on_end: EndHandler | None = None,
    ):
        super().__init__(stream)
        self._self_invocation = invocation
        self._self_on_chunk = on_chunk
        self._self_on_end = on_end
        self._self_seen_chunk = False
        self._self_finished = False

    def _self_handle_chunk(self, chunk: Any) -> None:
        inv = self._self_invocation
        if not self._self_seen_chunk:
            self._self_seen_chunk = True
            inv.mark_first_chunk()
        handler = self._self_on_chunk
        if handler is not None:
            try:
                handler(inv, chunk)
            except Exception:
                logger.debug("gensight: stream chunk handler failed", exc_info=True)

    def _self_finish(self, error: BaseException | None = None, ended_by: str | None = None) -> None:
        if self._self_finished:
            return
        self._self_finished = True
        inv = self._self_invocation
        try:
            if self._self_on_end is not None:
                self._self_on_end(inv)
        except Exception:
            logger.debug("gensight: stream end handler failed", exc_info=True)
        try:
            if ended_by is not None:
                inv.set_attribute(GENSIGHT_STREAM_ENDED_BY, ended_by)
            if error is None:
                inv.stop()
            else:
                inv.fail(error)
        except Exception:  # pragma: no cover - Invocation never raises; belt and braces
            logger.debug("gensight: finishing stream failed", exc_info=True)

    def __del__(self) -> None:
        try:
            if not self._self_finished:
                self._self_finish(None, ENDED_BY_GC)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __reduce_ex__(self, protocol: Any) -> Any:  # pragma: no cover - streams are not picklable
        raise TypeError("stream proxies cannot be pickled")


class SyncStreamProxy(_StreamProxyBase):
    """Proxy for a synchronous stream (iterator with optional ``close`` and context manager)."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self.__wrapped__)
        except StopIteration:
            self._self_finish()
            raise
        except BaseException as exc:
            self._self_finish(exc)
            raise
        self._self_handle_chunk(chunk)
        return chunk

    def close(self) -> Any:
        try:
            close = getattr(self.__wrapped__, "close", None)
            return close() if close is not None else None
        finally:
            self._self_finish(None, ENDED_BY_CLOSE)

    def __enter__(self) -> SyncStreamProxy:
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_finish(exc, None if exc is not None else ENDED_BY_CLOSE)


class AsyncStreamProxy(_StreamProxyBase):
    """Proxy for an asynchronous stream (async iterator with optional ``close``/``aclose``)."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_finish()
            raise
        except BaseException as exc:
            self._self_finish(exc)
            raise
        self._self_handle_chunk(chunk)
        return chunk

    async def _self_close_with(self, name: str) -> Any:
        try:
            close = getattr(self.__wrapped__, name, None)
            if close is None:
                return None
            result = close()
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            self._self_finish(None, ENDED_BY_CLOSE)

    async def close(self) -> Any:
        return await self._self_close_with("close")

    async def aclose(self) -> Any:
        return await self._self_close_with("aclose")

    async def __aenter__(self) -> AsyncStreamProxy:
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return (await exit_(exc_type, exc, tb)) if exit_ is not None else None
        finally:
            self._self_finish(exc, None if exc is not None else ENDED_BY_CLOSE)
