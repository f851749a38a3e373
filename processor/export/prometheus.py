"""Optional Prometheus scrape endpoint serving the latest exported metrics (``--prometheus-endpoint``).

It is fed the very ``ExportMetricsServiceRequest`` objects the OTLP exporter sends, so the scrape
path and the OTLP path carry identical data.

Interface::

    cfg = PrometheusConfig(endpoint="127.0.0.1:9464"); cfg.validate("prometheus")
    prom = PrometheusEndpoint(cfg); prom.start(); prom.port
    prom.export(request) -> bool   # a ``Sink`` (export/sink.py), like OtlpSink/JsonLinesSink: update the store
    prom.force_flush(); prom.shutdown(timeout_s)
    PrometheusStore().update(request); .render(openmetrics=False) -> str   # the pure part, no server needed

Naming (a contract -- Grafana dashboards and alert rules are written against it; it matches the
Collector's prometheus / prometheusremotewrite exporters with ``add_metric_suffixes: false`` and
``resource_to_telemetry_conversion: enabled``):

- metric name = OTel name with ``.`` (and any other character outside ``[a-zA-Z0-9_:]``) -> ``_``;
  **no** unit or type suffixes (``gensight.calls`` -> ``gensight_calls``, not ``..._total``). (A
  ``:``, which OTel names never contain, becomes ``_`` in OpenMetrics sample lines: the encoder's.)
- histograms: ``<name>_bucket{le="..."}`` (cumulative), ``<name>_sum``, ``<name>_count``.
- labels: data point attribute keys with ``.`` -> ``_``; every resource attribute becomes a label
  the same way (``service.name`` -> ``service_name``); a data point attribute wins a clash. Keys
  starting with a digit get a ``key_`` prefix.

Types: Gauge -> gauge; monotonic Sum -> ``untyped`` (OpenMetrics: ``unknown``), or ``counter``
when its name already ends in ``_total``; non-monotonic Sum -> gauge; Histogram -> histogram;
Summary -> summary. The text is written by ``prometheus_client`` (export/prometheus_exposition.py),
which names every counter sample ``<name>_total``; a counter named without it can only keep its
name untyped. So ``# TYPE gensight_calls untyped`` (Prometheus' metadata says ``unknown``) while
the samples stay ``gensight_calls{...}``; ``rate()``/``increase()`` work on them all the same.
Delta temporality is accumulated into running totals (Prometheus needs cumulative values);
cumulative values replace the previous value. Exponential histograms cannot be expressed in the
text format and are skipped (counted in ``stats().skipped_points``), as are points of a metric
without a name or whose type clashes with an earlier metric of the same Prometheus name.

Bounded: at most ``max_series`` series (new ones beyond are dropped and counted), and a series not
updated for ``series_ttl_s`` disappears from the output (0 keeps series forever).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from gensight.processor.config_fields import ConfigError, Section
from gensight.processor.endpoint import parse_endpoint
from gensight.processor.export.prometheus_exposition import (
    Family,
    Hist,
    Labels,
    Series,
    Summary,
    TraceExemplar,
    go_float,
)
from gensight.processor.export.prometheus_exposition import render as render_exposition
from gensight.processor.export.sink import Sink
from gensight.processor.receive.http_server import HttpServer, bearer_check
from gensight.processor.receive.tls import AuthConfig, BearerAuthenticator, TlsConfig

_log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_OPENMETRICS = "application/openmetrics-text"
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")
_DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA


def metric_name(otel_name: str) -> str:
    name = _NAME_BAD.sub("_", otel_name)
    return "_" + name if name[:1].isdigit() else name


def label_name(key: str) -> str:
    name = _LABEL_BAD.sub("_", key)
    if name[:1].isdigit():
        return "key_" + name
    return name or "key_"


def _any_to_str(v: AnyValue) -> str:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "int_value":
        return str(v.int_value)
    if kind == "double_value":
        return go_float(v.double_value)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    if kind == "array_value":
        return "[" + ",".join(_any_to_str(x) for x in v.array_value.values) + "]"
    if kind == "kvlist_value":
        return "{" + ",".join(f"{kv.key}:{_any_to_str(kv.value)}" for kv in v.kvlist_value.values) + "}"
    return ""


@dataclass(frozen=True)
class PrometheusConfig(Section):
    endpoint: str | None = None  # HOST:PORT; None = endpoint off
    series_ttl_s: float = 300.0
    max_series: int = 50_000
    workers: int = 2
    tls: TlsConfig | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)

    def validate(self, prefix: str = "prometheus") -> None:
        if self.endpoint is not None:
            parse_endpoint(self.endpoint, f"{prefix}.endpoint")
        if self.series_ttl_s < 0:
            raise ConfigError(f"{prefix}.series_ttl_s: must be >= 0, got {self.series_ttl_s}")
        if self.max_series < 1:
            raise ConfigError(f"{prefix}.max_series: must be >= 1, got {self.max_series}")
        if self.workers < 1:
            raise ConfigError(f"{prefix}.workers: must be >= 1, got {self.workers}")
        if self.tls is not None:
            self.tls.validate(f"{prefix}.tls")
        self.auth.validate(f"{prefix}.auth")


class PrometheusStats(NamedTuple):
    series: int
    dropped_series: int  # new series refused at the max_series cap
    skipped_points: int  # exponential histograms, type clashes, empty points
    updates: int


class PrometheusStore:
    """Latest value per series, rendered on demand as the Prometheus text format (0.0.4) or
    OpenMetrics 1.0."""

    def __init__(self, series_ttl_s: float = 300.0, max_series: int = 50_000) -> None:
        self.series_ttl_s = series_ttl_s
        self.max_series = max_series
        self._lock = threading.Lock()
        self._families: dict[str, Family] = {}
        # (family, labels) -> (int | float | Hist | Summary, last update monotonic)
        self._series: dict[tuple[str, Labels], tuple[Any, float]] = {}
        self._dropped_series = 0
        self._skipped_points = 0
        self._updates = 0
        # the text of the last scrape per format, with the store version it shows: scrapes (every
        # 15 s per scraper) outnumber exports (one per window), and rendering costs ~25 us a series
        self._version = 0
        self._rendered: dict[bool, tuple[int, str]] = {}

    # ------------------------------------------------------------------ update

    def update(self, request: ExportMetricsServiceRequest) -> None:
        now = time.monotonic()
        with self._lock:
            self._updates += 1
            self._version += 1
            for rm in request.resource_metrics:
                resource_labels = {label_name(kv.key): _any_to_str(kv.value) for kv in rm.resource.attributes}
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        self._update_metric(metric, resource_labels, now)

    def _labels(self, resource_labels: dict[str, str], attributes: Any) -> Labels:
        labels = dict(resource_labels)
        for kv in attributes:
            labels[label_name(kv.key)] = _any_to_str(kv.value)
        return tuple(sorted(labels.items()))

    def _family(self, name: str, type_: str, metric: metrics_pb2.Metric) -> bool:
        """Whether points of ``metric`` may go into family ``name`` (a nameless metric or a type
        clash may not: its points are skipped and counted)."""
        if not name:
            return False
        fam = self._families.get(name)
        if fam is None:
            help_ = metric.description or metric.name
            if metric.unit:
                help_ = f"{help_} [{metric.unit}]"
            self._families[name] = Family(type_, help_)
            return True
        return fam.type == type_

    def _put(self, key: tuple[str, Labels], value: Any, now: float) -> bool:
        if key not in self._series and len(self._series) >= self.max_series:
            self._expire(now)
            if len(self._series) >= self.max_series:
                self._dropped_series += 1
                return False
        self._series[key] = (value, now)
        return True

    def _update_metric(self, metric: metrics_pb2.Metric, resource_labels: dict[str, str], now: float) -> None:
        name = metric_name(metric.name)
        kind = metric.WhichOneof("data")
        if kind == "gauge":
            if not self._family(name, "gauge", metric):
                self._skipped_points += len(metric.gauge.data_points)
                return
            for dp in metric.gauge.data_points:
                self._number(name, resource_labels, dp, now, accumulate=False)
        elif kind == "sum":
            s = metric.sum
            type_ = "counter" if s.is_monotonic else "gauge"
            if not self._family(name, type_, metric):
                self._skipped_points += len(s.data_points)
                return
            for dp in s.data_points:
                self._number(name, resource_labels, dp, now, accumulate=s.aggregation_temporality == _DELTA)
        elif kind == "histogram":
            h = metric.histogram
            if not self._family(name, "histogram", metric):
                self._skipped_points += len(h.data_points)
                return
            for dp in h.data_points:
                self._histogram(name, resource_labels, dp, now, accumulate=h.aggregation_temporality == _DELTA)
        elif kind == "summary":
            if not self._family(name, "summary", metric):
                self._skipped_points += len(metric.summary.data_points)
                return
            for sdp in metric.summary.data_points:
                key = (name, self._labels(resource_labels, sdp.attributes))
                quantiles = tuple((q.quantile, q.value) for q in sdp.quantile_values)
                self._put(key, Summary(quantiles, int(sdp.count), sdp.sum), now)
        elif kind == "exponential_histogram":
            self._skipped_points += len(metric.exponential_histogram.data_points)
        # kind None: a metric without data; nothing to do

    def _number(self, name: str, resource_labels: dict[str, str], dp: Any, now: float, accumulate: bool) -> None:
        which = dp.WhichOneof("value")
        if which is None:
            self._skipped_points += 1
            return
        value = float(dp.as_double) if which == "as_double" else int(dp.as_int)
        key = (name, self._labels(resource_labels, dp.attributes))
        if accumulate and key in self._series:
            value = self._series[key][0] + value
        self._put(key, value, now)

    def _histogram(self, name: str, resource_labels: dict[str, str], dp: Any, now: float, accumulate: bool) -> None:
        bounds = tuple(dp.explicit_bounds)
        counts = list(dp.bucket_counts)
        if len(counts) != len(bounds) + 1:
            if counts or bounds:  # malformed: bucket counts must be bounds + 1
                self._skipped_points += 1
                return
            counts = [int(dp.count)]  # no buckets: everything in +Inf
        sum_ = dp.sum if dp.HasField("sum") else None
        exemplars = _exemplars(dp.exemplars)
        key = (name, self._labels(resource_labels, dp.attributes))
        prev = self._series.get(key)
        if accumulate and prev is not None and isinstance(prev[0], Hist) and prev[0].bounds == bounds:
            old = prev[0]
            counts = [a + b for a, b in zip(old.counts, counts, strict=True)]
            count = old.count_value + int(dp.count)
            if sum_ is not None and old.sum_value is not None:
                sum_ = old.sum_value + sum_
            self._put(key, Hist(bounds, counts, count, sum_, exemplars or old.exemplars), now)
        else:
            self._put(key, Hist(bounds, counts, int(dp.count), sum_, exemplars), now)

    def _expire(self, now: float) -> None:
        if self.series_ttl_s <= 0:
            return
        cutoff = now - self.series_ttl_s
        expired = [k for k, (_, t) in self._series.items() if t < cutoff]
        for key in expired:
            del self._series[key]
        if expired:
            self._version += 1

    # ------------------------------------------------------------------ render

    def render(self, openmetrics: bool = False) -> str:
        """The text format (0.0.4), or with ``openmetrics`` the OpenMetrics 1.0 format: the same
        families, names and labels, plus histogram exemplars and the closing ``# EOF``. Written by
        prometheus_client (export/prometheus_exposition.py) from a ``snapshot()``, so a scrape
        holds up the export path only for the copy. Until the next update or expiry, later scrapes
        of the same format get the same text without rendering it again."""
        with self._lock:
            self._expire(time.monotonic())
            version = self._version
            cached = self._rendered.get(openmetrics)
            if cached is not None and cached[0] == version:
                return cached[1]
            families, series = self._copy()
        text = render_exposition(families, series, openmetrics)
        with self._lock:
            if self._version == version:  # no update while rendering: the text is current
                self._rendered[openmetrics] = (version, text)
        return text

    def snapshot(self) -> tuple[dict[str, Family], list[Series]]:
        """The live series (expired ones dropped first) and their families, copied under the lock;
        values are never changed in place (an update stores a new one), so the copy is shallow."""
        with self._lock:
            self._expire(time.monotonic())
            return self._copy()

    def _copy(self) -> tuple[dict[str, Family], list[Series]]:
        return dict(self._families), [(key, value) for key, (value, _) in self._series.items()]

    def stats(self) -> PrometheusStats:
        with self._lock:
            return PrometheusStats(len(self._series), self._dropped_series, self._skipped_points, self._updates)


def _exemplars(pb_exemplars: Any) -> tuple[TraceExemplar, ...]:
    """OTLP exemplars that carry a trace id, as OpenMetrics needs them."""
    out = []
    for e in pb_exemplars:
        if not e.trace_id:
            continue
        value = float(e.as_double) if e.WhichOneof("value") == "as_double" else float(e.as_int)
        out.append(TraceExemplar(value, e.trace_id.hex(), e.span_id.hex(), int(e.time_unix_nano)))
    return tuple(out)


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an ``Accept`` header asks for OpenMetrics (as Prometheus' scraper does by default)."""
    for part in (accept or "").split(","):
        media, *params = (x.strip() for x in part.split(";"))
        if media.lower() == _OPENMETRICS and not any(p.replace(" ", "") in ("q=0", "q=0.0") for p in params):
            return True
    return False


class PrometheusEndpoint(Sink):
    """``GET /metrics`` on the processor's HTTP server (``receive/http_server.py``); also a Sink
    (``export(request)``). Rendering runs on ``workers`` threads: a large store takes long enough
    to render that it would otherwise hold up the event loop."""

    MAX_CONNECTIONS = 18  # scrapers are few (the stdlib server before took 16 waiting + 2 workers)
    MAX_REQUEST_BODY_BYTES = 1024  # a scrape is a GET: no body
    IDLE_TIMEOUT_S = 30.0

    def __init__(self, config: PrometheusConfig, store: PrometheusStore | None = None) -> None:
        self.config = config
        self.store = store or PrometheusStore(config.series_ttl_s, config.max_series)
        self._server: HttpServer | None = None
        self._auth: BearerAuthenticator | None = config.auth.authenticator()

    @property
    def port(self) -> int:
        return self._server.port if self._server else 0

    def start(self) -> None:
        if self.config.endpoint is None:
            raise ConfigError("prometheus.endpoint: not set")
        host, port = parse_endpoint(self.config.endpoint, "prometheus.endpoint")
        server = HttpServer(
            "prometheus", host, port, routes=[web.get("/metrics", self._scrape)], max_connections=self.MAX_CONNECTIONS,
            client_max_size=self.MAX_REQUEST_BODY_BYTES, idle_timeout_s=self.IDLE_TIMEOUT_S,
            ssl_context=self.config.tls.server_ssl_context() if self.config.tls else None,
            workers=self.config.workers, auth=bearer_check(self._auth),
        )
        try:
            server.start()
        except OSError as exc:
            server.shutdown(0)
            raise OSError(f"cannot bind Prometheus endpoint to {self.config.endpoint}: {exc}") from None
        self._server = server
        _log.info("Prometheus scrape endpoint on http://%s:%d/metrics", host, self.port)

    def export(self, request: ExportMetricsServiceRequest) -> bool:
        try:
            self.store.update(request)
        except Exception:  # never let a bad point break the export path
            _log.exception("Prometheus store update failed")
            return False
        return True

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown(timeout_s)
        return True

    async def _scrape(self, request: web.Request) -> web.Response:
        openmetrics = wants_openmetrics(request.headers.get("Accept"))
        server = self._server
        assert server is not None
        text = await server.run_blocking(lambda: self.store.render(openmetrics=openmetrics))
        return web.Response(body=text.encode("utf-8"),
                            headers={"Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE})
