"""The processor's one HTTP server: an aiohttp application on its own event loop in a daemon thread,
with the bounds every endpoint needs. The OTLP/HTTP receiver, the Prometheus scrape endpoint, the
admin endpoint and the status page all run on it.

Why aiohttp: a well-kept server (HTTP/1.1 parsing in C, keep-alive, request-line and header limits,
lingering close) that runs in one thread beside the processor's own threads, with no process
manager; the status page already needed it. Chosen by measurement: docs/benchmarks.md, "HTTP servers
for OTLP/HTTP ingestion" (the candidates) and "OTLP/HTTP ingestion before and after the move to
aiohttp" (the result).

Bounds (each one a test in tests/processor/receive/test_http_server.py):

- **connections**: at most ``max_connections`` open at once. One more is answered at once with
  ``503`` + ``Retry-After: 1`` (after its TLS handshake on TLS) and closed, and counted in
  ``busy_rejections`` -- load is shed, never queued without bound. A connection counts from the
  end of its TLS handshake to its close; handshakes in progress are bounded by ``idle_timeout_s``.
- **slow or idle clients**: a connection that has not sent a complete request head within
  ``idle_timeout_s`` of opening or of its previous answer is closed (aiohttp's keep-alive timer:
  it covers the slowloris that trickles header bytes, and the silent keep-alive client). A body
  must arrive within the endpoint's deadline (``read_body``: 408). A client that stops reading
  its answer is cut when the socket's send buffer stays full for ``idle_timeout_s``.
- **bodies**: ``read_body`` checks ``Content-Length`` against the limit before reading a byte
  (413 at once; aiohttp then discards what the client still sends for at most ``LINGER_S`` so the
  client sees the 413 rather than a reset), counts chunked bodies as they arrive, and answers 411
  when a body has neither length nor chunking. ``client_max_size`` caps aiohttp's own
  ``request.read()``.
- **compression**: aiohttp's own decompression is off; an endpoint that accepts gzip inflates
  the body itself under its size limit (``decode.gunzip``), so a gzip bomb is a 413, not a heap.
- **heads**: aiohttp's parser answers 400 itself, before any endpoint sees the request, for a
  head it refuses: request line or header field over 8 KiB, more than 128 headers, a control
  character in a header value (RFC 9110 5.5). Those are counted in ``protocol_errors``.
- **blocking work** runs on ``workers`` threads (``run_blocking``) wherever it may take long: the
  receiver's large or gzipped bodies, a scrape's rendering, admin edits, charts. The loop parses,
  answers and does only short work itself, so one large request never stalls health checks or
  other clients.

Auth: ``auth(request) -> bool`` runs for every path but ``public_paths``; a refusal is answered by
``deny(request)`` (default: ``401`` + ``WWW-Authenticate: Bearer``, connection closed, body unread).

Interface::

    srv = HttpServer("receiver", host, port, routes=[web.post("/x", handler)], max_connections=72,
                     client_max_size=64 << 20, idle_timeout_s=30.0, ssl_context=None, workers=8,
                     auth=bearer_check(authenticator), public_paths=("/healthz",))
    srv.start(); srv.port; srv.busy_rejections; srv.protocol_errors; srv.open_connections
    await srv.run_blocking(fn, *args)     # in a handler
    srv.shutdown(timeout_s)
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from gensight.processor.receive.tls import BearerAuthenticator

_log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LINGER_S = 5.0  # after an early answer (413, 401), unread body bytes are discarded this long at most
ACCEPT_BACKLOG = 128  # the kernel's queue of connections not yet accepted
SERVER_HEADER = "gensight"  # not aiohttp's default, which names its version
# request key set when the application answered (RequestKey: aiohttp >= 3.14; a string before)
_ANSWERED_BY_APP: Any = (web.RequestKey("gensight_answered_by_app", bool) if hasattr(web, "RequestKey")
                         else "gensight.answered_by_app")
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 12\r\nConnection: close\r\n\r\nserver busy\n"
)


class BodyError(Exception):
    """A request body that cannot be read: ``status`` is the HTTP answer (400, 408, 411, 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: web.Request, limit_bytes: int, timeout_s: float, *, length_required: bool = True) -> bytes:
    """The whole body, at most ``limit_bytes``, within ``timeout_s`` (raises ``BodyError``).

    A declared length over the limit is refused before any byte is read. Without ``Content-Length``
    and chunking there is no body: 411 when ``length_required``, else ``b""``."""
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    length = request.content_length
    if not chunked:
        if length is None:
            if length_required:
                raise BodyError(411, "Content-Length or chunked Transfer-Encoding required")
            return b""
        if length > limit_bytes:
            raise BodyError(413, f"body of {length} bytes exceeds the limit of {limit_bytes} bytes")
        if length == 0:
            return b""
    reading = _read(request, length if not chunked else None, limit_bytes)
    try:
        if request.content.is_eof():  # all of it has arrived (the usual small body): no deadline to arm
            return await reading
        return await within(reading, timeout_s)
    except asyncio.TimeoutError:
        raise BodyError(408, "request body not received in time") from None
    except asyncio.IncompleteReadError:
        raise BodyError(400, "request body truncated") from None


if sys.version_info >= (3, 11):
    async def within(awaitable: Awaitable[T], timeout_s: float) -> T:
        """``await awaitable`` with a deadline: a timer, not a task per call as ``wait_for`` makes."""
        async with asyncio.timeout(timeout_s):
            return await awaitable
else:  # pragma: no cover - Python 3.10
    within = asyncio.wait_for


async def _read(request: web.Request, length: int | None, limit_bytes: int) -> bytes:
    """``length`` bytes, or a chunked body (``length`` None) counted against ``limit_bytes``."""
    if length is not None:
        return await request.content.readexactly(length)
    parts: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > limit_bytes:
            raise BodyError(413, f"body exceeds the limit of {limit_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


def bearer_check(authenticator: BearerAuthenticator | None) -> Callable[[web.Request], bool] | None:
    """An ``auth`` callable from a configured authenticator (None: auth off)."""
    if authenticator is None:
        return None
    return lambda request: authenticator.check(request.headers.get("Authorization"))


def deny_plain(realm: str = "gensight", message: str = "missing or invalid bearer token"
               ) -> Callable[[web.Request], web.StreamResponse]:
    def deny(request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text=f"{message}\n",
                            headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})
    return deny


class HttpServer:
    """Thin lifecycle over ``_Connection`` + an aiohttp ``AppRunner``; see the module docstring."""

    def __init__(self, name: str, host: str, port: int, *, routes: Iterable[web.AbstractRouteDef],
                 max_connections: int, client_max_size: int, idle_timeout_s: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None, workers: int = 1,
                 auth: Callable[[web.Request], bool] | None = None,
                 deny: Callable[[web.Request], web.StreamResponse] | None = None,
                 public_paths: Iterable[str] = (),
                 middlewares: Iterable[Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]] = ()) -> None:
        self.name = name
        self.host, self._requested_port = host, port
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.ssl_context = ssl_context
        self.busy_rejections = 0
        self.protocol_errors = 0  # requests refused by the HTTP parser (never reached a handler)
        self.open_connections = 0  # touched on the loop thread only
        self._routes = list(routes)
        self._client_max_size = client_max_size
        self._auth = auth
        self._deny = deny or deny_plain()
        self._public = frozenset(public_paths)
        self._middlewares = [_middleware(m) for m in middlewares]
        self._workers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"gensight-{name}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind and serve; raises ``OSError`` when the address cannot be bound."""
        middlewares = list(self._middlewares)
        if self._auth is not None:
            middlewares.append(_middleware(self._check_auth))
        app = web.Application(middlewares=middlewares, client_max_size=self._client_max_size)
        app.add_routes(self._routes)
        app.on_response_prepare.append(_server_header)
        outcomes = type("Outcomes", (_Outcomes,), {"server": self})
        runner = web.AppRunner(app, access_log=_log, access_log_class=outcomes, handle_signals=False,
                               keepalive_timeout=self.idle_timeout_s, lingering_time=LINGER_S, auto_decompress=False,
                               logger=_ServerLog(_log, {}))
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(runner.setup())
            make_handler = runner.server  # aiohttp's protocol factory, set by setup()
            assert make_handler is not None
            self._listener = loop.run_until_complete(loop.create_server(
                lambda: _Connection(self, make_handler), self.host or None, self._requested_port,
                ssl=self.ssl_context, backlog=ACCEPT_BACKLOG, reuse_address=True,
                ssl_handshake_timeout=self.idle_timeout_s if self.ssl_context else None))
        except BaseException:
            loop.run_until_complete(runner.cleanup())
            loop.close()
            raise
        self.port = int(self._listener.sockets[0].getsockname()[1])
        self._loop, self._runner = loop, runner
        self._thread = threading.Thread(target=loop.run_forever, name=f"gensight-{self.name}", daemon=True)
        self._thread.start()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish within ``timeout_s``, close every connection."""
        loop, self._loop = self._loop, None
        if loop is None:
            self._workers.shutdown(wait=False, cancel_futures=True)
            return
        runner, listener = self._runner, self._listener

        async def stop() -> None:
            if listener is not None:
                listener.close()
            if runner is not None and runner.server is not None:
                runner.server.pre_shutdown()  # idle keep-alive connections close now
                await runner.server.shutdown(timeout_s)  # requests in flight get timeout_s
                await runner.cleanup()

        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout_s + 1.0)
        except Exception:  # noqa: BLE001 - stopping must not raise
            _log.debug("%s: cleanup did not finish", self.name, exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)
        if not loop.is_running():
            loop.close()
        self._workers.shutdown(wait=False, cancel_futures=True)

    # -- for handlers ----------------------------------------------------------------------------
    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the ``workers`` threads (a burst queues there, bounded by
        ``max_connections``: a connection has at most one request in flight)."""
        return await asyncio.get_running_loop().run_in_executor(self._workers, fn, *args)

    async def _check_auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in self._public or (self._auth is not None and self._auth(request)):
            return await handler(request)
        response = self._deny(request)
        response.force_close()  # the body is not read: do not reuse the connection
        return response


def _middleware(fn: Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]) -> Any:
    """An aiohttp (new-style) middleware calling ``fn``, which may be a bound method."""
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await fn(request, handler)
    return web.middleware(middleware)


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every answer of the application (never for the parser's own)."""
    response.headers["Server"] = SERVER_HEADER
    request[_ANSWERED_BY_APP] = True


class _ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's log of requests it answered itself. A head its parser refused is a client's
    fault, counted in ``protocol_errors``, and its message quotes header bytes: DEBUG only, so a
    hostile client can neither flood the log nor put its headers there. Handler failures (500)
    keep their traceback at ERROR."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        level = logging.DEBUG if isinstance(exc, HttpProcessingError) else logging.ERROR
        self.log(level, msg, *args, exc_info=exc_info, **kwargs)


class _Outcomes(AbstractAccessLogger):
    """aiohttp's per-response hook (its access-log interface; nothing is logged): counts the
    answers its parser gave to requests no handler saw."""

    server: HttpServer

    def log(self, request: Any, response: web.StreamResponse, time: float) -> None:
        if response.status >= 400 and _ANSWERED_BY_APP not in request:
            self.server.protocol_errors += 1

    @property
    def enabled(self) -> bool:
        return True


class _Connection(asyncio.Protocol):
    """One client connection: admits it under ``max_connections`` (else answers 503 and closes),
    cuts a client that stops reading, and otherwise hands every event to aiohttp's handler."""

    def __init__(self, server: HttpServer, make_handler: Callable[[], Any]) -> None:
        self._server = server
        self._make_handler = make_handler
        self._inner: Any = None
        self._transport: asyncio.Transport | None = None
        self._stall: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        assert isinstance(transport, asyncio.Transport)
        if server.open_connections >= server.max_connections:
            server.busy_rejections += 1
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        server.open_connections += 1
        self._transport = transport
        inner = self._inner = self._make_handler()
        # the hot path goes straight to aiohttp, with no frame of ours in between
        self.data_received = inner.data_received  # type: ignore[method-assign]
        self.eof_received = inner.eof_received  # type: ignore[method-assign]
        inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is None:
            return
        self._server.open_connections -= 1
        if self._stall is not None:
            self._stall.cancel()
        inner, self._inner = self._inner, None
        inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:  # a refused connection: ignore what it sends
        return None

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        # the client does not read what we send: give it idle_timeout_s, then cut it
        if self._transport is not None and self._stall is None:
            loop = asyncio.get_running_loop()
            self._stall = loop.call_later(self._server.idle_timeout_s, self._transport.abort)
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self._inner is not None:
            self._inner.resume_writing()
