"""Two models on the fake provider, tagged with ``variant``, recorded for ``gensight compare``.

    python examples/compare_models.py spans.jsonl          # 600 calls, ~30 s
    gensight compare spans.jsonl --by feature_flag.result.variant --control large --treatment small \
        --split 0.5 --html report.html

Half the calls (at random) go to ``gpt-4o`` (control, "large"), half to ``gpt-4o-mini``
(treatment, "small"); ``with variant("summary-model", arm)`` puts ``feature_flag.key`` /
``feature_flag.result.variant`` on each call's span. The fake provider's incident switch makes the
small model 30 % slower, so the report has a trade-off to show: much cheaper, measurably slower,
no difference in errors. Spans are written as the OpenTelemetry Collector's ``file`` exporter
writes them (one OTLP/JSON ``ExportTraceServiceRequest`` per line), the input ``compare`` and
``replay`` read.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from typing import IO

import openai
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from gensight.fakes.openai import FakeProvider, Incident
from gensight.instrumentation import variant
from gensight.instrumentation.openai import OpenAIInstrumentor
from gensight.processor.receive.decode import message_to_otlp_json

ARMS = (("large", "gpt-4o"), ("small", "gpt-4o-mini"))


class JsonLinesSpanExporter(SpanExporter):
    """One OTLP/JSON trace request per export call, one per line (the Collector ``file`` format)."""

    def __init__(self, path: str):
        self._file: IO[str] = open(path, "w")  # noqa: SIM115 - closed in shutdown()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._file.write(json.dumps(message_to_otlp_json(encode_spans(spans))) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="spans file to write (OTLP/JSON lines)")
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    tracing = TracerProvider()
    tracing.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(args.output)))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracing)
    rng = random.Random(args.seed)
    slower_small = Incident(model="gpt-4o-mini", latency_factor=1.3)
    try:
        with FakeProvider(latency_s=0.02, latency_per_token_s=0.0002, error_rate=0.02, incident=slower_small) as fake:
            client = openai.OpenAI(base_url=fake.base_url, api_key="not-needed", max_retries=0)
            for i in range(args.calls):
                arm, model = rng.choice(ARMS)
                with variant("summary-model", arm):
                    try:
                        client.chat.completions.create(
                            model=model, messages=[{"role": "user", "content": f"Summarise support ticket {i}."}])
                    except openai.APIError:
                        pass  # the fake provider's 2 % errors: recorded on the span, compared as error_rate
            client.close()
    finally:
        instrumentor.uninstrument()
        tracing.shutdown()


if __name__ == "__main__":
    main()
