"""What pricing costs per call, against baselines measured in the same run.

    python bench/pricing_overhead.py [--rounds 5] [--spans 100000]

(1) The processor's normaliser over the ``processor_throughput`` payload (100 000 spans; about
    three in eight are chat spans with tokens but no cost, which enrichment prices), with cost
    enrichment off (baseline) and on, interleaved round by round; best round of each. The
    difference is what pricing adds per span.
(2) One call's cost, per call: ``genai_prices.calc_price`` (what a naive integration would call
    per span), ``PricingTable.cost_usd`` (the instrumentation's call: validation, the LRU quote
    cache, the rates), and ``Quote.cost_usd`` (the normaliser's, after its own dict lookup).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import time
import timeit
import warnings
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gensight.pricing import PricingTable
from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser


def _payload(n_spans: int) -> list[tuple[ExportTraceServiceRequest, bytes]]:
    spec = importlib.util.spec_from_file_location("pt", Path(__file__).with_name("processor_throughput.py"))
    assert spec is not None and spec.loader is not None
    pt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pt)
    out = []
    for raw in pt.build_payload(n_spans, 2048, interval_ms=1.0):
        req = ExportTraceServiceRequest()
        req.ParseFromString(raw)
        out.append((req, raw))
    return out


def _normalise_s(normaliser: Normaliser, payload: list[tuple[ExportTraceServiceRequest, bytes]]) -> float:
    t = time.process_time()
    for req, raw in payload:
        normaliser.normalise(req, raw)
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--spans", type=int, default=100_000)
    args = ap.parse_args()

    table = PricingTable.load()
    payload = _payload(args.spans)
    off = Normaliser(NormaliseConfig(enrich_cost=False), table, b"k")
    on = Normaliser(NormaliseConfig(), table, b"k")
    enriched = sum(r.cost_enriched for req, raw in payload for r in on.normalise(req, raw).records)
    best_off = best_on = float("inf")
    for _ in range(args.rounds):
        best_off = min(best_off, _normalise_s(off, payload))
        best_on = min(best_on, _normalise_s(on, payload))
    n = args.spans
    print(f"(1) normaliser, {n} spans ({enriched} priced by enrichment), best of {args.rounds} interleaved rounds")
    print(f"    enrichment off  {n / best_off / 1e3:7.1f} k spans/s  {best_off / n * 1e9:6.0f} ns/span")
    print(f"    enrichment on   {n / best_on / 1e3:7.1f} k spans/s  {best_on / n * 1e9:6.0f} ns/span"
          f"  (on/off time = {best_on / best_off:.3f}; {(best_on - best_off) / max(enriched, 1) * 1e9:.0f} ns"
          " per priced span)")

    from genai_prices import Usage, calc_price

    at = dt.datetime.now(dt.timezone.utc)
    at_ns = time.time_ns()
    quote = table.quote("openai", "gpt-4o-mini")
    assert quote is not None
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024)
    number = 20_000

    def per_call_ns(fn) -> float:
        return min(timeit.repeat(fn, number=number, repeat=args.rounds)) / number * 1e9

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib_ns = min(timeit.repeat(lambda: calc_price(usage, "gpt-4o-mini", provider_id="openai",
                                                      genai_request_timestamp=at),
                                   number=number // 20, repeat=args.rounds)) / (number // 20) * 1e9
    table_ns = per_call_ns(lambda: table.cost_usd("openai", "gpt-4o-mini", 1200, 300, 1024, 0, at_ns=at_ns))
    quote_ns = per_call_ns(lambda: quote.cost_usd(at_ns, 1200, 300, 1024, 0))
    print("(2) one call's cost (gpt-4o-mini, 1200 in / 1024 cached / 300 out), best of rounds, per call")
    print(f"    genai_prices.calc_price  {lib_ns:8.0f} ns")
    print(f"    PricingTable.cost_usd    {table_ns:8.0f} ns  ({lib_ns / table_ns:.0f}x faster)")
    print(f"    Quote.cost_usd           {quote_ns:8.0f} ns  ({lib_ns / quote_ns:.0f}x faster)")


if __name__ == "__main__":
    main()
