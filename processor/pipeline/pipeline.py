"""The pipeline: normalise → series cap → event-time windows → analysers → metric builder → sinks.

Why this shape: receivers run in their own threads and must answer fast, so they only
*normalise* (cheap, parallel-safe) and offer the records to a bounded queue; everything stateful
(series registry, windows, analysers) runs on ONE worker thread, so analysers need no locks.
Replay uses the very same ``_process`` / ``_close`` code, called synchronously in order, with no
idle advance and a flush at end of input — which is why replay and live give the same numbers.

Extension points for the analytics analysers (SLO, drift, anomaly, cost, alerts):

* ``ANALYSER_FACTORIES``: ``"module:function"`` strings; each function is called once at start as
  ``factory(config: ProcessorConfig, context: PipelineContext) -> list[Analyser]`` and may raise
  ``ConfigError`` to fail start-up. Add your module here.
* Analysers subclass ``points.Analyser``: ``observe(window, records)`` / ``close(window) ->
  [MetricPoint]``, and override the hooks they need (no-op by default): ``expire(keys)`` (series
  forgotten by the cardinality registry: drop their state), ``snapshot()`` (persist state; every
  ``state.snapshot_interval_s`` in live mode and once at the end), ``shutdown()`` (last call,
  after the final flush). All hooks run on the worker thread, never concurrently with observe.
  An object that does not subclass it is adopted once (``points.as_analyser``).
* Sinks subclass ``export.sink.Sink`` (others are adopted once, ``export.sink.as_sink``).
  ``PipelineContext.emit_logs(request)`` hands an OTLP ``ExportLogsServiceRequest`` (alert
  transitions) to every sink's ``export_logs`` (a no-op for metrics-only sinks).
* Evaluation results (``gen_ai.evaluation.result``, see ``pipeline/evaluations.py``) reach
  analysers with an ``observe_evaluations(window, evaluations)`` hook, joined to their call and
  grouped by the evaluation's own event-time window (before that window's ``close``).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import methodcaller
from pathlib import Path
from typing import Any

from gensight.pricing import PricingTable
from gensight.privacy import hash_key_from_env
from gensight.processor.analyse.experiments import experiment_attributes
from gensight.processor.config import ProcessorConfig
from gensight.processor.export.metric_builder import build_request, self_service_name
from gensight.processor.export.sink import Sink, as_sink
from gensight.processor.normalise.evaluations import evaluations_from_logs, evaluations_from_spans
from gensight.processor.normalise.normaliser import Normaliser
from gensight.processor.pipeline.evaluations import EvaluationBatch, EvaluationJoin
from gensight.processor.pipeline.queue import BoundedQueue
from gensight.processor.pipeline.series import SeriesRegistry
from gensight.processor.pipeline.windows import WindowClock
from gensight.processor.points import GAUGE, SUM, Analyser, MetricPoint, Window, as_analyser
from gensight.processor.receive.admission import Admission, Defects, count_spans
from gensight.processor.records import CallRecord

logger = logging.getLogger(__name__)

ANALYSER_FACTORIES: list[str] = [
    "gensight.processor.analyse.sli:build",
    "gensight.processor.analyse.analytics:build",
    "gensight.processor.analyse.content_checks:build",
    "gensight.processor.analyse.quality:build",
]

PROCESSOR_SPANS = "gensight.processor.spans"
PROCESSOR_SERIES = "gensight.processor.series"
PROCESSOR_VALUES_DROPPED = "gensight.processor.values_dropped"
PROCESSOR_VALUES_REPAIRED = "gensight.processor.values_repaired"
OUTCOMES = ("accepted", "refused", "late", "dropped", "skipped")
RETRY_AFTER_S = 1.0
MAX_POINTS_PER_REQUEST = 2000
# Queued record lists the worker takes at once when it is behind: analysers pay a per-call,
# per-series cost, so one observe over several requests' records is cheaper than one per request.
# Bounded by the queue's own bounds; live results depend on request boundaries no more than before
# (the watermark moves between batches, and allowed lateness absorbs arrival order anyway).
WORKER_BATCH_ITEMS = 16


@dataclass
class PipelineContext:
    """What analyser factories get besides the config."""

    config: ProcessorConfig
    live: bool
    state_dir: Path | None
    pricing: PricingTable | None
    hash_key: bytes
    emit_logs: Callable[[Any], None] = field(default=lambda request: None)


def build_analysers(config: ProcessorConfig, context: PipelineContext) -> list[Analyser]:
    """Every analyser of every registered factory, in ``ANALYSER_FACTORIES`` order."""
    analysers: list[Analyser] = []
    for spec in ANALYSER_FACTORIES:
        module_name, _, func_name = spec.partition(":")
        factory = getattr(importlib.import_module(module_name), func_name)
        analysers.extend(factory(config, context))
    return analysers


class Pipeline:
    def __init__(
        self,
        config: ProcessorConfig,
        sinks: Sequence[Any] = (),
        *,
        live: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        analysers: Sequence[Any] | None = None,
        pricing: PricingTable | None = None,
        hash_key: bytes | None = None,
    ):
        self.config = config
        self.live = live
        self.sinks: list[Sink] = [as_sink(s) for s in sinks]
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        n = config.normalise
        if pricing is None and n.enrich_cost:
            pricing = PricingTable.load(n.pricing_file)
            pricing.library()  # load genai-prices' data now: serve's tune_gc freezes start-up objects
        key = hash_key if hash_key is not None else hash_key_from_env()
        checker = None
        if config.content_checks.enabled:
            from gensight.processor.analyse.content_checks import ContentChecker

            checker = ContentChecker(config.content_checks)
        # live experiments group by their ``by`` attributes: the normaliser puts them in record.extra
        extra = experiment_attributes(config)
        self.normaliser = Normaliser(replace(n, extra_attributes=extra) if extra else n, pricing, key, checker)
        # evaluation results joined to the calls they judge (None: evaluations.enabled is false)
        self.evaluations = EvaluationJoin(config.evaluations) if config.evaluations.enabled else None
        self.series = SeriesRegistry(config.series)
        p = config.pipeline
        self.windows = WindowClock(
            p, live=live, monotonic=monotonic, wall_ns=wall_ns if p.max_future_skew_s is not None else None,
        )
        self.context = PipelineContext(
            config, live, Path(config.state.dir) if config.state.dir else None, pricing, key, self._emit_logs
        )
        built = analysers if analysers is not None else build_analysers(config, self.context)
        self.analysers: list[Analyser] = [as_analyser(a) for a in built]
        self.self_service = config.self_telemetry.service_name or self_service_name()
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.values_dropped = 0
        self.values_repaired = 0  # strings with invalid UTF-8 replaced at decode (lenient.py)
        # more cumulative self-telemetry (receivers' request counts, the exporter's delivery counts):
        # callables returning (metric name, unit, attributes, value) rows, read at every window close
        self.self_telemetry_sources: list[Callable[[], Any]] = []
        self.self_telemetry_sources.append(self.normaliser.unpriced.rows)  # gensight.processor.unpriced_calls
        self.analyser_errors = 0
        self.export_errors = 0
        self._lock = threading.Lock()
        self._queue: BoundedQueue[list[CallRecord]] = BoundedQueue(config.queue.max_items, config.queue.max_spans)
        self._worker: threading.Thread | None = None
        self._started_ns = wall_ns()
        self._event_start_ns: int | None = None  # replay: self-telemetry in event time
        self._last_snapshot = monotonic()
        self._closed = False

    # -- receiver side (any thread) ------------------------------------------------------------
    def consume(self, request: Any, raw: bytes | None = None, defects: Defects | None = None) -> Admission:
        """The receivers' consumer: normalise here, queue for the worker, answer at once.
        ``raw``: the request's protobuf bytes, when the receiver has them (see ``Normaliser``);
        ``defects``: spans lenient decoding left out and strings it repaired (``admission.py``)."""
        left_out = defects.rejected_spans if defects is not None else 0
        if not self._queue.has_room():
            # shed load before doing any work: under overload, normalising requests that will be
            # refused anyway would only slow the worker that has to drain the queue
            n = count_spans(request) + left_out
            with self._lock:
                self.counts["refused"] += n
            if self._queue.closed:
                return Admission(False, 0, "processor is shutting down")
            return Admission(False, 0, "processor queue is full", RETRY_AFTER_S)
        try:
            res = self.normaliser.normalise(request, raw)
        except Exception as exc:  # a normaliser bug must not take the receiver down
            logger.exception("gensight: normalising a request failed")
            n = count_spans(request) + left_out
            with self._lock:
                self.counts["dropped"] += n
            return Admission(True, n, f"processor could not normalise the request: {type(exc).__name__}")
        if res.records and self.live and self.config.pipeline.max_future_skew_s is not None:
            res = self._reject_future(res)
        res = self._count_normalised(res, defects)
        if res.records and not self._queue.offer(res.records, len(res.records)):
            with self._lock:
                self.counts["refused"] += len(res.records)
            if self._queue.closed:
                return Admission(False, res.rejected, "processor is shutting down")
            return Admission(False, res.rejected, "processor queue is full", RETRY_AFTER_S)
        if self.evaluations is not None:
            self._offer_span_evaluations(request, raw)
        return Admission(True, res.rejected, res.error_message)

    def _offer_span_evaluations(self, request: Any, raw: bytes | None) -> None:
        """Queue the ``gen_ai.evaluation.result`` span events of an accepted request (after its
        calls, so they usually join at once); a full queue drops them, counted."""
        evals, malformed = evaluations_from_spans(request, raw)
        evals, future = self._drop_future(evals)
        malformed += future
        if evals and not self._queue.offer(EvaluationBatch(evals), len(evals)):
            malformed += len(evals)
        if malformed and self.evaluations is not None:
            with self._lock:
                self.evaluations.malformed += malformed

    def consume_logs(self, request: Any, raw: bytes | None = None, defects: Any = None) -> Admission:
        """The receivers' logs consumer: evaluation results out of OTLP log records, queued for
        the worker. Other log records are accepted and ignored (the processor is no log store)."""
        if self.evaluations is None:
            return Admission(True)
        evals, malformed, _ = evaluations_from_logs(request)
        evals, future = self._drop_future(evals)
        malformed += future
        with self._lock:
            self.evaluations.malformed += malformed
        if evals and not self._queue.offer(EvaluationBatch(evals), len(evals)):
            if self._queue.closed:
                return Admission(False, 0, "processor is shutting down")
            return Admission(False, 0, "processor queue is full", RETRY_AFTER_S)
        return Admission(True, malformed, f"{malformed} malformed evaluation result(s)" if malformed else "")

    def _drop_future(self, evals: list[Any]) -> tuple[list[Any], int]:
        """Live mode: evaluations timed beyond wall clock + ``max_future_skew_s`` are dropped (as
        spans are rejected), so a bad clock cannot open windows far ahead."""
        skew_s = self.config.pipeline.max_future_skew_s
        if not evals or not self.live or skew_s is None:
            return evals, 0
        limit = self._wall_ns() + int(skew_s * 1e9)
        kept = [e for e in evals if e.end_ns <= limit]
        return kept, len(evals) - len(kept)

    def submit_logs(self, request: Any) -> None:
        """Replay: the evaluation results of one logs request, processed synchronously."""
        if self.evaluations is None:
            return
        evals, malformed, _ = evaluations_from_logs(request)
        self.evaluations.malformed += malformed
        self._process([], evals)

    def _reject_future(self, res: Any) -> Any:
        """Live mode: spans ending beyond wall clock + ``max_future_skew_s`` are rejected."""
        skew_s = self.config.pipeline.max_future_skew_s or 0.0
        limit = self._wall_ns() + int(skew_s * 1e9)
        if max(r.end_ns for r in res.records) <= limit:
            return res
        kept = [r for r in res.records if r.end_ns <= limit]
        n = len(res.records) - len(kept)
        message = res.error_message or f"{n} span(s) end more than {skew_s:g} s in the future"
        return res._replace(records=kept, rejected=res.rejected + n, error_message=message)

    # -- replay side (caller's thread) ---------------------------------------------------------
    def submit(self, request: Any, raw: bytes | None = None, defects: Defects | None = None) -> None:
        """Replay: normalise and process one request synchronously (no queue, no refusal)."""
        res = self._count_normalised(self.normaliser.normalise(request, raw), defects)
        evals: list[Any] = []
        if self.evaluations is not None:
            evals, malformed = evaluations_from_spans(request, raw)
            self.evaluations.malformed += malformed
        self._process(res.records, evals)

    def _count_normalised(self, res: Any, defects: Defects | None) -> Any:
        """Counts a normalised request's outcomes, decode-time defects folded in (those spans
        are ``dropped`` like the normaliser's rejections); returns the folded result."""
        if defects is not None:
            rejected, message = defects.fold(res.rejected, res.error_message)
            res = res._replace(rejected=rejected, error_message=message)
        with self._lock:
            self.counts["skipped"] += res.skipped
            self.counts["dropped"] += res.rejected
            self.values_dropped += res.values_dropped
            if defects is not None:
                self.values_repaired += defects.repaired_values
        return res

    # -- worker ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="gensight-pipeline", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        tick_s = self.config.pipeline.idle_tick_s
        while True:
            batch = self._queue.get_batch(WORKER_BATCH_ITEMS, tick_s)
            try:
                if batch:
                    evals = [e for item in batch if type(item) is EvaluationBatch for e in item]
                    if evals:
                        batch = [item for item in batch if type(item) is not EvaluationBatch]
                    self._process(batch[0] if len(batch) == 1 else [r for records in batch for r in records], evals)
                elif self._queue.drained:
                    return
                else:
                    self.tick()
                self._maybe_snapshot()
            except Exception:  # never let the worker die: count, log, go on
                logger.exception("gensight: pipeline worker error")
                self.analyser_errors += 1

    def tick(self) -> None:
        """Live mode: close windows the idle-advanced watermark has passed."""
        self._close(self.windows.advance())

    def _process(self, records: list[CallRecord], evaluations: Sequence[Any] = ()) -> None:
        joined: list[Any] = []
        if records:
            records = self.series.admit(records)
            late_before = self.windows.late
            groups = self.windows.assign(records)
            late = self.windows.late - late_before
            with self._lock:
                self.counts["accepted"] += len(records) - late
                self.counts["late"] += late
            wns = self.windows.window_ns
            if self._event_start_ns is None and groups:
                self._event_start_ns = min(groups)
            for start in sorted(groups):
                window = Window(start, start + wns)
                recs = groups[start]
                for a in self.analysers:
                    try:
                        a.observe(window, recs)
                    except Exception:
                        self._analyser_failed(a, "observe")
            if self.evaluations is not None:
                joined = self.evaluations.add_calls(records)
        if self.evaluations is not None:
            if evaluations:
                joined.extend(self.evaluations.join(evaluations))
            if joined:
                self._observe_evaluations(joined)
            self.evaluations.expire(self.windows.watermark_ns)
        self._close(self.windows.advance())

    def _observe_evaluations(self, joined: list[Any]) -> None:
        """Joined evaluations into their own event-time windows (late ones counted, left out)."""
        late_before = self.windows.late
        groups = self.windows.assign(joined)
        late = self.windows.late - late_before
        self.windows.late = late_before  # the span counters' "late" is about spans only
        assert self.evaluations is not None
        self.evaluations.counted(len(joined) - late, late)
        wns = self.windows.window_ns
        for start in sorted(groups):
            window = Window(start, start + wns)
            for a in self.analysers:
                hook = getattr(a, "observe_evaluations", None)
                if hook is not None:
                    try:
                        hook(window, groups[start])
                    except Exception:
                        self._analyser_failed(a, "observe_evaluations")

    def _close(self, windows: list[Window]) -> None:
        if not windows:
            return
        points: list[MetricPoint] = []
        for w in windows:
            for a in self.analysers:
                try:
                    points.extend(a.close(w))
                except Exception:
                    self._analyser_failed(a, "close")
        expired = self.series.expire(self.windows.watermark_ns)
        if expired:
            self._each_analyser("expire", lambda a: a.expire(expired))
        points.extend(self.self_points(windows[-1].end_ns))
        # one export request per MAX_POINTS_PER_REQUEST points: a single request with every
        # series could exceed the 4 MiB a Collector's OTLP/gRPC receiver accepts by default
        for i in range(0, len(points), MAX_POINTS_PER_REQUEST):
            self._export(build_request(points[i:i + MAX_POINTS_PER_REQUEST]))

    def flush(self) -> None:
        """Close every open window now (end of replay; shutdown). Evaluations still waiting for
        their call are unjoined."""
        if self.evaluations is not None:
            self.evaluations.flush()
        self._close(self.windows.flush())

    def self_points(self, event_time_ns: int) -> list[MetricPoint]:
        """Self-telemetry. Live: wall-clock times; replay: event time, so output is reproducible."""
        if self.live:
            start, now = self._started_ns, self._wall_ns()
        else:
            start, now = self._event_start_ns or event_time_ns, event_time_ns
        with self._lock:
            counts = dict(self.counts)
            dropped_values = self.values_dropped
            repaired_values = self.values_repaired
        svc = self.self_service
        pts = [
            MetricPoint(PROCESSOR_SPANS, SUM, "{span}", svc, (("outcome", o),), float(counts[o]), start, now)
            for o in OUTCOMES
        ]
        pts.append(MetricPoint(PROCESSOR_VALUES_DROPPED, SUM, "{value}", svc, (), float(dropped_values), start, now))
        pts.append(MetricPoint(PROCESSOR_VALUES_REPAIRED, SUM, "{value}", svc, (), float(repaired_values), start, now))
        pts.append(MetricPoint(PROCESSOR_SERIES, GAUGE, "{series}", svc, (), float(len(self.series)), start, now))
        if self.evaluations is not None:
            with self._lock:
                pts.extend(self.evaluations.points(svc, start, now))
        for source in self.self_telemetry_sources:
            try:
                for name, unit, attrs, value in source():
                    pts.append(MetricPoint(name, SUM, unit, svc, attrs, float(value), start, now))
            except Exception:
                logger.exception("gensight: self-telemetry source %r failed", source)
        return pts

    def _export(self, request: Any) -> None:
        for sink in self.sinks:
            try:
                sink.export(request)
            except Exception:
                self.export_errors += 1
                logger.exception("gensight: metrics sink %r failed", sink)

    def _emit_logs(self, request: Any) -> None:
        for sink in self.sinks:
            try:
                sink.export_logs(request)
            except Exception:
                logger.exception("gensight: logs sink %r failed", sink)

    def _analyser_failed(self, analyser: Any, hook: str) -> None:
        self.analyser_errors += 1
        logger.exception("gensight: analyser %s.%s failed", type(analyser).__name__, hook)

    def _maybe_snapshot(self) -> None:
        if not self.live:
            return
        now = self._monotonic()
        if now - self._last_snapshot >= self.config.state.snapshot_interval_s:
            self._last_snapshot = now
            self._each_analyser("snapshot", methodcaller("snapshot"))

    def _each_analyser(self, hook: str, call: Callable[[Analyser], None]) -> None:
        """``call(analyser)`` for every analyser; a failure is counted and logged, never fatal."""
        for a in self.analysers:
            try:
                call(a)
            except Exception:
                self._analyser_failed(a, hook)

    # -- shutdown --------------------------------------------------------------------------------
    def close(self, *, flush: bool = True, timeout_s: float = 30.0) -> None:
        """Stop accepting, drain the queue, flush open windows, run snapshot + shutdown hooks."""
        if self._closed:
            return
        self._closed = True
        self._queue.close()
        if self._worker is not None:
            self._worker.join(timeout_s)
            if self._worker.is_alive():
                logger.warning("gensight: pipeline worker did not drain within %.0f s", timeout_s)
                return
        if flush:
            self.flush()
        self._each_analyser("snapshot", methodcaller("snapshot"))
        self._each_analyser("shutdown", methodcaller("shutdown"))

    def ready(self) -> bool:
        """Readiness for health checks: running and with room in the queue."""
        return not self._closed and self._queue.has_room()

    @property
    def queue_size(self) -> int:
        return len(self._queue)
