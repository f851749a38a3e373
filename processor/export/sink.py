"""The one sink interface: where the pipeline's OTLP requests leave the processor.

Why a base class and not duck typing: ``serve``, ``replay`` and the pipeline used to probe each
sink (``hasattr(sink, "start")``, ``getattr(sink, "export_logs", None)``, the exporter's
``sink.metrics.stats``), so every new sink had to guess which names were looked up. A sink now
subclasses ``Sink`` and overrides what it does; the rest are no-ops:

====================  ============================================================================
``start()``           open sockets/files (``ProcessorServer.start``); default: nothing
``export(request)``   an ``ExportMetricsServiceRequest``; True = accepted (required)
``export_logs(req)``  an ``ExportLogsServiceRequest`` (alert transitions); default: not taken (False)
``force_flush(t)``    deliver what is buffered within ``t`` seconds; default: True
``shutdown(t)``       flush with a deadline and release everything; default: True
``delivery_stats()``  ``ExporterStats`` for self-telemetry, or None when the sink does not count
``port``              the TCP port the sink listens on (scrape endpoints), else 0
====================  ============================================================================

Implementations: ``OtlpSink`` (metrics + logs over OTLP, ``export/otlp.py``),
``PrometheusEndpoint``, ``JsonLinesSink``, ``SplitSink`` (metrics to one sink, logs to another:
``replay --output`` / ``--logs-output``) and the demo's runner. ``as_sink`` adopts an object that does not subclass ``Sink`` (a test's list, an
embedder's callback) once, at construction, so no caller looks a method up by name afterwards.
"""

from __future__ import annotations

from typing import Any


class Sink:
    """Base of every sink; see the module docstring for the contract of each method."""

    @property
    def port(self) -> int:
        return 0

    def start(self) -> None:
        return None

    def export(self, request: Any) -> bool:
        raise NotImplementedError

    def export_logs(self, request: Any) -> bool:
        return False

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        return True

    def delivery_stats(self) -> Any:
        """``ExporterStats`` (sent / dropped / rejected items) when the sink delivers remotely."""
        return None


class SplitSink(Sink):
    """Metrics to one sink, alert log records to another (or nowhere): ``replay --output`` /
    ``--logs-output``, and the OTLP sink's two exporters."""

    def __init__(self, metrics: Sink, logs: Sink | None = None) -> None:
        self.metrics = metrics
        self.logs = logs

    def start(self) -> None:
        self.metrics.start()
        if self.logs is not None:
            self.logs.start()

    def export(self, request: Any) -> bool:
        return self.metrics.export(request)

    def export_logs(self, request: Any) -> bool:
        return self.logs.export(request) if self.logs is not None else False

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        ok = self.metrics.force_flush(timeout_s)
        return (self.logs.force_flush(timeout_s) if self.logs is not None else True) and ok

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        ok = self.metrics.shutdown(timeout_s)
        return (self.logs.shutdown(timeout_s) if self.logs is not None else True) and ok

    def delivery_stats(self) -> Any:
        """The metrics side's counts (``gensight.processor.export.items`` counts data points)."""
        return self.metrics.delivery_stats()


class _AdoptedSink(Sink):
    """An object with ``export(request)`` (and perhaps ``export_logs``) that does not subclass
    ``Sink``: its methods are bound here, once; everything else is the base's no-op."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self._export = target.export
        self._export_logs = getattr(target, "export_logs", None)

    def export(self, request: Any) -> bool:
        return bool(self._export(request))

    def export_logs(self, request: Any) -> bool:
        return bool(self._export_logs(request)) if self._export_logs is not None else False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"


def as_sink(obj: Any) -> Sink:
    """``obj`` itself when it is a ``Sink``, else a metrics-only ``Sink`` around its ``export``."""
    return obj if isinstance(obj, Sink) else _AdoptedSink(obj)
