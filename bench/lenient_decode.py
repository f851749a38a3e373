"""Decode cost: the receivers' lenient entry point on clean input vs. the bare strict parse.

The receivers decode through ``receive/lenient.decode_protobuf`` / ``decode_json``: strict parsing
first, the lenient walk only when that fails. On clean input the entry point must cost what the
strict parse costs. Measured on ``processor_throughput``'s payload, interleaved in the same run:

(s) ``trace_request_from_protobuf`` (the strict parse the receivers called before), and
(l) ``decode_protobuf`` on the same bytes; the ratio l/s should be 1.00 within noise.
(j) the same pair for OTLP/JSON (``trace_request_from_json`` vs ``decode_json``).
(r) for scale, the lenient path proper: each request with one span whose model holds invalid
    UTF-8 (strict fails, the span is repaired, the request re-assembled), relative to (s);
(w) the worst case a sender can force: every span's model invalid (every span walked in Python).

    python bench/lenient_decode.py [--spans 20000] [--batch 2048] [--rounds 7] [--passes 5]

Each round times the strict and the lenient entry alternately, best of ``--passes`` each, so
both see the same cache state and machine load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gensight.processor.receive.decode import (
    message_to_otlp_json,
    trace_request_from_json,
    trace_request_from_protobuf,
)
from gensight.processor.receive.lenient import decode_json, decode_protobuf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processor_throughput import build_payload  # noqa: E402

INVALID = b"\xff\xfe\xc3"


def _time(fn: Callable[[Any], Any], bodies: list[Any]) -> float:
    t0 = time.perf_counter()
    for body in bodies:
        fn(body)
    return time.perf_counter() - t0


def _pair(first: Callable[[Any], Any], second: Callable[[Any], Any], bodies: list[Any], passes: int) -> tuple[float, float]:
    """Best-of-``passes`` times of two decoders, alternating pass by pass (same cache and load)."""
    a = b = float("inf")
    for _ in range(passes):
        a = min(a, _time(first, bodies))
        b = min(b, _time(second, bodies))
    return a, b


def _with_bad_spans(body: bytes, every: bool = False) -> bytes:
    """The request with the model of its first chat span (``every``: of every span) patched to
    invalid UTF-8."""
    req = ExportTraceServiceRequest.FromString(body)
    marker = "\x01" * len(INVALID)  # a control character: in no other string of the payload
    for span in (s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans):
        models = [kv for kv in span.attributes if kv.key == "gen_ai.request.model"]
        if models:
            models[0].value.string_value = marker
            if not every:
                break
    return req.SerializeToString().replace(marker.encode(), INVALID)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--passes", type=int, default=5, help="protobuf passes per round (best counts)")
    args = ap.parse_args()
    payload = build_payload(args.spans, args.batch, interval_ms=1.0)
    jsons = [json.dumps(message_to_otlp_json(ExportTraceServiceRequest.FromString(b))).encode() for b in payload]
    bad = [_with_bad_spans(b) for b in payload]
    worst = [_with_bad_spans(b, every=True) for b in payload]
    assert all(decode_protobuf(b).defects is not None for b in bad + worst)
    print(f"payload: {args.spans} spans in {len(payload)} requests; {args.rounds} rounds, interleaved")
    ratios: dict[str, list[float]] = {"l/s": [], "lj/j": [], "r/s": [], "w/s": []}
    for r in range(args.rounds):
        s, lenient = _pair(trace_request_from_protobuf, decode_protobuf, payload, args.passes)
        j, lj = _pair(trace_request_from_json, decode_json, jsons, 1)
        rep = _time(decode_protobuf, bad)
        every = _time(decode_protobuf, worst)
        ratios["l/s"].append(lenient / s)
        ratios["lj/j"].append(lj / j)
        ratios["r/s"].append(rep / s)
        ratios["w/s"].append(every / s)
        print(f"round {r + 1}: strict protobuf {args.spans / s / 1e3:7.1f} k spans/s | lenient entry {args.spans / lenient / 1e3:7.1f} k/s "
              f"(l/s {lenient / s:.3f}) | strict JSON {args.spans / j / 1e3:6.1f} k/s, lenient entry {args.spans / lj / 1e3:6.1f} k/s "
              f"(lj/j {lj / j:.3f}) | one bad span per request {args.spans / rep / 1e3:6.1f} k/s (r/s {rep / s:.2f}) | "
              f"every span bad {args.spans / every / 1e3:5.1f} k/s (w/s {every / s:.1f})")
    print("median: " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
