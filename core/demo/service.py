"""One instrumented demo service, run as its own process by ``gensight demo``.

Each service is a separate process, as in production: its own ``service.name`` resource, the
real ``openai`` SDK under Gensight's ``OpenAIInstrumentor``, tool and retrieval spans from the
instrumentation library, and the OTel SDK's ``OTLPSpanExporter`` (gRPC) sending spans to the
in-process ``gensight serve`` receiver of the demo.

The only demo-specific part is time compression: waits and provider latencies are divided by
``speed``, and ``EventTimeSpanExporter`` (``EventTimeLogExporter`` for log records) re-stamps each
finished span in event time before it is exported (see ``gensight.demo.scenario.EventClock``).

Every non-streamed chat answer is judged by a deterministic "concision" judge (:func:`judge_concision`,
from the answer's output tokens alone) and the result recorded with ``record_evaluation`` as a
``gen_ai.evaluation.result`` log record naming the response id: the processor joins it to the call
and exports ``gensight.sli.quality``. The incident (verbose answers) lowers it.

Usage (internal): ``python -m gensight.demo.service --service NAME --seed N --provider-url URL
--otlp-endpoint HOST:PORT``. Once set up (imports take a second or two), the process prints
``ready`` and reads one JSON line from stdin with the shared clock (``wall_base_ns``,
``event_base_ns``, ``speed``, ``end_wall_ns``), so all services start on the same instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from gensight.demo.scenario import (
    EMBEDDING,
    GPT_4O_MINI,
    PROFILES,
    Chat,
    Embed,
    EventClock,
    Retrieve,
    Step,
    Tool,
    next_arrival_gap_s,
    plan_request,
    service_rng,
)

logger = logging.getLogger("gensight.demo.service")

NS_PER_S = 1_000_000_000
WORKERS_PER_SERVICE = 8  # concurrent requests per service
# Span attributes holding durations in seconds that the exporter must scale with the clock.
_DURATION_ATTRIBUTES_S = ("gen_ai.response.time_to_first_chunk",)
CONCISION_EVALUATION = "concision"
CONCISION_FULL_SCALE_TOKENS = 600  # an answer this long scores 0
CONCISION_PASS_SCORE = 0.7
_WORDS = ["order", "delivery", "refund", "invoice", "coupon", "account", "password", "shipping", "warranty", "return", "size", "colour", "price", "stock", "store", "payment", "card", "address", "tracking", "parcel", "discount", "subscription", "upgrade", "plan", "support", "agent"]


class EventTimeSpanExporter(SpanExporter):
    """Re-stamps spans from wall-clock to event time, then hands them to the real exporter.

    Spans are rebuilt through the public ``ReadableSpan`` constructor (not mutated), so the
    wrapped exporter sees ordinary SDK spans.
    """

    def __init__(self, inner: SpanExporter, clock: EventClock | _DeferredClock) -> None:
        self._inner = inner
        self._clock = clock

    def _restamp(self, span: ReadableSpan) -> ReadableSpan:
        clock = self._clock
        attributes: dict[str, Any] = dict(span.attributes or {})
        for key in _DURATION_ATTRIBUTES_S:
            value = attributes.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[key] = clock.event_duration_s(float(value))
        events = [
            Event(e.name, e.attributes, clock.event_ns(e.timestamp) if e.timestamp else None) for e in span.events
        ]
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=attributes,
            events=events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=clock.event_ns(span.start_time) if span.start_time is not None else None,
            end_time=clock.event_ns(span.end_time) if span.end_time is not None else None,
            instrumentation_scope=span.instrumentation_scope,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if isinstance(self._clock, _DeferredClock) and not self._clock.started:
            return SpanExportResult.SUCCESS  # warm-up calls before the demo clock started: dropped
        return self._inner.export([self._restamp(s) for s in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class EventTimeLogExporter(LogRecordExporter):
    """``EventTimeSpanExporter`` for log records (evaluation results): event-time timestamps."""

    def __init__(self, inner: LogRecordExporter, clock: EventClock | _DeferredClock) -> None:
        self._inner = inner
        self._clock = clock

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        import copy
        import dataclasses

        if isinstance(self._clock, _DeferredClock) and not self._clock.started:
            return LogRecordExportResult.SUCCESS
        out = []
        for item in batch:
            record = copy.copy(item.log_record)
            if record.timestamp:
                record.timestamp = self._clock.event_ns(record.timestamp)
            if record.observed_timestamp:
                record.observed_timestamp = self._clock.event_ns(record.observed_timestamp)
            out.append(dataclasses.replace(item, log_record=record))
        return self._inner.export(out)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def judge_concision(output_tokens: int) -> tuple[float, str]:
    """The demo's deterministic judge: shorter answers score higher (1 - tokens / 600, clipped);
    ``pass`` at 0.7 or more. Healthy answers (16-63 tokens) score 0.9-0.97; the incident's
    eight-times-longer answers score far lower."""
    score = round(max(0.0, 1.0 - output_tokens / CONCISION_FULL_SCALE_TOKENS), 3)
    return score, "pass" if score >= CONCISION_PASS_SCORE else "fail"


class _DeferredClock:
    """The exporter's clock, known only once the orchestrator sends the start line."""

    def __init__(self) -> None:
        self._clock: EventClock | None = None

    def set(self, clock: EventClock) -> None:
        self._clock = clock

    @property
    def started(self) -> bool:
        return self._clock is not None

    def __getattr__(self, name: str) -> Any:
        if self._clock is None:
            raise RuntimeError("demo clock not started")
        return getattr(self._clock, name)


def _prompt(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(max(1, words)))


class ServiceRunner:
    """Executes one service's request plans with the real SDK, paced in event time."""

    def __init__(self, service: str, seed: int, clock: EventClock, client: Any) -> None:
        self.service = service
        self.profile = PROFILES[service]
        self.rng = service_rng(seed, service)
        self.clock = clock
        self.client = client
        self.requests = 0
        self.failures = 0
        self._lock = threading.Lock()
        self.stop = threading.Event()  # set: no new requests

    def _sleep_event(self, event_s: float) -> None:
        time.sleep(self.clock.wall_duration_s(event_s))

    def run_until(self, end_wall_ns: int) -> None:
        """Start requests at their (Poisson) arrival times until ``end_wall_ns``; wait for them.

        Requests run concurrently, as users of a real service do: a slow model makes requests
        overlap instead of delaying the arrivals behind them.
        """
        from concurrent.futures import ThreadPoolExecutor

        next_event_ns = self.clock.event_ns(max(time.time_ns(), self.clock.wall_base_ns))
        with ThreadPoolExecutor(max_workers=WORKERS_PER_SERVICE, thread_name_prefix=self.service) as pool:
            while True:
                next_event_ns += int(next_arrival_gap_s(self.profile, self.rng) * NS_PER_S)
                due_wall_ns = self.clock.wall_ns(next_event_ns)
                if due_wall_ns >= end_wall_ns:
                    return
                # plan before executing so the random stream does not depend on call outcomes
                steps = plan_request(self.service, self.rng)
                salt = self.rng.getrandbits(32)
                wait_s = (due_wall_ns - time.time_ns()) / NS_PER_S
                if self.stop.wait(wait_s) if wait_s > 0 else self.stop.is_set():
                    return
                self.requests += 1
                pool.submit(self._request, steps, salt)

    def _request(self, steps: list[Step], salt: int) -> None:
        rng = random.Random(salt)
        for step in steps:
            try:
                self._execute(step, rng)
            except Exception as exc:  # the app handles its own failures; the spans recorded them
                with self._lock:
                    self.failures += 1
                logger.debug("%s: %s failed: %s", self.service, type(step).__name__, exc)
                return

    def _execute(self, step: Step, rng: random.Random) -> None:
        if isinstance(step, Chat):
            messages = [
                {"role": "system", "content": f"You are the {self.service}."},
                {"role": "user", "content": _prompt(rng, step.prompt_words)},
            ]
            kwargs: dict[str, Any] = {"model": step.model, "messages": messages, "max_tokens": step.max_tokens}
            if step.with_tools:
                kwargs["tools"] = [
                    {"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}
                ]
            if step.stream:
                stream = self.client.chat.completions.create(
                    stream=True, stream_options={"include_usage": True}, **kwargs
                )
                for _chunk in stream:
                    pass
            else:
                reply = self.client.chat.completions.create(**kwargs)
                self._judge(reply)
        elif isinstance(step, Embed):
            inputs = [_prompt(rng, step.words_per_input) for _ in range(step.inputs)]
            self.client.embeddings.create(model=step.model, input=inputs)
        elif isinstance(step, Retrieve):
            self._retrieve(step)
        elif isinstance(step, Tool):
            self._tool(step)

    @staticmethod
    def _judge(reply: Any) -> None:
        from gensight.instrumentation import record_evaluation

        usage = getattr(reply, "usage", None)
        if usage is None or not getattr(reply, "id", None):
            return
        score, label = judge_concision(int(usage.completion_tokens or 0))
        record_evaluation(CONCISION_EVALUATION, score=score, label=label, response_id=reply.id)

    def _tool(self, step: Tool) -> None:
        from gensight.instrumentation import tool

        with tool(step.name, call_id=f"call_{self.requests}"):
            self._sleep_event(step.duration_s)
            if step.fails:
                raise TimeoutError(f"{step.name} backend timed out")

    def _retrieve(self, step: Retrieve) -> None:
        from gensight.instrumentation import retriever

        with retriever(step.data_source, top_k=step.top_k) as call:
            self._sleep_event(step.duration_s)
            call.set_documents(ids=[f"doc-{i}" for i in range(len(step.scores))], scores=list(step.scores))


def _stop_on_eof(runner: ServiceRunner) -> None:
    # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered
    # reader's lock aborts the interpreter at exit
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    runner.stop.set()


def warm_up(client: Any) -> None:
    """One call of each kind before the clock starts (imports, connection pool, pricing table),
    so the first measured calls are not slow for reasons no real service would show."""
    from gensight.instrumentation import retriever, tool

    messages = [{"role": "user", "content": "warm up"}]
    client.chat.completions.create(model=GPT_4O_MINI, messages=messages, max_tokens=5)
    for _chunk in client.chat.completions.create(
        model=GPT_4O_MINI, messages=messages, max_tokens=5, stream=True, stream_options={"include_usage": True}
    ):
        pass
    client.embeddings.create(model=EMBEDDING, input=["warm up"])
    with tool("warm_up"):
        pass
    with retriever("warm-up", top_k=1) as call:
        call.set_documents(ids=["d"], scores=[0.5])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gensight.demo.service", description=__doc__)
    p.add_argument("--service", required=True, choices=sorted(PROFILES))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--provider-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:PORT/v1")
    p.add_argument("--otlp-endpoint", required=True, help="OTLP gRPC HOST:PORT of the processor")
    return p


def read_start(line: str) -> tuple[EventClock, int]:
    """Parse the orchestrator's start line: the shared clock and the wall-clock end (ns)."""
    data = json.loads(line)
    clock = EventClock(int(data["wall_base_ns"]), int(data["event_base_ns"]), float(data["speed"]))
    if clock.speed <= 0:
        raise ValueError(f"speed must be > 0, got {clock.speed}")
    return clock, int(data["end_wall_ns"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{args.service}: %(levelname)s %(message)s")

    import openai
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from gensight.instrumentation import configure
    from gensight.instrumentation.openai import OpenAIInstrumentor

    clock = _DeferredClock()
    resource = Resource.create(
        {"service.name": args.service, "service.namespace": "gensight-demo", "deployment.environment.name": "demo"}
    )
    tracer_provider = TracerProvider(resource=resource)
    exporter = EventTimeSpanExporter(OTLPSpanExporter(endpoint=args.otlp_endpoint, insecure=True), clock)
    # a short delay keeps event-time lateness small: 100 ms wall is speed x 100 ms of event time
    tracer_provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=8192, schedule_delay_millis=100, max_export_batch_size=1024)
    )
    logger_provider = LoggerProvider(resource=resource)  # evaluation results (the concision judge)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(
        EventTimeLogExporter(OTLPLogExporter(endpoint=args.otlp_endpoint, insecure=True), clock),
        schedule_delay_millis=100, max_export_batch_size=1024))
    meter_provider = NoOpMeterProvider()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    # tool / retriever spans, evaluation log records
    configure(tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider)
    client = openai.OpenAI(base_url=args.provider_url, api_key="demo-not-a-real-key", max_retries=0, timeout=30.0)
    try:
        warm_up(client)
    except Exception as exc:
        print(f"{args.service}: warm-up call failed: {exc!r}", file=sys.stderr)
        return 1
    tracer_provider.force_flush()  # the warm-up spans are dropped, before the clock starts
    logger_provider.force_flush()
    print("ready", flush=True)
    line = sys.stdin.readline()
    if not line:
        return 0  # the orchestrator went away before starting us
    start_clock, end_wall_ns = read_start(line)
    clock.set(start_clock)
    runner = ServiceRunner(args.service, args.seed, start_clock, client)
    # end-of-file on stdin: the demo stopped us early, or died; finish the requests in flight
    threading.Thread(target=_stop_on_eof, args=(runner,), daemon=True).start()
    try:
        runner.run_until(end_wall_ns)
    except KeyboardInterrupt:
        pass
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()  # flushes the last batch
        logger_provider.shutdown()
        client.close()
    print(f"{args.service}: {runner.requests} requests, {runner.failures} failed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
