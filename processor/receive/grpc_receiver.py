"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` (and
``...logs.v1.LogsService/Export`` when given a logs consumer: evaluation results arrive as logs).

Interface::

    cfg = GrpcReceiverConfig(endpoint="127.0.0.1:4317"); cfg.validate("receivers.grpc")
    rx = GrpcReceiver(cfg, consumer, ready=lambda: True)   # consumer: see ``admission.py``
    rx = GrpcReceiver(cfg, consumer, logs_consumer=pipeline.consume_logs)  # + LogsService, same rules
    rx.start(); rx.port                                     # the bound port (endpoint port 0 = ephemeral)
    rx.stats() -> GrpcReceiverStats
    rx.stop(grace_s=5.0)                                    # NOT_SERVING, finish in-flight RPCs, then stop

Status mapping (the Collector's rule: bad data is permanent, overload is retryable):

- undecodable request (broken framing) -> ``INVALID_ARGUMENT`` (clients drop it, never retry);
  per-span defects (invalid UTF-8, a span nested past the parser's limit) are tolerated by
  ``lenient.decode_protobuf`` and reported as partial success
- missing/invalid bearer token (auth on) -> ``UNAUTHENTICATED``
- not admitted with a delay -> ``RESOURCE_EXHAUSTED`` carrying ``google.rpc.RetryInfo`` both as
  a status detail (``grpc-status-details-bin``, what Go clients and the Collector read) and as
  trailing metadata ``google.rpc.retryinfo-bin`` (what the Python SDK exporter reads). Without
  RetryInfo spec-following clients would not retry RESOURCE_EXHAUSTED.
- not admitted without a delay (shutting down) -> ``UNAVAILABLE``
- some spans unusable -> OK with ``partial_success`` (rejected_spans, error_message); strings
  repaired but no span lost -> OK with ``partial_success`` (rejected_spans 0, a warning message)
- consumer bug (exception) -> ``INTERNAL``, logged and counted; the server keeps running

We register a *generic* handler that receives raw bytes so that decoding is ours: a stub's
deserializer would turn bad protobuf into an opaque ``INTERNAL`` instead of ``INVALID_ARGUMENT``.
gzip-compressed requests are decompressed by gRPC itself; ``max_recv_msg_size_mib`` bounds the
message (gRPC's default of 4 MiB is too small for Collector batches).

The standard ``grpc.health.v1.Health`` service reports SERVING while running (and ``ready()`` is
true, for ``Check``), NOT_SERVING once stopping. It is exempt from bearer auth, like the
Collector's health_check extension, so orchestrator probes work without a token.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from gensight.processor.config_fields import ConfigError, Section
from gensight.processor.endpoint import parse_endpoint
from gensight.processor.receive.admission import Admission, Consumer, deliver, export_response
from gensight.processor.receive.decode import DecodeError
from gensight.processor.receive.lenient import decode_protobuf
from gensight.processor.receive.logs import ExportLogsServiceResponse, logs_request_from_protobuf
from gensight.processor.receive.tls import AuthConfig, TlsConfig

_log = logging.getLogger(__name__)

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
RETRY_INFO_METADATA_KEY = "google.rpc.retryinfo-bin"
STATUS_DETAILS_METADATA_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class GrpcReceiverConfig(Section):
    endpoint: str = "127.0.0.1:4317"  # bind 0.0.0.0:4317 to accept from other hosts/containers
    max_recv_msg_size_mib: int = 64
    max_workers: int = 8  # handler threads: the pipeline's consumer runs in them
    max_concurrent_rpcs: int = 256  # beyond this gRPC itself answers RESOURCE_EXHAUSTED
    tls: TlsConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)

    def validate(self, prefix: str = "receivers.grpc") -> None:
        parse_endpoint(self.endpoint, f"{prefix}.endpoint")
        if not 1 <= self.max_recv_msg_size_mib <= 2047:  # gRPC lengths are int32
            raise ConfigError(f"{prefix}.max_recv_msg_size_mib: must be 1..2047, got {self.max_recv_msg_size_mib}")
        if self.max_workers < 1:
            raise ConfigError(f"{prefix}.max_workers: must be >= 1, got {self.max_workers}")
        if self.max_concurrent_rpcs < 1:
            raise ConfigError(f"{prefix}.max_concurrent_rpcs: must be >= 1, got {self.max_concurrent_rpcs}")
        if self.tls is not None:
            self.tls.validate(f"{prefix}.tls")
        self.auth.validate(f"{prefix}.auth")


class GrpcReceiverStats(NamedTuple):
    requests: int
    accepted: int  # OK answers, including partial successes
    partial: int
    refused: int  # RESOURCE_EXHAUSTED / UNAVAILABLE
    invalid: int  # INVALID_ARGUMENT
    unauthenticated: int
    internal_errors: int


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


# grpc.Status is an abstract interface class; register our NamedTuple as implementing it.
_GrpcStatus = type("_GrpcStatus", (_Status, grpc.Status), {})


def retry_status(message: str, retry_after_s: float) -> Any:
    """A ``grpc.Status`` for RESOURCE_EXHAUSTED with RetryInfo in both places clients look."""
    secs = max(0.0, retry_after_s)
    info = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=int(secs), nanos=int((secs - int(secs)) * 1e9))
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail])
    return _GrpcStatus(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        message,
        (
            (STATUS_DETAILS_METADATA_KEY, status.SerializeToString()),
            (RETRY_INFO_METADATA_KEY, info.SerializeToString()),
        ),
    )


class _ReadinessHealth(health.HealthServicer):
    """Health servicer whose ``Check`` also consults a readiness callback."""

    def __init__(self, ready: Callable[[], bool] | None) -> None:
        super().__init__(experimental_non_blocking=True)
        self._ready = ready

    def Check(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        resp = super().Check(request, context)
        if resp.status == health_pb2.HealthCheckResponse.SERVING and self._ready is not None:
            try:
                ok = self._ready()
            except Exception:  # a broken readiness probe means not ready, never a crash
                ok = False
            if not ok:
                return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)
        return resp


class GrpcReceiver:
    name = "grpc"  # the ``receiver`` attribute of its self-telemetry

    def __init__(self, config: GrpcReceiverConfig, consumer: Consumer, *, ready: Callable[[], bool] | None = None,
                 logs_consumer: Consumer | None = None) -> None:
        self.config = config
        self._consumer = consumer
        self._logs = logs_consumer  # LogsService/Export (evaluation results), when given
        self._auth = config.auth.authenticator()
        self._health = _ReadinessHealth(ready)
        self._server: grpc.Server | None = None
        self._executor: futures.ThreadPoolExecutor | None = None
        self.port = 0
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(GrpcReceiverStats._fields, 0)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        cfg = self.config
        host, port = parse_endpoint(cfg.endpoint, "endpoint")
        max_bytes = cfg.max_recv_msg_size_mib * 1024 * 1024
        self._executor = futures.ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="gensight-grpc")
        server = grpc.server(
            self._executor,
            options=[
                ("grpc.max_receive_message_length", max_bytes),
                ("grpc.so_reuseport", 0),  # never share a port with another process by accident
            ],
            maximum_concurrent_rpcs=cfg.max_concurrent_rpcs,
        )
        handler = grpc.method_handlers_generic_handler(
            TRACE_SERVICE,
            {
                "Export": grpc.unary_unary_rpc_method_handler(
                    self._export,
                    request_deserializer=None,  # raw bytes: decoding errors are ours to report
                    response_serializer=ExportTraceServiceResponse.SerializeToString,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        if self._logs is not None:
            logs_consumer = self._logs
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(LOGS_SERVICE, {
                "Export": grpc.unary_unary_rpc_method_handler(
                    lambda raw, context: self._export(raw, context, logs_consumer), request_deserializer=None,
                    response_serializer=ExportLogsServiceResponse.SerializeToString),
            }),))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if cfg.tls is not None:
                bound = server.add_secure_port(address, cfg.tls.grpc_server_credentials())
            else:
                bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            self._executor.shutdown(wait=False)
            raise OSError(f"cannot bind gRPC receiver to {cfg.endpoint}: {exc}") from None
        if not bound:
            self._executor.shutdown(wait=False)
            raise OSError(f"cannot bind gRPC receiver to {cfg.endpoint}")
        self.port = bound
        server.start()
        self._server = server
        for service in ("", TRACE_SERVICE, *((LOGS_SERVICE,) if self._logs is not None else ())):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        _log.info("OTLP/gRPC receiver listening on %s:%d%s", host, bound, " (TLS)" if cfg.tls else "")

    def stop(self, grace_s: float = 5.0) -> None:
        """NOT_SERVING, refuse new RPCs, let in-flight ones finish within ``grace_s``, then stop."""
        self._health.enter_graceful_shutdown()
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace_s).wait(grace_s + 1.0)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def stats(self) -> GrpcReceiverStats:
        with self._lock:
            return GrpcReceiverStats(**self._counts)

    def _count(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._counts[name] += 1

    # ------------------------------------------------------------------ the RPC

    def _export(self, raw: bytes, context: grpc.ServicerContext, logs: Consumer | None = None) -> Any:
        """TraceService/Export, or LogsService/Export when ``logs`` (its consumer) is given."""
        self._count("requests")
        if self._auth is not None:
            value = None
            for key, val in context.invocation_metadata() or ():
                if key == "authorization":
                    value = val if isinstance(val, str) else val.decode("latin-1")
                    break
            if not self._auth.check(value):
                self._count("unauthenticated")
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        try:
            if logs is None:
                decoded = decode_protobuf(raw)  # strict; per-span defects tolerated only when that fails
            else:
                log_request = logs_request_from_protobuf(raw)
        except DecodeError as exc:
            self._count("invalid")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
        try:
            if logs is None:
                admission: Admission = deliver(self._consumer, decoded.request, decoded.raw, decoded.defects)
            else:
                admission = logs(log_request, raw)
        except Exception:
            _log.exception("trace consumer failed; answering INTERNAL")
            self._count("internal_errors")
            context.abort(grpc.StatusCode.INTERNAL, "internal error while processing the request")
        if not admission.accepted:
            self._count("refused")
            if admission.retry_after_s is not None:
                context.abort_with_status(
                    retry_status(admission.error_message or "processor queue is full", admission.retry_after_s)
                )
            context.abort(grpc.StatusCode.UNAVAILABLE, admission.error_message or "not accepting data")
        response, partial = export_response(admission, logs is not None)
        if partial:
            self._count("accepted", "partial")
        else:
            self._count("accepted")
        return response
