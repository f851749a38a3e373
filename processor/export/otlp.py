"""Export stage: OTLP metrics (and alert logs) to any OTLP endpoint, never blocking ingestion.

We build ``ExportMetricsServiceRequest`` / ``ExportLogsServiceRequest`` protobufs ourselves (the
metric builder owns the data model), so the SDK's exporters, which take SDK data objects, do not
fit; this module speaks OTLP directly through the generated gRPC stubs or ``urllib``.

Interface::

    cfg = ExporterConfig(endpoint=None, protocol=None, ...)   # None = from OTEL_EXPORTER_OTLP_* env
    cfg.validate("exporter")
    exp = OtlpExporter(cfg, signal="metrics")                 # or "logs" (alerts as log records)
    exp.export(request) -> bool     # enqueue, returns at once; False if dropped (closed / too big)
    exp.force_flush(timeout_s) -> bool
    exp.shutdown(timeout_s) -> bool # flush with a deadline; what is left is dropped and counted
    exp.stats() -> ExporterStats    # sent / retried / dropped / rejected, for self-telemetry
    exp.settings                    # the resolved ExporterSettings (endpoint, protocol, ...)

    sink = JsonLinesSink(path_or_"-")   # same export/force_flush/shutdown; one OTLP/JSON line per request

Ownership: ``export()`` takes the request; do not mutate it afterwards.

Settings resolution (OTLP exporter specification): an explicit config value wins; otherwise the
signal-specific variable (``OTEL_EXPORTER_OTLP_METRICS_*`` / ``OTEL_EXPORTER_OTLP_LOGS_*``), then
the generic ``OTEL_EXPORTER_OTLP_*``, then the default. For HTTP the signal path (``/v1/metrics``,
``/v1/logs``) is appended only to the *generic* endpoint; a signal-specific endpoint is used as is.
An explicit ``endpoint`` with no path (``http://collector:4318``) gets the signal path too, so
``--export-endpoint`` can name a collector by host; with a path it is used as is. The protocol
defaults to ``grpc`` like the Python SDK (the specification's SHOULD is ``http/protobuf``);
``http/json`` is supported too. For gRPC, ``http://`` means plaintext, ``https://`` TLS, and a
bare ``host:port`` follows ``insecure`` (default: TLS).

``build_exporter(section, endpoint=None)`` adapts any config object with the same attribute names
(the processor YAML's ``export`` section) to an ``OtlpExporter``.

Delivery: a bounded buffer (``max_queue_requests`` and ``max_queue_items``, items = data points or
log records) drained by one background thread. When the buffer is full the **oldest** requests are
dropped (and counted): for metrics the newest points matter most (gauges are superseded, dashboards
show "now"), and a backend that comes back should get the recent past, not a stale prefix.
Retries use jittered exponential backoff (``initial_backoff_s`` doubling to ``max_backoff_s``,
x0.8-1.2 jitter) on retryable outcomes only -- gRPC UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
OUT_OF_RANGE, DATA_LOSS, CANCELLED, and RESOURCE_EXHAUSTED only when the server sent RetryInfo;
HTTP 429/502/503/504 and connection errors -- honouring the server's RetryInfo / Retry-After. A
request is retried until delivered, evicted by newer data, ``max_retry_elapsed_s`` passes (if
set), or shutdown's deadline. Anything else is dropped at once, counted and logged.
"""

from __future__ import annotations

import collections
import dataclasses
import email.utils
import gzip
import json
import logging
import os
import random
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from google.protobuf import json_format
from google.protobuf import message as _pb_message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from gensight.processor.receive.decode import message_to_otlp_json

_log = logging.getLogger(__name__)

GRPC = "grpc"
HTTP_PROTOBUF = "http/protobuf"
HTTP_JSON = "http/json"
PROTOCOLS = (GRPC, HTTP_PROTOBUF, HTTP_JSON)
SIGNALS = ("metrics", "logs")
# The specification says SDKs SHOULD default to http/protobuf; the Python SDK's OTLP exporters
# (opentelemetry-distro) default to grpc, and so do we: a bare ``--export-endpoint host:4317``
# reaches a Collector's default gRPC receiver.
DEFAULT_PROTOCOL = GRPC
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_TIMEOUT_S = 10.0
RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})
_RETRYABLE_GRPC_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "DATA_LOSS", "CANCELLED"})
_DROP_LOG_INTERVAL_S = 10.0
_GRPC_METHODS = {
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
_RESPONSES: dict[str, type[_pb_message.Message]] = {
    "metrics": ExportMetricsServiceResponse,
    "logs": ExportLogsServiceResponse,
}


# --------------------------------------------------------------------------- config


@dataclass
class ExporterConfig:
    """Explicit settings; every ``None`` falls back to the OTEL_EXPORTER_OTLP_* environment."""

    endpoint: str | None = None
    protocol: str | None = None  # "grpc" | "http/protobuf" | "http/json"
    headers: dict[str, str] | None = None
    timeout_s: float | None = None  # per attempt
    compression: str | None = None  # "gzip" | "none"
    certificate_file: str | None = None  # CA bundle to trust
    client_certificate_file: str | None = None  # mTLS
    client_key_file: str | None = None
    insecure: bool | None = None  # gRPC only, for endpoints without a scheme
    max_queue_requests: int = 1000
    max_queue_items: int = 1_000_000
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_elapsed_s: float | None = None  # None: keep retrying until delivered, evicted or shutdown

    def validate(self, prefix: str = "exporter", env: Mapping[str, str] | None = None) -> None:
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ValueError(f"{prefix}.protocol: must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.compression is not None and self.compression not in ("gzip", "none"):
            raise ValueError(f"{prefix}.compression: must be 'gzip' or 'none', got {self.compression!r}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"{prefix}.timeout_s: must be > 0, got {self.timeout_s}")
        if self.max_queue_requests < 1:
            raise ValueError(f"{prefix}.max_queue_requests: must be >= 1, got {self.max_queue_requests}")
        if self.max_queue_items < 1:
            raise ValueError(f"{prefix}.max_queue_items: must be >= 1, got {self.max_queue_items}")
        if not 0 < self.initial_backoff_s <= self.max_backoff_s:
            raise ValueError(
                f"{prefix}.initial_backoff_s: must be > 0 and <= max_backoff_s, got {self.initial_backoff_s}"
            )
        if self.max_retry_elapsed_s is not None and self.max_retry_elapsed_s < 0:
            raise ValueError(f"{prefix}.max_retry_elapsed_s: must be >= 0, got {self.max_retry_elapsed_s}")
        if self.endpoint is not None:
            _check_endpoint(self.endpoint, f"{prefix}.endpoint")
        if self.headers is not None:
            for key in self.headers:
                if not key or any(c.isspace() for c in key):
                    raise ValueError(f"{prefix}.headers: invalid header name {key!r}")
        for attr in ("certificate_file", "client_certificate_file", "client_key_file"):
            path = getattr(self, attr)
            if path is not None and not os.access(path, os.R_OK):
                raise ValueError(f"{prefix}.{attr}: file not found or not readable: {path}")
        for signal in SIGNALS:  # env values fail fast too, naming the variable
            resolve_settings(self, signal, env)


class ExporterSettings(NamedTuple):
    """Fully resolved settings for one signal."""

    signal: str
    protocol: str
    endpoint: str  # URL for HTTP; host:port target for gRPC
    headers: dict[str, str]
    timeout_s: float
    compression: str  # "gzip" | "none"
    certificate_file: str | None
    client_certificate_file: str | None
    client_key_file: str | None
    insecure: bool  # gRPC: plaintext


def _check_endpoint(endpoint: str, key: str) -> None:
    if "://" in endpoint:
        parsed = urllib.parse.urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"{key}: expected http(s)://host:port[/path] or host:port, got {endpoint!r}")
    elif ":" not in endpoint:
        raise ValueError(f"{key}: expected http(s)://host:port[/path] or host:port, got {endpoint!r}")


def _env(env: Mapping[str, str], signal: str, suffix: str) -> tuple[str | None, str]:
    """(value, variable name) from the signal-specific variable, else the generic one."""
    specific = f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"
    generic = f"OTEL_EXPORTER_OTLP_{suffix}"
    value = env.get(specific)
    if value is not None and value.strip():
        return value.strip(), specific
    value = env.get(generic)
    if value is not None and value.strip():
        return value.strip(), generic
    return None, generic


def parse_headers(value: str, key: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` with URL-encoded values (the OTEL_EXPORTER_OTLP_HEADERS format)."""
    headers: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, val = part.partition("=")
        name = urllib.parse.unquote(name).strip()
        if not sep or not name:
            raise ValueError(f"{key}: invalid header entry {part.strip()!r} (expected key=value)")
        headers[name] = urllib.parse.unquote(val).strip()
    return headers


def _parse_bool(value: str, key: str) -> bool:
    low = value.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ValueError(f"{key}: expected true or false, got {value!r}")


def _join_signal_path(base: str, signal: str) -> str:
    return base.rstrip("/") + f"/v1/{signal}"


def resolve_settings(config: ExporterConfig, signal: str, env: Mapping[str, str] | None = None) -> ExporterSettings:
    """Apply explicit > signal env > generic env > default for every setting of one signal."""
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
    env = os.environ if env is None else env

    protocol = config.protocol
    if protocol is None:
        value, var = _env(env, signal, "PROTOCOL")
        if value is not None and value not in PROTOCOLS:
            raise ValueError(f"{var}: must be one of {', '.join(PROTOCOLS)}, got {value!r}")
        protocol = value or DEFAULT_PROTOCOL

    # endpoint
    specific_var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    if config.endpoint is not None:
        raw, from_generic, var = config.endpoint, False, "endpoint"
        if protocol != GRPC and urllib.parse.urlparse(raw).path in ("", "/"):
            from_generic = True  # a bare host: add the signal path
    elif env.get(specific_var, "").strip():
        raw, from_generic, var = env[specific_var].strip(), False, specific_var
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        raw, from_generic, var = env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip(), True, "OTEL_EXPORTER_OTLP_ENDPOINT"
    else:
        raw = DEFAULT_GRPC_ENDPOINT if protocol == GRPC else DEFAULT_HTTP_ENDPOINT
        from_generic, var = True, "default"
    _check_endpoint(raw, var)

    insecure_value, insecure_var = _env(env, signal, "INSECURE")
    if config.insecure is not None:
        insecure = config.insecure
    elif insecure_value is not None:
        insecure = _parse_bool(insecure_value, insecure_var)
    else:
        insecure = False

    if protocol == GRPC:
        if "://" in raw:
            parsed = urllib.parse.urlparse(raw)
            insecure = parsed.scheme == "http"
            endpoint = parsed.netloc
        else:
            endpoint = raw
    else:
        if "://" not in raw:
            raw = "http://" + raw
        endpoint = _join_signal_path(raw, signal) if from_generic else raw

    if config.headers is not None:
        headers = dict(config.headers)
    else:
        value, var = _env(env, signal, "HEADERS")
        headers = parse_headers(value, var) if value else {}

    if config.timeout_s is not None:
        timeout_s = float(config.timeout_s)
    else:
        value, var = _env(env, signal, "TIMEOUT")
        if value is None:
            timeout_s = DEFAULT_TIMEOUT_S
        else:
            try:
                timeout_s = float(value) / 1000.0
            except ValueError:
                raise ValueError(f"{var}: expected milliseconds, got {value!r}") from None
            if not timeout_s > 0:
                raise ValueError(f"{var}: must be > 0 ms, got {value!r}")

    if config.compression is not None:
        compression = config.compression
    else:
        value, var = _env(env, signal, "COMPRESSION")
        compression = (value or "none").lower()
        if compression not in ("gzip", "none"):
            raise ValueError(f"{var}: must be gzip or none, got {value!r}")

    def _file(explicit: str | None, suffix: str) -> str | None:
        if explicit is not None:
            return explicit
        value, var = _env(env, signal, suffix)
        if value is not None and not os.access(value, os.R_OK):
            raise ValueError(f"{var}: file not found or not readable: {value}")
        return value

    return ExporterSettings(
        signal=signal,
        protocol=protocol,
        endpoint=endpoint,
        headers=headers,
        timeout_s=timeout_s,
        compression=compression,
        certificate_file=_file(config.certificate_file, "CERTIFICATE"),
        client_certificate_file=_file(config.client_certificate_file, "CLIENT_CERTIFICATE"),
        client_key_file=_file(config.client_key_file, "CLIENT_KEY"),
        insecure=insecure,
    )


# --------------------------------------------------------------------------- transports


class _Outcome(NamedTuple):
    ok: bool
    retryable: bool = False
    retry_after_s: float | None = None
    rejected_items: int = 0
    detail: str = ""


def count_items(request: _pb_message.Message) -> int:
    """Data points in a metrics request, log records in a logs request."""
    if isinstance(request, ExportMetricsServiceRequest):
        n = 0
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind is not None:
                        n += len(getattr(m, kind).data_points)
        return n
    if isinstance(request, ExportLogsServiceRequest):
        return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    raise TypeError(f"cannot export {type(request).__name__}")


class _GrpcTransport:
    def __init__(self, s: ExporterSettings, initial_backoff_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        import grpc

        self._grpc = grpc
        self._settings = s
        # the channel's own reconnect backoff (default up to 120 s) would delay delivery long after
        # the backend is back; keep it in step with our retry backoff
        options = [
            ("grpc.initial_reconnect_backoff_ms", max(100, int(initial_backoff_s * 1000))),
            ("grpc.min_reconnect_backoff_ms", max(100, int(initial_backoff_s * 1000))),
            ("grpc.max_reconnect_backoff_ms", max(100, int(max_backoff_s * 1000))),
        ]
        if s.insecure:
            self._channel = grpc.insecure_channel(s.endpoint, options=options)
        else:
            root = key = chain = None
            if s.certificate_file:
                with open(s.certificate_file, "rb") as f:
                    root = f.read()
            if s.client_key_file and s.client_certificate_file:
                with open(s.client_key_file, "rb") as f:
                    key = f.read()
                with open(s.client_certificate_file, "rb") as f:
                    chain = f.read()
            creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)
            self._channel = grpc.secure_channel(s.endpoint, creds, options=options)
        self._response = _RESPONSES[s.signal]
        self._call = self._channel.unary_unary(
            _GRPC_METHODS[s.signal],
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self._response.FromString,
        )
        self._metadata = tuple((k.lower(), v) for k, v in s.headers.items())
        self._compression = grpc.Compression.Gzip if s.compression == "gzip" else None

    def send(self, request: _pb_message.Message) -> _Outcome:
        grpc = self._grpc
        try:
            response = self._call(
                request, timeout=self._settings.timeout_s, metadata=self._metadata, compression=self._compression
            )
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            name = code.name if code is not None else "UNKNOWN"
            delay = _grpc_retry_delay(err)
            retryable = name in _RETRYABLE_GRPC_CODES or (name == "RESOURCE_EXHAUSTED" and delay is not None)
            details = err.details() if hasattr(err, "details") else ""
            return _Outcome(False, retryable, delay, detail=f"gRPC {name}: {details}")
        ps = response.partial_success
        rejected = getattr(ps, "rejected_data_points", 0) or getattr(ps, "rejected_log_records", 0)
        return _Outcome(True, rejected_items=int(rejected), detail=ps.error_message)

    def close(self) -> None:
        self._channel.close()


def _grpc_retry_delay(err: Any) -> float | None:
    """RetryInfo from the status details, or from the ``google.rpc.retryinfo-bin`` trailer."""
    from google.rpc import error_details_pb2, status_pb2

    try:
        trailers = dict(err.trailing_metadata() or ())
    except Exception:
        return None
    info = error_details_pb2.RetryInfo()
    raw = trailers.get("grpc-status-details-bin")
    if raw:
        try:
            status = status_pb2.Status.FromString(raw)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    detail.Unpack(info)
                    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        except _pb_message.DecodeError:
            pass
    raw = trailers.get("google.rpc.retryinfo-bin")
    if raw:
        try:
            info.ParseFromString(raw)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        except _pb_message.DecodeError:
            pass
    return None


class _HttpTransport:
    def __init__(self, s: ExporterSettings) -> None:
        self._settings = s
        self._response = _RESPONSES[s.signal]
        handlers: list[Any] = []
        if s.endpoint.startswith("https://"):
            ctx = ssl.create_default_context(cafile=s.certificate_file)
            if s.client_certificate_file and s.client_key_file:
                ctx.load_cert_chain(s.client_certificate_file, s.client_key_file)
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        self._opener = urllib.request.build_opener(*handlers)
        self._json = s.protocol == HTTP_JSON
        content_type = "application/json" if self._json else "application/x-protobuf"
        self._headers = {"Content-Type": content_type, "User-Agent": "gensight-processor"}
        self._headers.update(s.headers)
        if s.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"

    def send(self, request: _pb_message.Message) -> _Outcome:
        if self._json:
            body = json.dumps(message_to_otlp_json(request), separators=(",", ":")).encode()
        else:
            body = request.SerializeToString()
        if self._settings.compression == "gzip":
            body = gzip.compress(body, compresslevel=5)
        req = urllib.request.Request(self._settings.endpoint, data=body, headers=self._headers, method="POST")
        try:
            with self._opener.open(req, timeout=self._settings.timeout_s) as resp:
                data = resp.read()
        except urllib.error.HTTPError as err:
            retryable = err.code in RETRYABLE_HTTP_STATUSES
            delay = _parse_retry_after(err.headers.get("Retry-After")) if retryable else None
            try:
                err.read()
            except OSError:
                pass
            return _Outcome(False, retryable, delay, detail=f"HTTP {err.code}")
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            return _Outcome(False, True, detail=f"connection error: {err}")
        rejected, message = 0, ""
        if data:
            try:
                if self._json:
                    parsed = self._response()
                    json_format.Parse(data, parsed, ignore_unknown_fields=True)
                else:
                    parsed = self._response.FromString(data)
                ps = parsed.partial_success  # type: ignore[attr-defined]
                rejected = int(getattr(ps, "rejected_data_points", 0) or getattr(ps, "rejected_log_records", 0))
                message = ps.error_message
            except (_pb_message.DecodeError, json_format.ParseError, ValueError):
                pass
        return _Outcome(True, rejected_items=rejected, detail=message)

    def close(self) -> None:
        pass


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- exporter


class ExporterStats(NamedTuple):
    sent_requests: int
    sent_items: int
    retries: int  # attempts after the first
    dropped_requests: int  # buffer overflow, non-retryable failure, retry limit, shutdown
    dropped_items: int
    rejected_items: int  # the backend accepted the request but rejected these (partial_success)
    queued_requests: int
    queued_items: int


class Sink(Protocol):
    """What the pipeline exports to: ``OtlpExporter`` or ``JsonLinesSink``."""

    def export(self, request: Any) -> bool: ...

    def force_flush(self, timeout_s: float = 10.0) -> bool: ...

    def shutdown(self, timeout_s: float = 10.0) -> bool: ...


class OtlpExporter:
    def __init__(self, config: ExporterConfig, signal: str = "metrics", env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.settings = resolve_settings(config, signal, env)
        self._buffer: collections.deque[tuple[_pb_message.Message, int]] = collections.deque()
        self._buffer_items = 0
        self._cond = threading.Condition()
        self._in_flight = False
        self._closing = False
        self._abort = threading.Event()  # shutdown deadline passed: stop retrying
        self._counts = dict.fromkeys(ExporterStats._fields, 0)
        self._last_drop_log = 0.0
        self._transport: _GrpcTransport | _HttpTransport | None = None
        self._thread = threading.Thread(target=self._run, name=f"gensight-export-{signal}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    def export(self, request: _pb_message.Message) -> bool:
        """Buffer ``request`` for delivery; never blocks. False when it was dropped instead."""
        items = count_items(request)
        with self._cond:
            if self._closing:
                self._drop(1, items, "exporter is shut down")
                return False
            cfg = self.config
            if items > cfg.max_queue_items and (self._buffer or self._in_flight):
                self._drop(1, items, f"request of {items} items exceeds max_queue_items")
                return False
            self._buffer.append((request, items))
            self._buffer_items += items
            while len(self._buffer) > 1 and (
                len(self._buffer) > cfg.max_queue_requests or self._buffer_items > cfg.max_queue_items
            ):
                _, old_items = self._buffer.popleft()
                self._buffer_items -= old_items
                self._drop(1, old_items, "export buffer full (oldest dropped)")
            self._cond.notify_all()
            return True

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything buffered so far was delivered or dropped."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._buffer or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Refuse new data, deliver what is buffered until the deadline, drop (and count) the rest."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        flushed = self.force_flush(max(0.0, deadline - time.monotonic()))
        self._abort.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        with self._cond:
            while self._buffer:
                _, items = self._buffer.popleft()
                self._buffer_items -= items
                self._drop(1, items, "not delivered before shutdown deadline")
        return flushed

    def stats(self) -> ExporterStats:
        with self._cond:
            counts = dict(self._counts)
            counts["queued_requests"] = len(self._buffer) + (1 if self._in_flight else 0)
            counts["queued_items"] = self._buffer_items
        return ExporterStats(**counts)

    # ------------------------------------------------------------------ internals

    def _drop(self, requests: int, items: int, reason: str) -> None:
        """Count a drop; caller holds the lock. Logs at most every few seconds."""
        self._counts["dropped_requests"] += requests
        self._counts["dropped_items"] += items
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            _log.warning(
                "dropped %d %s item(s) bound for %s: %s (total dropped: %d requests, %d items)",
                items, self.settings.signal, self.settings.endpoint, reason,
                self._counts["dropped_requests"], self._counts["dropped_items"],
            )

    def _make_transport(self) -> _GrpcTransport | _HttpTransport:
        if self._transport is None:
            s = self.settings
            if s.protocol == GRPC:
                self._transport = _GrpcTransport(s, self.config.initial_backoff_s, self.config.max_backoff_s)
            else:
                self._transport = _HttpTransport(s)
        return self._transport

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._buffer and not (self._closing or self._abort.is_set()):
                        self._cond.wait()
                    if not self._buffer or self._abort.is_set():
                        return  # shutdown() counts whatever is left as dropped
                    request, items = self._buffer.popleft()
                    self._buffer_items -= items
                    self._in_flight = True
                try:
                    self._deliver(request, items)
                except Exception:  # a bug must not kill the exporter thread
                    _log.exception("unexpected error exporting %s", self.settings.signal)
                    with self._cond:
                        self._drop(1, items, "unexpected error")
                finally:
                    with self._cond:
                        self._in_flight = False
                        self._cond.notify_all()
        finally:
            if self._transport is not None:
                self._transport.close()

    def _deliver(self, request: _pb_message.Message, items: int) -> None:
        cfg = self.config
        started = time.monotonic()
        attempt = 0
        while True:
            outcome = self._make_transport().send(request)
            if outcome.ok:
                with self._cond:
                    self._counts["sent_requests"] += 1
                    self._counts["sent_items"] += items
                    self._counts["rejected_items"] += outcome.rejected_items
                if outcome.rejected_items:
                    _log.warning("backend rejected %d %s item(s): %s", outcome.rejected_items,
                                 self.settings.signal, outcome.detail)
                return
            if not outcome.retryable:
                with self._cond:
                    self._drop(1, items, f"non-retryable: {outcome.detail}")
                return
            backoff = min(cfg.max_backoff_s, cfg.initial_backoff_s * (2 ** min(attempt, 30)))
            delay = outcome.retry_after_s if outcome.retry_after_s is not None else backoff * random.uniform(0.8, 1.2)
            if cfg.max_retry_elapsed_s is not None and time.monotonic() - started + delay > cfg.max_retry_elapsed_s:
                with self._cond:
                    self._drop(1, items, f"gave up after {attempt + 1} attempts: {outcome.detail}")
                return
            _log.debug("export attempt %d failed (%s); retrying in %.2fs", attempt + 1, outcome.detail, delay)
            if self._abort.wait(delay):
                with self._cond:
                    self._drop(1, items, f"shutdown while retrying: {outcome.detail}")
                return
            attempt += 1
            with self._cond:
                self._counts["retries"] += 1


def build_exporter(
    section: Any, *, endpoint: str | None = None, signal: str = "metrics", env: Mapping[str, str] | None = None
) -> OtlpExporter:
    """An ``OtlpExporter`` from ``ExporterConfig`` or any object with the same attribute names.

    ``endpoint`` (e.g. already looked up by the caller) counts as explicit only when it is not
    simply the value of an OTEL_EXPORTER_OTLP_*ENDPOINT variable, so env endpoints keep the
    specification's path rules. Empty headers mean "not set" (the env may provide them).
    """
    env = os.environ if env is None else env
    if isinstance(section, ExporterConfig):
        config = section
    else:
        known = {f: getattr(section, f) for f in ExporterConfig.__dataclass_fields__ if hasattr(section, f)}
        if "headers" in known:
            known["headers"] = dict(known["headers"]) if known["headers"] else None
        config = ExporterConfig(**known)
    if config.endpoint is None and endpoint:
        env_values = {env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"), env.get("OTEL_EXPORTER_OTLP_ENDPOINT")}
        if endpoint not in env_values:
            config = dataclasses.replace(config, endpoint=endpoint)
    config.validate("export", env=env)
    return OtlpExporter(config, signal, env=env)


# --------------------------------------------------------------------------- JSON lines

