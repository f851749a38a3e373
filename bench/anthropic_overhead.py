"""Per-call overhead of the Anthropic instrumentation, against baselines measured in the same run.

    python bench/anthropic_overhead.py [--calls 1000] [--rounds 5]

Same process, same in-memory transport (``httpx2.MockTransport`` answering a fixed Message), same
SDK TracerProvider (BatchSpanProcessor into a discarding exporter) and MeterProvider.
Configurations, interleaved round by round so machine noise hits all alike:

  (a) uninstrumented, the SDK's own tracing off (``open_telemetry=False``)
  (b) the SDK's own tracing only (``anthropic.messages.create`` spans, no metrics, no cost):
      what an app gets for free
  (c) Gensight's AnthropicInstrumentor, SDK tracing on (the default): our span + 4 metric
      measurements + cost, the SDK's span folded into ours (pass-through tracer)
  (d) Gensight with the SDK's tracing off

Reports process CPU µs/call (best round: noise only adds time), the added µs over (a), and the
added cost of (c) relative to (b)'s.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import anthropic
import httpx2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from gensight.instrumentation.anthropic import AnthropicInstrumentor

MODEL = "claude-haiku-4-5"
MESSAGE = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": MODEL,
    "content": [{"type": "text", "text": "Hello there."}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 3, "cache_creation_input_tokens": 0,
              "cache_read_input_tokens": 0},
}).encode()
MESSAGES = [{"role": "user", "content": "Say hello."}]


class _Discard(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _client(open_telemetry: Any) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=MESSAGE, headers={"content-type": "application/json"})

    return anthropic.Anthropic(api_key="bench", base_url="http://bench.local", max_retries=0,
                               open_telemetry=open_telemetry,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def _cpu_us_per_call(call: Callable[[], Any], n: int) -> float:
    """µs of process CPU per call: the span processor's worker thread is part of the cost."""
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    sdk_off = _client(False)
    sdk_on = _client({"tracer_provider": tracer_provider})
    instrumentor = AnthropicInstrumentor()

    def plain(client: anthropic.Anthropic) -> Callable[[], Any]:
        return lambda: client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    configs: list[tuple[str, Callable[[], Any], bool]] = [
        ("(a) uninstrumented, SDK tracing off", plain(sdk_off), False),
        ("(b) SDK's own tracing only", plain(sdk_on), False),
        ("(c) Gensight, SDK tracing folded in", plain(sdk_on), True),
        ("(d) Gensight, SDK tracing off", plain(sdk_off), True),
    ]
    best: dict[str, float] = {name: float("inf") for name, *_ in configs}
    for call, _ in ((c, i) for _, c, i in configs):  # warm up every path once
        call()
    for _ in range(args.rounds):
        for name, call, instrumented in configs:
            if instrumented:
                instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            try:
                best[name] = min(best[name], _cpu_us_per_call(call, args.calls))
            finally:
                if instrumented:
                    instrumentor.uninstrument()
    tracer_provider.shutdown()

    base = best[configs[0][0]]
    sdk_added = best[configs[1][0]] - base
    print(f"{args.calls} calls x {args.rounds} rounds, best round, process CPU")
    print(f"{'configuration':40} {'µs/call':>9} {'added µs':>9}")
    for name, *_ in configs:
        print(f"{name:40} {best[name]:9.1f} {best[name] - base:9.1f}")
    ours_added = best[configs[2][0]] - base
    if sdk_added > 0:
        print(f"Gensight (c) added cost / SDK-only (b) added cost: {ours_added / sdk_added:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
