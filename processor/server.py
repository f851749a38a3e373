"""The processor as an object: receivers + pipeline + sinks, startable in-process.

Why apart from the command: ``gensight serve`` (``commands/serve.py``), ``gensight demo`` and the
tests all run the same server; only the command parses flags and installs signal handlers.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from gensight.processor.export.sink import Sink

logger = logging.getLogger("gensight.processor.server")

# Garbage-collector thresholds for the processor process. Every span becomes small tuples, so with
# CPython's defaults (a young-generation pass every 700 container allocations, and full passes over
# the whole heap of analyser state) the collector took a measurable share of the throughput
# (bench/processor_throughput.py: b/a ≈ 0.56 → 0.65). Reference cycles still get collected.
GC_THRESHOLDS = (20_000, 50, 100)


class Receiver(Protocol):
    """What the server needs of a receiver (``GrpcReceiver``, ``HttpReceiver``, any new one):
    ``name`` is the ``receiver`` attribute of ``gensight.processor.requests``; ``stats()`` a
    NamedTuple of request counts by outcome (its ``requests`` field is the total)."""

    name: str

    @property
    def port(self) -> int: ...

    def start(self) -> None: ...

    def stop(self, grace_s: float = 5.0) -> None: ...

    def stats(self) -> NamedTuple: ...


def tune_gc() -> None:
    """Collect once, freeze what start-up allocated (modules, config, pricing: never garbage, so
    full passes need not walk it again), and raise the thresholds. For ``gensight serve`` and
    ``gensight replay`` processes only — a library must not change its host's collector."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def export_configured(config: Any, environ: dict[str, str] | None = None) -> bool:
    """Whether an OTLP metrics endpoint is set (config/flag or the standard env variables)."""
    env = os.environ if environ is None else environ
    return bool(
        config.export.endpoint
        or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


class ProcessorServer:
    """Receivers + pipeline + sinks, startable in-process (tests, ``gensight demo``)."""

    def __init__(self, config: Any, *, sinks: Sequence[Any] | None = None, analysers: Any = None,
                 wall_ns: Any = None):
        """``wall_ns``: the wall clock (``time.time_ns``) — injectable so tests that carry
        fixed span timestamps can pin "now" to them."""
        import time

        from gensight.processor.pipeline.pipeline import Pipeline

        self.config = config
        self.pipeline = Pipeline(config, build_sinks(config) if sinks is None else sinks, live=True,
                                 analysers=analysers, wall_ns=wall_ns or time.time_ns)
        self.sinks: list[Sink] = self.pipeline.sinks  # adopted once by the pipeline (``as_sink``)
        self.receivers: list[Receiver] = []
        self.grpc_port = 0
        self.http_port = 0
        self.prometheus_port = 0
        self.ui_port = 0
        self.ui_url = ""

    def start(self) -> None:
        from gensight.processor.receive.grpc_receiver import GrpcReceiver
        from gensight.processor.ui.server import StatusPage

        self.pipeline.start()
        ready = self.pipeline.ready
        try:
            for sink in self.sinks:
                sink.start()
                if isinstance(sink, StatusPage):
                    self.ui_port, self.ui_url = sink.port, sink.url
                else:
                    self.prometheus_port = self.prometheus_port or sink.port
            if self.config.receivers.grpc is not None:
                grpc_rx = GrpcReceiver(self.config.receivers.grpc, self.pipeline.consume, ready=ready,
                                       logs_consumer=self.pipeline.consume_logs)
                grpc_rx.start()
                self.receivers.append(grpc_rx)
                self.grpc_port = grpc_rx.port
            http_cfg = self.config.receivers.http
            if http_cfg is not None:
                from gensight.processor.receive.http_receiver import HttpReceiver

                http_rx = HttpReceiver(http_cfg, self.pipeline.consume, ready=ready,
                                       logs_consumer=self.pipeline.consume_logs)
                http_rx.start()
                self.receivers.append(http_rx)
                self.http_port = http_rx.port
        except Exception:
            self.stop()
            raise
        self._telemetry_receivers: list[Receiver] = list(self.receivers)  # kept after stop() for the final flush
        self.pipeline.self_telemetry_sources.append(self._ingest_telemetry)

    def _ingest_telemetry(self) -> list[tuple[str, str, tuple, float]]:
        """``gensight.processor.requests`` per receiver and outcome (every request, including the
        ones whose spans could not even be counted: undecodable, too large, unauthenticated) and
        ``gensight.processor.export.items`` per outcome (metric points delivered, dropped when the
        export buffer overflowed or a failure was not retryable, rejected by the backend)."""
        rows: list[tuple[str, str, tuple, float]] = []
        for rx in self._telemetry_receivers:
            for outcome, value in rx.stats()._asdict().items():
                if outcome != "requests":
                    rows.append(("gensight.processor.requests", "{request}", (("receiver", rx.name), ("outcome", outcome)), value))
        for sink in self.sinks:
            s = sink.delivery_stats()
            if s is not None:
                for outcome, value in (("sent", s.sent_items), ("dropped", s.dropped_items), ("rejected", s.rejected_items)):
                    rows.append(("gensight.processor.export.items", "{item}", (("outcome", outcome),), value))
        return rows

    def stop(self, grace_s: float = 5.0) -> None:
        for rx in reversed(self.receivers):
            try:
                rx.stop(grace_s)
            except Exception:
                logger.exception("gensight: stopping receiver %r failed", rx)
        self.receivers.clear()
        self.pipeline.close(flush=True)
        for sink in self.sinks:
            try:
                sink.shutdown()
            except Exception:
                logger.exception("gensight: stopping sink %r failed", sink)


def build_sinks(config: Any) -> list[Sink]:
    """The OTLP metrics (+ alert logs) exporter when an endpoint is configured, and the
    Prometheus scrape endpoint when enabled."""
    from gensight.processor.export.otlp import OtlpSink

    sinks: list[Sink] = []
    if export_configured(config):
        sinks.append(OtlpSink(config.export))
    else:
        logger.warning("gensight serve: no OTLP export endpoint (--export-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT); "
                       "metrics are only served on the Prometheus endpoint, if enabled")
    if config.prometheus.endpoint:
        from gensight.processor.export.prometheus import PrometheusEndpoint

        sinks.append(PrometheusEndpoint(config.prometheus))  # started by ProcessorServer.start
    ui = getattr(config, "ui", None)
    if ui is not None and ui.endpoint:
        from gensight.processor.ui.server import build_status_page

        page = build_status_page(config)
        if page is not None:
            sinks.append(page)  # started by ProcessorServer.start
    return sinks
