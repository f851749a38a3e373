"""OTLP/HTTP receiver: ``POST /v1/traces`` (protobuf and JSON, gzip), ``GET /healthz`` and ``/readyz``;
``POST /v1/logs`` too when given a logs consumer (evaluation results arrive as logs; same rules).

Interface::

    cfg = HttpReceiverConfig(endpoint="127.0.0.1:4318"); cfg.validate("receivers.http")
    rx = HttpReceiver(cfg, consumer, ready=lambda: queue.has_room())   # consumer: see admission.py
    rx.start(); rx.port; rx.stats() -> HttpReceiverStats; rx.stop(grace_s=5.0)

Responses follow the OTLP/HTTP specification: the response body is an
``ExportTraceServiceResponse`` (with ``partial_success`` when spans were rejected) in the
request's encoding; failures carry a ``google.rpc.Status`` body, also in the request's encoding
(JSON when the request's own type was unsupported).

========================================  =====================================================
condition                                 answer
========================================  =====================================================
accepted (maybe partially)                200 + ExportTraceServiceResponse (partial_success when
                                          spans were rejected or strings repaired: lenient.py)
not admitted, retry_after_s set           503 + ``Retry-After: <ceil seconds>`` (retryable)
not admitted, no delay / shutting down    503 without Retry-After
undecodable body (broken framing)         400 + Status (clients must not retry)
Content-Type not protobuf/JSON            415; Content-Encoding not gzip/identity -> 415
body (or decompressed body) too large     413
missing/invalid bearer token (auth on)    401 + ``WWW-Authenticate: Bearer``
wrong method on /v1/traces                405 + ``Allow: POST``; unknown path -> 404
consumer raised                           500 (logged, counted)
========================================  =====================================================

``/healthz`` answers 200 while the process serves HTTP at all (liveness). ``/readyz`` answers 200
only when the receiver is not shutting down and ``ready()`` holds (e.g. the queue has room), else
503 -- a load balancer then routes around a saturated replica. Neither needs a token.

Concurrency is bounded by ``bounded_http.BoundedHTTPServer`` (fixed workers, bounded backlog).
Bodies are read with a total deadline (``request_timeout_s``) so a slow sender cannot pin a worker.
"""

from __future__ import annotations

import http.server
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from gensight.processor.config_fields import ConfigError, Section
from gensight.processor.endpoint import parse_endpoint
from gensight.processor.receive.admission import Admission, Consumer, deliver, export_response
from gensight.processor.receive.bounded_http import BoundedHTTPServer
from gensight.processor.receive.decode import DecodeError, TooLargeError, gunzip
from gensight.processor.receive.lenient import decode_request
from gensight.processor.receive.logs import decode_logs_request
from gensight.processor.receive.tls import AuthConfig, BearerAuthenticator, TlsConfig

_log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_READ_CHUNK_BYTES = 256 * 1024
_DRAIN_MAX_BYTES = 4 * 1024 * 1024  # an over-limit body this much too big is read and discarded


@dataclass(frozen=True)
class HttpReceiverConfig(Section):
    endpoint: str = "127.0.0.1:4318"  # bind 0.0.0.0:4318 to accept from other hosts/containers
    max_request_body_mib: int = 64  # limit for the body as sent AND after gzip decompression
    workers: int = 8
    backlog: int = 64  # connections waiting for a worker; beyond -> immediate 503
    idle_timeout_s: float = 30.0  # a keep-alive connection silent this long is closed
    request_timeout_s: float = 30.0  # a request body must arrive within this
    tls: TlsConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)

    def validate(self, prefix: str = "receivers.http") -> None:
        parse_endpoint(self.endpoint, f"{prefix}.endpoint")
        if not 1 <= self.max_request_body_mib <= 4096:
            raise ConfigError(f"{prefix}.max_request_body_mib: must be 1..4096, got {self.max_request_body_mib}")
        if self.workers < 1:
            raise ConfigError(f"{prefix}.workers: must be >= 1, got {self.workers}")
        if self.backlog < 1:
            raise ConfigError(f"{prefix}.backlog: must be >= 1, got {self.backlog}")
        if not self.idle_timeout_s > 0:
            raise ConfigError(f"{prefix}.idle_timeout_s: must be > 0, got {self.idle_timeout_s}")
        if not self.request_timeout_s > 0:
            raise ConfigError(f"{prefix}.request_timeout_s: must be > 0, got {self.request_timeout_s}")
        if self.tls is not None:
            self.tls.validate(f"{prefix}.tls")
        self.auth.validate(f"{prefix}.auth")


class HttpReceiverStats(NamedTuple):
    requests: int  # POST /v1/traces
    accepted: int
    partial: int
    refused: int  # 503
    invalid: int  # 400
    too_large: int  # 413
    unsupported: int  # 415
    unauthenticated: int  # 401
    internal_errors: int  # 500
    busy_connections: int  # connections shed because every worker and the backlog were busy


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpReceiver:
    name = "http"  # the ``receiver`` attribute of its self-telemetry

    def __init__(self, config: HttpReceiverConfig, consumer: Consumer, *, ready: Callable[[], bool] | None = None,
                 logs_consumer: Consumer | None = None) -> None:
        self.config = config
        self.consumer = consumer
        # path -> the logs consumer for /v1/logs (evaluation results), None for /v1/traces
        self.signals: dict[str, Consumer | None] = {TRACES_PATH: None}
        if logs_consumer is not None:
            self.signals[LOGS_PATH] = logs_consumer
        self.ready_check = ready
        self.auth: BearerAuthenticator | None = config.auth.authenticator()
        self.max_body_bytes = config.max_request_body_mib * 1024 * 1024
        self.stopping = False
        self._server: BoundedHTTPServer | None = None
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(HttpReceiverStats._fields, 0)

    @property
    def port(self) -> int:
        return self._server.port if self._server else 0

    def start(self) -> None:
        cfg = self.config
        host, port = parse_endpoint(cfg.endpoint, "endpoint")
        handler = type("BoundHandler", (_Handler,), {"receiver": self, "timeout": cfg.idle_timeout_s})
        try:
            self._server = BoundedHTTPServer(
                (host, port),
                handler,
                workers=cfg.workers,
                backlog=cfg.backlog,
                ssl_context=cfg.tls.server_ssl_context() if cfg.tls else None,
                idle_timeout_s=cfg.idle_timeout_s,
            )
        except OSError as exc:
            raise OSError(f"cannot bind HTTP receiver to {cfg.endpoint}: {exc}") from None
        self._server.start()
        _log.info("OTLP/HTTP receiver listening on %s:%d%s", host, self.port, " (TLS)" if cfg.tls else "")

    def stop(self, grace_s: float = 5.0) -> None:
        self.stopping = True
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace_s)

    def is_ready(self) -> bool:
        if self.stopping:
            return False
        if self.ready_check is None:
            return True
        try:
            return bool(self.ready_check())
        except Exception:
            return False

    def count(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._counts[name] += 1

    def stats(self) -> HttpReceiverStats:
        with self._lock:
            counts = dict(self._counts)
        counts["busy_connections"] = self._server.busy_rejections if self._server else 0
        return HttpReceiverStats(**counts)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: SDK exporters reuse connections
    server_version = "gensight"
    sys_version = ""
    receiver: HttpReceiver  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        _log.debug("%s " + format, self.client_address[0], *args)

    # ---------------------------------------------------------------- routing

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._plain(200, "ok\n")
        elif path == "/readyz":
            if self.receiver.is_ready():
                self._plain(200, "ready\n")
            else:
                self._plain(503, "not ready\n")
        elif path in self.receiver.signals:
            self._method_not_allowed()
        else:
            self._plain(404, "not found\n")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path not in self.receiver.signals:
            self._discard_body_or_close()
            self._plain(404, "not found\n")
            return
        self._export(self.receiver.signals[path])

    def _other(self) -> None:
        if self.path.split("?", 1)[0] in self.receiver.signals:
            self._discard_body_or_close()
            self._method_not_allowed()
        else:
            self._discard_body_or_close()
            self._plain(404, "not found\n")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other  # noqa: N815

    # ---------------------------------------------------------------- export

    def _export(self, logs: Consumer | None) -> None:
        """/v1/traces, or /v1/logs when ``logs`` (its consumer) is given."""
        rx = self.receiver
        rx.count("requests")
        media = _media_type(self.headers.get("Content-Type"))
        json_out = media == JSON
        if rx.auth is not None and not rx.auth.check(self.headers.get("Authorization")):
            rx.count("unauthenticated")
            self.close_connection = True  # body not read
            self._status(401, code_pb2.UNAUTHENTICATED, "missing or invalid bearer token", json_out,
                         extra={"WWW-Authenticate": 'Bearer realm="gensight"'})
            return
        if media not in (PROTOBUF, JSON):
            rx.count("unsupported")
            self.close_connection = True
            self._status(415, code_pb2.INVALID_ARGUMENT,
                         f"unsupported Content-Type {media or '(none)'!r}: use {PROTOBUF} or {JSON}", True)
            return
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            rx.count("unsupported")
            self.close_connection = True
            self._status(415, code_pb2.INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}: use gzip", json_out)
            return
        try:
            body = self._read_body()
            if encoding == "gzip":
                body = gunzip(body, rx.max_body_bytes)
            # strict; per-span defects tolerated only when that fails. ``raw`` (protobuf only) lets
            # the normaliser's C scanner read the bytes (the repaired ones, when repaired)
            if logs is None:
                decoded = decode_request(body, "json" if json_out else "protobuf")
            else:
                log_request = decode_logs_request(body, encoding="json" if json_out else "protobuf")
        except _BodyError as exc:
            rx.count("too_large" if exc.status == 413 else "invalid")
            self.close_connection = True
            self._status(exc.status, code_pb2.INVALID_ARGUMENT, exc.message, json_out)
            return
        except TooLargeError as exc:
            rx.count("too_large")
            self._status(413, code_pb2.INVALID_ARGUMENT, exc.message, json_out)
            return
        except DecodeError as exc:
            rx.count("invalid")
            self._status(400, code_pb2.INVALID_ARGUMENT, exc.message, json_out)
            return
        if rx.stopping:
            rx.count("refused")
            self._status(503, code_pb2.UNAVAILABLE, "shutting down", json_out)
            return
        try:
            if logs is None:
                admission: Admission = deliver(rx.consumer, decoded.request, decoded.raw, decoded.defects)
            else:
                admission = logs(log_request, None if json_out else body)
        except Exception:
            _log.exception("trace consumer failed; answering 500")
            rx.count("internal_errors")
            self._status(500, code_pb2.INTERNAL, "internal error while processing the request", json_out)
            return
        if not admission.accepted:
            rx.count("refused")
            extra = {}
            if admission.retry_after_s is not None:
                extra["Retry-After"] = str(max(1, math.ceil(admission.retry_after_s)))
            code = code_pb2.RESOURCE_EXHAUSTED if admission.retry_after_s is not None else code_pb2.UNAVAILABLE
            self._status(503, code, admission.error_message or "not accepting data", json_out, extra=extra)
            return
        response, partial = export_response(admission, logs is not None)
        if partial:
            rx.count("accepted", "partial")
        else:
            rx.count("accepted")
        self._message(200, response, json_out)

    def _read_body(self) -> bytes:
        limit = self.receiver.max_body_bytes
        deadline = time.monotonic() + self.receiver.config.request_timeout_s
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit, deadline)
        length_s = self.headers.get("Content-Length")
        if length_s is None:
            raise _BodyError(411, "Content-Length or chunked Transfer-Encoding required")
        try:
            length = int(length_s)
        except ValueError:
            raise _BodyError(400, f"invalid Content-Length {length_s[:32]!r}") from None
        if length < 0:
            raise _BodyError(400, "negative Content-Length")
        if length > limit:
            if length - limit <= _DRAIN_MAX_BYTES:
                # read and discard a modest excess so the client sees the 413 instead of a reset
                self._read_exact(length, deadline, keep=False)
            raise _BodyError(413, f"body of {length} bytes exceeds the limit of {limit} bytes")
        return self._read_exact(length, deadline)

    def _read_exact(self, n: int, deadline: float, keep: bool = True) -> bytes:
        parts: list[bytes] = []
        remaining = n
        while remaining:
            if time.monotonic() > deadline:
                raise _BodyError(408, "request body not received in time")
            chunk = self.rfile.read(min(remaining, _READ_CHUNK_BYTES))
            if not chunk:
                raise _BodyError(400, "request body truncated")
            if keep:
                parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def _read_chunked(self, limit: int, deadline: float) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "invalid chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > limit:
                raise _BodyError(413, f"body exceeds the limit of {limit} bytes")
            parts.append(self._read_exact(size, deadline))
            self.rfile.readline(16)  # CRLF after each chunk

    def _discard_body_or_close(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= 1024 * 1024:
            try:
                self.rfile.read(int(length))
                return
            except OSError:
                pass
        if length not in (None, "0"):
            self.close_connection = True
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True

    # ---------------------------------------------------------------- responses

    def _method_not_allowed(self) -> None:
        self._plain(405, "method not allowed\n", extra={"Allow": "POST"})

    def _plain(self, status: int, text: str, extra: dict[str, str] | None = None) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode(), extra)

    def _message(self, status: int, message: Any, json_out: bool, extra: dict[str, str] | None = None) -> None:
        if json_out:
            body = json_format.MessageToJson(message, indent=None).encode()
            self._send(status, JSON, body, extra)
        else:
            self._send(status, PROTOBUF, message.SerializeToString(), extra)

    def _status(self, http_status: int, code: int, message: str, json_out: bool, extra: dict[str, str] | None = None) -> None:
        self._message(http_status, status_pb2.Status(code=code, message=message), json_out, extra)

    def _send(self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True
