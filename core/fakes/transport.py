"""The fake provider's HTTP side: a threaded stdlib server that frames what the routes answer.

Serves ``GET /healthz``, the control endpoint (``GET /_control`` reads the settings, ``POST
/_control`` changes them through :meth:`FakeProvider.configure`) and dispatches every other
request to the route registered for its method and path. It applies the behaviour knobs that are
about the wire rather than the answer: latency before the first byte and per output token
(scaled by an incident's ``latency_factor``), SSE with chunked framing, ``break_stream_after``
(drop the connection mid-body), and a 16 MiB request body limit. A route that raises answers 500;
the server never dies of it.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from gensight.fakes.protocol import Reply, Request

if TYPE_CHECKING:
    from gensight.fakes.server import FakeProvider

MAX_BODY_BYTES = 16 * 1024 * 1024


class Server(ThreadingHTTPServer):
    """The threaded server; a client hanging up is not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that hang up (closed streams, killed tests) are normal for an LLM provider
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_handler(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    """The request handler class bound to ``fake`` (its routes, settings and connection set)."""

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "gensight-fake-provider"
        timeout = 30  # idle keep-alive connections are closed after this

        def setup(self) -> None:
            super().setup()
            # headers and body go out in separate writes: without TCP_NODELAY, Nagle + the
            # client's delayed ACK add ~40 ms to every response
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            fake.track_connection(self.connection, is_open=True)

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:  # the client went away, or we dropped the connection on purpose
                pass
            finally:
                fake.track_connection(self.connection, is_open=False)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send_json(200, {"status": "ok"})
            elif path == "/_control":
                self._send_json(200, fake.settings())
            else:
                self._dispatch("GET", path, None)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._send_json(413, {"error": {"message": "request body too large", "type": "invalid_request_error"}})
                return
            raw = self.rfile.read(length) if length else b""
            try:
                payload = json.loads(raw) if raw else {}
                if not isinstance(payload, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as exc:
                self._send_json(400, {"error": {"message": f"invalid JSON body: {exc}", "type": "invalid_request_error"}})
                return
            if path == "/_control":
                try:
                    self._send_json(200, fake.configure(payload))
                except (TypeError, ValueError) as exc:
                    self._send_json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                return
            self._dispatch("POST", path, payload)

        def _dispatch(self, method: str, path: str, payload: Any) -> None:
            handler = fake.route(method, path)
            if handler is None:
                self._send_json(404, {"error": {"message": f"no route {method} {path}", "type": "not_found_error"}})
                return
            request = Request(method, path, dict(self.headers.items()), payload)
            try:
                reply = handler(fake, request)
            except Exception as exc:  # a route bug is a 500, never a dead server
                self._send_json(500, {"error": {"message": f"fake provider route failed: {exc!r}", "type": "server_error"}})
                return
            model = payload.get("model") if isinstance(payload, dict) else None
            factor = fake.latency_factor(model if isinstance(model, str) else None)
            if reply.events is None:
                delay = (fake.latency_s + fake.latency_per_token_s * reply.output_tokens) * factor
                if reply.status == 200 and delay > 0:
                    time.sleep(delay)
                self._send_json(reply.status, reply.body, reply.headers)
            else:
                self._send_sse(reply, factor)

        def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _send_sse(self, reply: Reply, factor: float) -> None:
            if fake.latency_s > 0:
                time.sleep(fake.latency_s * factor)
            self.send_response(reply.status)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            events = list(reply.events or ())
            per_event_s = 0.0
            if fake.latency_per_token_s > 0 and events:
                per_event_s = fake.latency_per_token_s * reply.output_tokens * factor / len(events)
            break_after = fake.break_stream_after
            for i, (name, data) in enumerate(events):
                if break_after is not None and i >= break_after:
                    # drop the connection mid-body: no terminating chunk, the client sees a broken stream
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
                chunk = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                if per_event_s > 0:
                    time.sleep(per_event_s)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return _Handler

