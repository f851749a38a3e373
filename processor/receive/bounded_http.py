"""A stdlib HTTP/1.1 server with a fixed worker pool and a bounded accept backlog.

Why not ``ThreadingHTTPServer``: it starts one thread per connection with no bound, so a burst of
clients (or a slowloris) grows threads and memory without limit. Why not a third-party server
(uvicorn/aiohttp): none is a dependency of the processor extra, and OTLP/HTTP needs only a
handful of routes; the stdlib keeps the receiver in the same threading model as the gRPC one
(the pipeline consumer runs in a bounded set of worker threads).

Model: the accept loop hands each connection to a queue of at most ``backlog`` waiting
connections served by ``workers`` threads. When the backlog is full the connection gets an
immediate ``503`` with ``Retry-After`` (plaintext) or is closed (TLS: a handshake would block the
accept loop) -- load is shed, never queued without bound. Sockets carry an idle timeout so a
silent keep-alive client releases its worker.

Interface::

    srv = BoundedHTTPServer(("127.0.0.1", 0), HandlerClass, workers=8, backlog=64,
                            ssl_context=None, idle_timeout_s=30.0)
    srv.start(); srv.port; srv.busy_rejections; srv.stop(grace_s)
"""

from __future__ import annotations

import http.server
import logging
import queue
import socket
import socketserver
import ssl
import threading
import time
from typing import Any

_log = logging.getLogger(__name__)

_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 12\r\nConnection: close\r\n\r\nserver busy\n"
)


class BoundedHTTPServer(http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # TIME_WAIT reuse only; SO_REUSEPORT stays off
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        *,
        workers: int = 8,
        backlog: int = 64,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout_s: float = 30.0,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.ssl_context = ssl_context
        if ssl_context is not None:
            # handshake lazily, in the worker, so a slow client cannot stall the accept loop
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.idle_timeout_s = idle_timeout_s
        self._pending: queue.Queue[tuple[Any, Any] | None] = queue.Queue(maxsize=backlog)
        self._workers = [
            threading.Thread(target=self._work, name=f"gensight-http-{i}", daemon=True) for i in range(workers)
        ]
        self._serve_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._active: set[Any] = set()
        self.busy_rejections = 0

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can hang; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        for t in self._workers:
            t.start()
        self._serve_thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="gensight-http-accept", daemon=True
        )
        self._serve_thread.start()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let queued and in-flight requests finish within ``grace_s``, close."""
        if self._serve_thread is not None:
            self.shutdown()
            self._serve_thread.join(grace_s)
        deadline = time.monotonic() + grace_s
        for _ in self._workers:
            try:
                self._pending.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                break
        for t in self._workers:
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            lingering = list(self._active)
        for sock in lingering:  # idle keep-alive connections past the grace period: cut them
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()

    # socketserver hooks -------------------------------------------------------------

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(self.idle_timeout_s)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            self._pending.put_nowait((request, client_address))
        except queue.Full:
            with self._lock:
                self.busy_rejections += 1
            self._reject_busy(request)

    def _reject_busy(self, sock: Any) -> None:
        try:
            if not isinstance(sock, ssl.SSLSocket):
                sock.settimeout(0.5)
                sock.sendall(_BUSY_RESPONSE)
        except OSError:
            pass
        finally:
            self.shutdown_request(sock)

    def _work(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            request, client_address = item
            with self._lock:
                self._active.add(request)
            try:
                if isinstance(request, ssl.SSLSocket):
                    request.do_handshake()
                self.finish_request(request, client_address)
            except (OSError, ssl.SSLError) as exc:
                _log.debug("connection from %s ended: %s", client_address, exc)
            except Exception:
                _log.exception("unexpected error serving %s", client_address)
            finally:
                with self._lock:
                    self._active.discard(request)
                self.shutdown_request(request)
