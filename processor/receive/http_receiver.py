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

Served by ``http_server.HttpServer`` (aiohttp): at most ``workers + backlog`` open connections
(one more gets an immediate 503 + ``Retry-After``, counted as ``busy_connections``); a request head
must arrive within ``idle_timeout_s`` and its body within ``request_timeout_s`` (408), so a slow
sender cannot hold a connection; bounds in detail in ``http_server.py``. Memory: at most
``workers`` requests hold a body at once (reading, decoding, delivering: ``workers`` x
``max_request_body_mib``, plus the decoded copy); the others wait with their bodies unread, which
TCP turns into back-pressure on the sender, and one that waits ``request_timeout_s`` for its turn
gets 503 + ``Retry-After`` (counted as ``refused``).

Where the work runs: the event loop reads the body and answers. Decoding (protobuf/JSON parsing,
lenient repair) and delivery into the pipeline run on the loop itself for an uncompressed body of
at most ``INLINE_MAX_BYTES`` (256 KiB, about 900 GenAI spans: ~1 us/span to decode plus the
consumer's normalising, a few milliseconds at most), and on ``workers`` threads
(``HttpServer.run_blocking``) for anything larger or gzipped (a gzip body's inflated size, and so
its cost, is unknown until inflated; up to ``max_request_body_mib``, the better part of a second,
which inline would stall every other client and the health checks for). Why not always the
workers: the hop to a thread and back costs more than decoding a typical exporter batch (a
``BatchSpanProcessor`` sends up to 512 spans): with every request on the workers the server used
1.4-2x the CPU per span of the HTTP layer it uses with small bodies inline, 1.07-1.36x end to end
(bench/http_ingest.py, docs/benchmarks.md). The consumer is called from the loop or a worker thread alike; it was
written for the gRPC receiver's worker threads and must not block either way (admission.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from gensight.processor.config_fields import ConfigError, Section
from gensight.processor.endpoint import parse_endpoint
from gensight.processor.receive.admission import Admission, Consumer, deliver, export_response
from gensight.processor.receive.decode import DecodeError, TooLargeError, gunzip
from gensight.processor.receive.http_server import BodyError, HttpServer, bearer_check, read_body, within
from gensight.processor.receive.lenient import decode_request
from gensight.processor.receive.logs import decode_logs_request
from gensight.processor.receive.tls import AuthConfig, BearerAuthenticator, TlsConfig

_log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
HEALTH_PATHS = ("/healthz", "/readyz")
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
INLINE_MAX_BYTES = 256 * 1024  # uncompressed bodies up to this are decoded on the event loop (see above)


@dataclass(frozen=True)
class HttpReceiverConfig(Section):
    endpoint: str = "127.0.0.1:4318"  # bind 0.0.0.0:4318 to accept from other hosts/containers
    max_request_body_mib: int = 64  # limit for the body as sent AND after gzip decompression
    workers: int = 8  # threads decoding and delivering requests
    backlog: int = 64  # connections allowed beyond ``workers``; beyond both -> immediate 503
    idle_timeout_s: float = 30.0  # a connection without a complete request head this long is closed
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
    invalid: int  # 400 (including heads the HTTP parser refused)
    too_large: int  # 413
    unsupported: int  # 415
    unauthenticated: int  # 401
    internal_errors: int  # 500
    busy_connections: int  # connections shed because every worker and the backlog were busy


class _Answer(NamedTuple):
    """What the worker thread decided; the loop turns it into a response."""

    status: int
    message: Any  # a protobuf message (ExportTraceServiceResponse / ExportLogsServiceResponse / Status)
    headers: dict[str, str] | None = None
    close: bool = False


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
        self._server: HttpServer | None = None
        self._body_slots = asyncio.Semaphore(config.workers)  # used on the server's loop only
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(HttpReceiverStats._fields, 0)

    @property
    def port(self) -> int:
        return self._server.port if self._server else 0

    def start(self) -> None:
        cfg = self.config
        host, port = parse_endpoint(cfg.endpoint, "endpoint")
        server = HttpServer(
            "http-receiver", host, port,
            routes=[web.route("*", path, self._route) for path in (*self.signals, *HEALTH_PATHS, "/{path:.*}")],
            max_connections=cfg.workers + cfg.backlog, client_max_size=self.max_body_bytes,
            idle_timeout_s=cfg.idle_timeout_s, ssl_context=cfg.tls.server_ssl_context() if cfg.tls else None,
            workers=cfg.workers, auth=bearer_check(self.auth), deny=self._deny, public_paths=HEALTH_PATHS,
        )
        try:
            server.start()
        except OSError as exc:
            server.shutdown(0)
            raise OSError(f"cannot bind HTTP receiver to {cfg.endpoint}: {exc}") from None
        self._server = server
        _log.info("OTLP/HTTP receiver listening on %s:%d%s", host, self.port, " (TLS)" if cfg.tls else "")

    def stop(self, grace_s: float = 5.0) -> None:
        self.stopping = True
        server = self._server
        if server is not None:
            server.shutdown(grace_s)  # requests in flight still reach the server's workers
            with self._lock:  # the final self-telemetry is read after stop
                self._counts["busy_connections"] += server.busy_rejections
                self._counts["requests"] += server.protocol_errors
                self._counts["invalid"] += server.protocol_errors
        self._server = None

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
        server = self._server
        if server is not None:
            counts["busy_connections"] += server.busy_rejections
            # heads the HTTP parser refused (e.g. a control character in a header) are invalid requests
            counts["requests"] += server.protocol_errors
            counts["invalid"] += server.protocol_errors
        return HttpReceiverStats(**counts)

    # ---------------------------------------------------------------- routing (on the event loop)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path, method = request.path, request.method
        if method == "GET" and path == "/healthz":
            return _plain(200, "ok\n")
        if method == "GET" and path == "/readyz":
            return _plain(200, "ready\n") if self.is_ready() else _plain(503, "not ready\n")
        if path in self.signals:
            if method == "POST":
                return await self._export(request, self.signals[path])
            return _plain(405, "method not allowed\n", {"Allow": "POST"})
        return _plain(404, "not found\n")

    def _deny(self, request: web.Request) -> web.StreamResponse:
        """401 for a request without a valid token (the body stays unread)."""
        json_out = _media_type(request.headers.get("Content-Type")) == JSON
        if request.method == "POST" and request.path in self.signals:
            self.count("requests", "unauthenticated")
        return _response(_Answer(401, _status(code_pb2.UNAUTHENTICATED, "missing or invalid bearer token"),
                                 {"WWW-Authenticate": 'Bearer realm="gensight"'}, close=True), json_out)

    async def _export(self, request: web.Request, logs: Consumer | None) -> web.StreamResponse:
        """/v1/traces, or /v1/logs when ``logs`` (its consumer) is given."""
        self.count("requests")
        media = _media_type(request.headers.get("Content-Type"))
        json_out = media == JSON
        if media not in (PROTOBUF, JSON):
            self.count("unsupported")
            message = f"unsupported Content-Type {media or '(none)'!r}: use {PROTOBUF} or {JSON}"
            return _response(_Answer(415, _status(code_pb2.INVALID_ARGUMENT, message), close=True), True)
        encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            self.count("unsupported")
            message = f"unsupported Content-Encoding {encoding!r}: use gzip"
            return _response(_Answer(415, _status(code_pb2.INVALID_ARGUMENT, message), close=True), json_out)
        try:  # a body slot: at most ``workers`` bodies in memory; the others wait unread (TCP back-pressure)
            if self._body_slots.locked():
                await within(self._body_slots.acquire(), self.config.request_timeout_s)
            else:
                await self._body_slots.acquire()  # free: returns at once
        except asyncio.TimeoutError:
            self.count("refused")
            return _response(_Answer(503, _status(code_pb2.UNAVAILABLE, "server busy"), {"Retry-After": "1"},
                                     close=True), json_out)
        try:
            return _response(await self._read_and_deliver(request, encoding == "gzip", json_out, logs), json_out)
        finally:
            self._body_slots.release()

    async def _read_and_deliver(self, request: web.Request, gzipped: bool, json_out: bool,
                                logs: Consumer | None) -> _Answer:
        try:
            body = await read_body(request, self.max_body_bytes, self.config.request_timeout_s)
        except BodyError as exc:
            self.count("too_large" if exc.status == 413 else "invalid")
            return _Answer(exc.status, _status(code_pb2.INVALID_ARGUMENT, exc.message), close=True)
        if not gzipped and len(body) <= INLINE_MAX_BYTES:
            return self._decode_and_deliver(body, gzipped, json_out, logs)
        assert self._server is not None
        return await self._server.run_blocking(self._decode_and_deliver, body, gzipped, json_out, logs)

    # ---------------------------------------------------------------- decode + deliver (loop or worker thread)

    def _decode_and_deliver(self, body: bytes, gzipped: bool, json_out: bool, logs: Consumer | None) -> _Answer:
        try:
            if gzipped:
                body = gunzip(body, self.max_body_bytes)
            # strict; per-span defects tolerated only when that fails. ``raw`` (protobuf only) lets
            # the normaliser's C scanner read the bytes (the repaired ones, when repaired)
            if logs is None:
                decoded = decode_request(body, "json" if json_out else "protobuf")
            else:
                log_request = decode_logs_request(body, encoding="json" if json_out else "protobuf")
        except TooLargeError as exc:
            self.count("too_large")
            return _Answer(413, _status(code_pb2.INVALID_ARGUMENT, exc.message))
        except DecodeError as exc:
            self.count("invalid")
            return _Answer(400, _status(code_pb2.INVALID_ARGUMENT, exc.message))
        if self.stopping:
            self.count("refused")
            return _Answer(503, _status(code_pb2.UNAVAILABLE, "shutting down"))
        try:
            if logs is None:
                admission: Admission = deliver(self.consumer, decoded.request, decoded.raw, decoded.defects)
            else:
                admission = logs(log_request, None if json_out else body)
        except Exception:
            _log.exception("trace consumer failed; answering 500")
            self.count("internal_errors")
            return _Answer(500, _status(code_pb2.INTERNAL, "internal error while processing the request"))
        if not admission.accepted:
            self.count("refused")
            headers = {}
            if admission.retry_after_s is not None:
                headers["Retry-After"] = str(max(1, math.ceil(admission.retry_after_s)))
            code = code_pb2.RESOURCE_EXHAUSTED if admission.retry_after_s is not None else code_pb2.UNAVAILABLE
            return _Answer(503, _status(code, admission.error_message or "not accepting data"), headers)
        response, partial = export_response(admission, logs is not None)
        if partial:
            self.count("accepted", "partial")
        else:
            self.count("accepted")
        return _Answer(200, response)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _status(code: int, message: str) -> Any:
    return status_pb2.Status(code=code, message=message)


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)


def _response(answer: _Answer, json_out: bool) -> web.Response:
    """The answer in the request's encoding (JSON when its own type was unsupported)."""
    if json_out:
        body = json_format.MessageToJson(answer.message, indent=None).encode()
        response = web.Response(status=answer.status, body=body, content_type=JSON, headers=answer.headers)
    else:
        response = web.Response(status=answer.status, body=answer.message.SerializeToString(), content_type=PROTOBUF,
                                headers=answer.headers)
    if answer.close:
        response.force_close()
    return response
