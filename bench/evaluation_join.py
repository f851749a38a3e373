"""Evaluation join: what indexing every call (by span id and gen_ai.response.id) costs the pipeline,
and what joining evaluation results costs per result.

(a) baseline, measured in the same run: a replay-mode ``Pipeline`` with ``evaluations.enabled:
    false`` over the same serialized GenAI span requests (normalise + windows + every analyser).
(b) the same with evaluations on (the default): every call record indexed in the join index.
(c) (b) plus one ``gen_ai.evaluation.result`` log record per call, joined by response id.

Rounds alternate (a), (b), (c); the best round of each counts. Prints spans/s and b/a, and the
per-evaluation cost of (c) over (b).

    python bench/evaluation_join.py [--requests 20] [--batch 2048] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gensight.processor.config import config_from_mapping
from gensight.processor.pipeline.pipeline import Pipeline
from gensight.processor.server import tune_gc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from otlp_wire import key_value  # noqa: E402  # the suites' OTLP value builder

NS_PER_MS = 1_000_000
T0_NS = 1_700_000_040_000_000_000  # a minute boundary


def trace_request(r: int, batch: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(key_value("service.name", "checkout"))
    spans = rs.scope_spans.add().spans
    for i in range(batch):
        start = T0_NS + (r * batch + i) * NS_PER_MS
        span = spans.add(trace_id=(r * batch + i + 1).to_bytes(16, "big"), span_id=(r * batch + i + 1).to_bytes(8, "big"),
                         name="chat", kind=3, start_time_unix_nano=start, end_time_unix_nano=start + 500 * NS_PER_MS)
        span.attributes.extend([key_value("gen_ai.operation.name", "chat"), key_value("gen_ai.provider.name", "openai"),
                                key_value("gen_ai.request.model", "gpt-4o-mini" if i % 2 else "gpt-4o"),
                                key_value("gen_ai.usage.input_tokens", 100), key_value("gen_ai.usage.output_tokens", 20),
                                key_value("gen_ai.response.id", f"r{r}_{i}")])
    return req


def workload(requests: int, batch: int) -> tuple[list[tuple[ExportTraceServiceRequest, bytes]], list[ExportLogsServiceRequest]]:
    traces, logs = [], []
    for r in range(requests):
        raw = trace_request(r, batch).SerializeToString()
        traces.append((ExportTraceServiceRequest.FromString(raw), raw))
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        rl.resource.attributes.append(key_value("service.name", "judge"))
        records = rl.scope_logs.add().log_records
        for i in range(batch):
            lr = records.add(time_unix_nano=T0_NS + (r * batch + i) * NS_PER_MS + 600 * NS_PER_MS,
                             event_name="gen_ai.evaluation.result")
            lr.attributes.extend([key_value("gen_ai.evaluation.name", "relevance"),
                                  key_value("gen_ai.evaluation.score.value", 0.5 + (i % 50) / 100),
                                  key_value("gen_ai.response.id", f"r{r}_{i}")])
        logs.append(req)
    return traces, logs


def run(traces: list, logs: list, *, enabled: bool, evaluations: bool) -> float:
    pipeline = Pipeline(config_from_mapping({"evaluations": {"enabled": enabled}}), [], live=False)
    t0 = time.perf_counter()
    for (req, raw), log in zip(traces, logs, strict=True):
        pipeline.submit(req, raw)
        if evaluations:
            pipeline.submit_logs(log)
    pipeline.close()
    elapsed = time.perf_counter() - t0
    if evaluations:
        assert pipeline.evaluations is not None and pipeline.evaluations.counts["joined"] > 0
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    tune_gc()  # the collector settings gensight serve / replay run with
    traces, logs = workload(args.requests, args.batch)
    n = args.requests * args.batch
    best = {"a": float("inf"), "b": float("inf"), "c": float("inf")}
    for _ in range(args.rounds):
        best["a"] = min(best["a"], run(traces, logs, enabled=False, evaluations=False))
        best["b"] = min(best["b"], run(traces, logs, enabled=True, evaluations=False))
        best["c"] = min(best["c"], run(traces, logs, enabled=True, evaluations=True))
    print(f"(a) evaluations off:           {n / best['a']:>10,.0f} spans/s")
    print(f"(b) evaluations on (indexing): {n / best['b']:>10,.0f} spans/s   b/a = {best['a'] / best['b']:.2f}")
    print(f"(c) + one evaluation per call: {n / best['c']:>10,.0f} spans/s   "
          f"{(best['c'] - best['b']) / n * 1e6:.1f} µs per evaluation (decode + join + SLIs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
