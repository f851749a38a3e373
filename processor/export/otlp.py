"""Export stage: OTLP metrics (and alert logs) to any OTLP endpoint, never blocking ingestion.

We build ``ExportMetricsServiceRequest`` / ``ExportLogsServiceRequest`` protobufs ourselves (the
metric builder owns the data model), so the SDK's exporters, which take SDK data objects, do not
fit; we speak OTLP directly. Three modules: ``otlp_settings`` (the ``export`` config section and
its OTEL_EXPORTER_OTLP_* resolution), ``otlp_transport`` (one attempt over gRPC or HTTP) and this
one (the buffered, retrying exporter and ``OtlpSink``, the pipeline's sink).

Interface::

    cfg = ExporterConfig(endpoint=None, protocol=None, ...)   # None = from OTEL_EXPORTER_OTLP_* env
    cfg.validate("export")
    exp = OtlpExporter(cfg, signal="metrics")                 # or "logs" (alerts as log records)
    exp.export(request) -> bool     # enqueue, returns at once; False if dropped (closed / too big)
    exp.force_flush(timeout_s) -> bool
    exp.shutdown(timeout_s) -> bool # flush with a deadline; what is left is dropped and counted
    exp.stats() -> ExporterStats    # sent / retried / dropped / rejected, for self-telemetry
    exp.settings                    # the resolved ExporterSettings (endpoint, protocol, ...)

    sink = OtlpSink(cfg)            # a ``Sink``: metrics to one exporter, logs to a second one

Ownership: ``export()`` takes the request; do not mutate it afterwards.

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
import logging
import random
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from google.protobuf import message as _pb_message

from gensight.processor.export.otlp_settings import GRPC, ExporterConfig, resolve_settings
from gensight.processor.export.otlp_transport import GrpcTransport, HttpTransport, count_items
from gensight.processor.export.sink import Sink, SplitSink

_log = logging.getLogger(__name__)

_DROP_LOG_INTERVAL_S = 10.0


class ExporterStats(NamedTuple):
    sent_requests: int
    sent_items: int
    retries: int  # attempts after the first
    dropped_requests: int  # buffer overflow, non-retryable failure, retry limit, shutdown
    dropped_items: int
    rejected_items: int  # the backend accepted the request but rejected these (partial_success)
    queued_requests: int
    queued_items: int



class OtlpExporter(Sink):
    """One signal's buffered, retrying OTLP exporter (see the module docstring); also a ``Sink``."""

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
        self._transport: GrpcTransport | HttpTransport | None = None
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

    def delivery_stats(self) -> ExporterStats:
        return self.stats()

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

    def _make_transport(self) -> GrpcTransport | HttpTransport:
        if self._transport is None:
            s = self.settings
            if s.protocol == GRPC:
                self._transport = GrpcTransport(s, self.config.initial_backoff_s, self.config.max_backoff_s)
            else:
                self._transport = HttpTransport(s)
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


class OtlpSink(SplitSink):
    """The pipeline's OTLP sink: metrics to an ``OtlpExporter``; alert log records
    (``export_logs``) to a second exporter on the same settings, created on first use."""

    def __init__(self, config: ExporterConfig, env: Mapping[str, str] | None = None) -> None:
        self.metrics: OtlpExporter = OtlpExporter(config, signal="metrics", env=env)
        super().__init__(self.metrics)
        self._config = config
        self._env = env

    def export_logs(self, request: Any) -> bool:
        if self.logs is None:
            self.logs = OtlpExporter(self._config, signal="logs", env=self._env)
        return super().export_logs(request)
