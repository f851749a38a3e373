"""Experiments: what reading the ``by`` attribute costs the normaliser, and how fast ``compare`` reads.

Same run, same spans (chat spans of two variants, ~15 attributes each), rounds back to back:

(a) ``Normaliser.normalise`` (C scanner) with no extra attributes — the processor without experiments;
(b) the same with ``extra_attributes=("feature_flag.result.variant",)`` — one live experiment;
(c) ``iter_json_lines`` over the spans as an OTLP/JSON lines file — the decode every reader pays;
(d) ``gensight compare``'s reading (``commands.compare.collect``: lenient decode + normalise + evaluation join
    + arms) of that file;
(e) the whole ``compare`` statistics on the collected arms (seconds, not per span; above 10,000 calls
    per arm means take normal approximations);
(f) the same on 5,000 calls per arm (the bootstrap size: 2,000 resamples per mean metric).

Prints spans/s and the ratios b/a (target: close to 1 — the experiment costs little) and d/c.

    python bench/experiments.py [--spans 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gensight.processor.analyse.comparison import compare_arms
from gensight.processor.commands.compare import collect, collect_requests
from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
from gensight.processor.receive.decode import message_to_otlp_json
from gensight.processor.receive.json_lines import iter_json_lines

T0_NS = 1_700_000_040_000_000_000
BATCH = 1000
SMALL_ARM = 5000  # calls per arm for (f)
FLAG = "feature_flag.result.variant"


def requests(n: int, seed: int = 1) -> list[ExportTraceServiceRequest]:
    rng = random.Random(seed)
    out = []
    for first in range(0, n, BATCH):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "checkout"
        ss = rs.scope_spans.add()
        for i in range(first, min(n, first + BATCH)):
            span = ss.spans.add()
            span.trace_id, span.span_id, span.name, span.kind = os.urandom(16), os.urandom(8), "chat", 3
            span.start_time_unix_nano = T0_NS + i * 1_000_000
            span.end_time_unix_nano = span.start_time_unix_nano + int(rng.lognormvariate(-0.2, 0.6) * 1e9)
            variant = "treatment" if i % 2 else "control"
            for key, value in (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"),
                               ("gen_ai.request.model", "gpt-4o-mini"), ("gen_ai.response.model", "gpt-4o-mini"),
                               ("gen_ai.response.id", f"chatcmpl-{i}"), ("server.address", "api.openai.com"),
                               ("feature_flag.key", "summary-model"), (FLAG, variant)):
                a = span.attributes.add()
                a.key, a.value.string_value = key, value
            for key, ivalue in (("gen_ai.usage.input_tokens", rng.randint(100, 1500)),
                                ("gen_ai.usage.output_tokens", rng.randint(10, 400)), ("server.port", 443)):
                a = span.attributes.add()
                a.key, a.value.int_value = key, ivalue
        out.append(req)
    return out


def rate(n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reqs = requests(args.spans)
    raws = [r.SerializeToString() for r in reqs]
    plain = Normaliser(NormaliseConfig(tenant_attributes=()), None, b"k")
    extra = Normaliser(NormaliseConfig(tenant_attributes=(), extra_attributes=(FLAG,)), None, b"k")
    assert plain.accelerated and extra.accelerated, "build the C scanner first (pip install -e .)"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "spans.jsonl")
        with open(path, "w") as f:
            for r in reqs:
                f.write(json.dumps(message_to_otlp_json(r)) + "\n")
        print(f"{args.spans} spans, {os.path.getsize(path) / 1e6:.0f} MB as OTLP/JSON lines")
        small = collect_requests(((r, None) for r in reqs[:2 * SMALL_ARM // BATCH]), FLAG, {}).arms
        print("| round | (a) normalise | (b) + by attribute | b/a | (c) decode file | (d) compare read | d/c "
              "| (e) stats s | (f) stats s, 5 k/arm |")
        print("|---|---|---|---|---|---|---|---|---|")
        ba, dc = [], []
        for k in range(1, args.rounds + 1):
            a = rate(args.spans, lambda: [plain.normalise(r, raw) for r, raw in zip(reqs, raws, strict=True)])
            b = rate(args.spans, lambda: [extra.normalise(r, raw) for r, raw in zip(reqs, raws, strict=True)])
            c = rate(args.spans, lambda: sum(1 for _ in iter_json_lines(path)))
            t = time.perf_counter()
            arms = collect([path], FLAG, {}, progress=False).arms
            d = args.spans / (time.perf_counter() - t)
            t = time.perf_counter()
            compare_arms(FLAG, "control", "treatment", arms["control"], arms["treatment"])
            e = time.perf_counter() - t
            t = time.perf_counter()
            compare_arms(FLAG, "control", "treatment", small["control"], small["treatment"])
            stats_small_s = time.perf_counter() - t
            ba.append(b / a)
            dc.append(d / c)
            print(f"| {k} | {a / 1e3:.0f} k/s | {b / 1e3:.0f} k/s | {b / a:.2f} | {c / 1e3:.0f} k/s | {d / 1e3:.0f} k/s "
                  f"| {d / c:.2f} | {e:.2f} | {stats_small_s:.2f} |")
        print(f"| **median** | | | **{statistics.median(ba):.2f}** | | | **{statistics.median(dc):.2f}** | | |")


if __name__ == "__main__":
    main()
