"""Detection quality of the analytics: labelled synthetic span streams through `gensight replay`.

Generates several simulated days of GenAI spans (OTLP/JSON lines, gzip) for several services,
models, a tool and a retriever, with diurnal traffic, then injects one incident of each type on
day 2 onwards:

  latency_shift      checkout gpt-4o-mini: durations x3
  error_burst        support gpt-4o-mini: 40 % errors
  token_cost_blowup  search gpt-4o: input tokens x4 (a prompt change), cost follows
  relevance_drop     search retrieval kb: top score 0.80 -> 0.45
  silent_model_swap  checkout claude-3-5-haiku: same model name, but output tokens x2, latency
                     x1.5 and 30 % "length" finish reasons (the provider swapped the model)
  tool_failure_storm support execute_tool crm_lookup: 60 % errors

It runs the stream through `gensight replay --logs-output` with default analytics settings plus
one availability SLO per service, and reads the alert transitions (OTLP log records) back:

* detected / time to detect: the first `firing` alert on the incident's series (or a
  service-level alert — SLO, cost spike, model mix — of its service) at or after the start;
  time in windows = ceil((fire time - start) / window). Target: <= 2 windows.
* false alarms: `firing` alerts not attributable to an incident (same service, from its start to
  6 h after its end — the SLO slow-burn ticket legitimately lasts that long), counted after a
  warm-up (default 2 h: drift references and anomaly history are being learnt), per series per
  simulated day. Target: <= 1.

    python bench/detection.py [--days 3] [--rate 20] [--seed 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

MIN_NS = 60 * 10**9
DAY_NS = 1440 * MIN_NS
T0_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


class Series(NamedTuple):
    service: str
    kind: str  # chat | retrieval | execute_tool
    provider: str
    target: str
    latency_s: float  # median
    in_tokens: int
    out_tokens: int
    price_in: float  # USD per token
    price_out: float
    error_p: float


SERIES = [
    Series("checkout", "chat", "openai", "gpt-4o-mini", 0.9, 600, 150, 0.15e-6, 0.6e-6, 0.005),
    Series("checkout", "chat", "anthropic", "claude-3-5-haiku", 1.2, 700, 180, 0.8e-6, 4e-6, 0.005),
    Series("search", "chat", "openai", "gpt-4o", 1.8, 1500, 250, 2.5e-6, 10e-6, 0.005),
    Series("search", "retrieval", "chroma", "kb", 0.08, 0, 0, 0.0, 0.0, 0.002),
    Series("search", "execute_tool", "", "web_search", 0.4, 0, 0, 0.0, 0.0, 0.01),
    Series("support", "chat", "openai", "gpt-4o-mini", 1.0, 800, 200, 0.15e-6, 0.6e-6, 0.005),
    Series("support", "execute_tool", "", "crm_lookup", 0.2, 0, 0, 0.0, 0.0, 0.01),
]


class Incident(NamedTuple):
    type: str
    series: Series
    start_ns: int
    end_ns: int


INCIDENT_TYPES = [
    ("latency_shift", 0),
    ("error_burst", 5),
    ("token_cost_blowup", 2),
    ("relevance_drop", 3),
    ("silent_model_swap", 1),
    ("tool_failure_storm", 6),
]


def plan_incidents(days: int, duration_min: int = 20) -> list[Incident]:
    """One incident of each type, spread over day 2 .. last day, at least 3 h apart."""
    incidents = []
    first_ns = T0_NS + DAY_NS + 2 * 3600 * 10**9
    span_ns = max(1, days - 1) * DAY_NS - 4 * 3600 * 10**9
    step = span_ns // len(INCIDENT_TYPES)
    for i, (name, si) in enumerate(INCIDENT_TYPES):
        start = (first_ns + i * step) // MIN_NS * MIN_NS + 17 * MIN_NS // 2  # mid-window start
        incidents.append(Incident(name, SERIES[si], start, start + duration_min * MIN_NS))
    return incidents


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}}}
    return {"key": key, "value": {"stringValue": value}}


def make_span(rng: random.Random, s: Series, end_ns: int, active: set[str]) -> dict[str, Any]:
    lat = s.latency_s * math.exp(rng.gauss(0, 0.3))
    err_p = s.error_p
    in_tok = int(s.in_tokens * math.exp(rng.gauss(0, 0.25))) if s.in_tokens else 0
    out_tok = int(s.out_tokens * math.exp(rng.gauss(0, 0.3))) if s.out_tokens else 0
    finish = "stop" if rng.random() < 0.95 else "length"
    relevance = min(1.0, max(0.0, rng.gauss(0.80, 0.08)))
    if "latency_shift" in active:
        lat *= 3.0
    if "error_burst" in active or "tool_failure_storm" in active:
        err_p = 0.4 if "error_burst" in active else 0.6
    if "token_cost_blowup" in active:
        in_tok *= 4
    if "relevance_drop" in active:
        relevance = min(1.0, max(0.0, rng.gauss(0.45, 0.1)))
    if "silent_model_swap" in active:
        out_tok *= 2
        lat *= 1.5
        finish = "stop" if rng.random() < 0.7 else "length"
    error = rng.random() < err_p
    attrs = [_kv("gen_ai.operation.name", s.kind)]
    if s.provider:
        attrs.append(_kv("gen_ai.provider.name", s.provider))
    if s.kind == "chat":
        attrs += [_kv("gen_ai.request.model", s.target), _kv("gen_ai.usage.input_tokens", in_tok),
                  _kv("gen_ai.usage.output_tokens", out_tok),
                  _kv("gen_ai.usage.cost", round(in_tok * s.price_in + out_tok * s.price_out, 8)),
                  _kv("gen_ai.response.finish_reasons", [finish])]
        name = f"chat {s.target}"
        kind = 3
    elif s.kind == "retrieval":
        attrs += [_kv("gen_ai.data_source.id", s.target), _kv("gensight.retrieval.top_score", relevance)]
        name, kind = f"retrieval {s.target}", 3
    else:
        attrs.append(_kv("gen_ai.tool.name", s.target))
        name, kind = f"execute_tool {s.target}", 1
    span: dict[str, Any] = {
        "traceId": f"{rng.getrandbits(128):032x}", "spanId": f"{rng.getrandbits(64):016x}", "name": name,
        "kind": kind, "startTimeUnixNano": str(end_ns - int(lat * 1e9)), "endTimeUnixNano": str(end_ns),
        "attributes": attrs,
    }
    if error:
        attrs.append(_kv("error.type", "TimeoutError" if s.kind != "chat" else "RateLimitError"))
        span["status"] = {"code": 2}
    return span


def generate(path: Path, days: int, rate: float, seed: int, incidents: list[Incident]) -> int:
    """Write the stream (one ExportTraceServiceRequest per simulated minute); returns the span count."""
    rng = random.Random(seed)
    n = 0
    with gzip.open(path, "wt", compresslevel=1) as f:
        for m in range(days * 1440):
            t = T0_NS + m * MIN_NS
            diurnal = 1.0 + 0.3 * math.sin(2 * math.pi * (m % 1440) / 1440 - math.pi / 2)
            by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for s in SERIES:
                count = rng.randint(int(rate * diurnal * 0.8), int(rate * diurnal * 1.2))
                for _ in range(count):
                    end = t + rng.randrange(MIN_NS)
                    active = {i.type for i in incidents if i.series == s and i.start_ns <= end < i.end_ns}
                    by_service[s.service].append(make_span(rng, s, end, active))
                    n += 1
            line = {"resourceSpans": [
                {"resource": {"attributes": [_kv("service.name", svc)]},
                 "scopeSpans": [{"scope": {"name": "bench.detection"}, "spans": sorted(spans, key=lambda x: int(x["endTimeUnixNano"]))}]}
                for svc, spans in by_service.items()]}
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    return n


CONFIG = """\
pipeline:
  window_s: 60
analytics:
  slos:
    - {name: checkout-availability, type: availability, target: 0.99, selector: {service: checkout}}
    - {name: search-availability, type: availability, target: 0.99, selector: {service: search}}
    - {name: support-availability, type: availability, target: 0.99, selector: {service: support}}
  budgets:
    - {name: all-services, limit_usd: 100000}
"""

SLO_SERVICE = {"checkout-availability": "checkout", "search-availability": "search", "support-availability": "support"}


class Fired(NamedTuple):
    time_ns: int
    alert: str
    series: str
    service: str


def read_alerts(path: Path) -> list[Fired]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            req = json.loads(line)
            for rl in req.get("resourceLogs", []):
                svc = next((a["value"]["stringValue"] for a in rl["resource"]["attributes"] if a["key"] == "service.name"), "")
                for sl in rl.get("scopeLogs", []):
                    for rec in sl.get("logRecords", []):
                        attrs = {a["key"]: next(iter(a["value"].values())) for a in rec.get("attributes", [])}
                        if attrs.get("gensight.alert.state") == "firing":
                            out.append(Fired(int(rec["timeUnixNano"]), attrs["gensight.alert.name"],
                                             attrs["gensight.alert.series"], svc))
    return out


def _series_match(f: Fired, s: Series) -> bool:
    if f.alert.startswith("slo_"):
        return SLO_SERVICE.get(f.series) == s.service
    if f.alert == "cost_spike":
        return f.series == s.service
    parts = f.series.split("|")
    if len(parts) == 4 and parts[1] == "*":  # service-level model mix
        return parts[0] == s.service
    return len(parts) == 4 and parts[0] == s.service and parts[1] == s.kind and parts[3] == s.target


def evaluate(fired: list[Fired], incidents: list[Incident], days: int, warmup_h: float,
             window_s: float = 60.0) -> dict[str, Any]:
    rows = []
    for inc in incidents:
        hits = sorted((f for f in fired if inc.start_ns <= f.time_ns <= inc.end_ns and _series_match(f, inc.series)),
                      key=lambda f: f.time_ns)
        if hits:
            ttd = math.ceil((hits[0].time_ns - inc.start_ns) / (window_s * 1e9))
            rows.append({"incident": inc.type, "series": "|".join((inc.series.service, inc.series.kind, inc.series.target)),
                         "detected": True, "windows_to_detect": ttd, "by": hits[0].alert})
        else:
            rows.append({"incident": inc.type, "series": f"{inc.series.service}|{inc.series.target}",
                         "detected": False, "windows_to_detect": None, "by": None})
    tail_ns = 6 * 3600 * 10**9
    warm_ns = T0_NS + int(warmup_h * 3600e9)
    false_alarms: dict[str, int] = defaultdict(int)
    for f in fired:
        if f.time_ns < warm_ns:
            continue
        explained = any(inc.start_ns <= f.time_ns <= inc.end_ns + tail_ns and f.service == inc.series.service
                        for inc in incidents)
        if not explained:
            false_alarms[f"{f.alert} {f.series}"] += 1
    clean_days = days - warmup_h / 24
    fa_total = sum(false_alarms.values())
    return {"incidents": rows, "false_alarms": dict(false_alarms), "false_alarms_total": fa_total,
            "false_alarms_per_series_day": fa_total / (len(SERIES) * clean_days),
            "warmup_alerts": sum(1 for f in fired if f.time_ns < warm_ns)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=3, help="simulated days (default 3)")
    ap.add_argument("--rate", type=float, default=20.0, help="calls per minute per series (default 20)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup-h", type=float, default=2.0, help="hours excluded from false-alarm counting")
    ap.add_argument("--keep", metavar="DIR", help="keep the stream, config, metrics and alerts here")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    if args.days < 2:
        ap.error("--days must be at least 2 (day 1 is clean traffic)")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gensight-detection-"))
    work.mkdir(parents=True, exist_ok=True)
    incidents = plan_incidents(args.days)
    t = time.perf_counter()
    spans = generate(work / "spans.jsonl.gz", args.days, args.rate, args.seed, incidents)
    gen_s = time.perf_counter() - t
    (work / "gensight.yaml").write_text(CONFIG)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "gensight", "replay", str(work / "spans.jsonl.gz"), "--config", str(work / "gensight.yaml"),
           "--output", str(work / "metrics.jsonl"), "--logs-output", str(work / "alerts.jsonl")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    replay_s = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    result = evaluate(read_alerts(work / "alerts.jsonl"), incidents, args.days, args.warmup_h)
    result.update(days=args.days, series=len(SERIES), spans=spans, generate_s=round(gen_s, 1),
                  replay_s=round(replay_s, 1), replay_spans_per_s=round(spans / replay_s))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{spans} spans, {args.days} simulated days, {len(SERIES)} series; generate {gen_s:.1f} s, "
              f"replay {replay_s:.1f} s ({spans / replay_s:,.0f} spans/s)")
        print(f"{'incident':20} {'detected':9} {'windows':8} first alert")
        for r in result["incidents"]:
            print(f"{r['incident']:20} {'yes' if r['detected'] else 'NO':9} {r['windows_to_detect'] if r['detected'] else '-':<8} {r['by'] or ''}")
        print(f"false alarms after {args.warmup_h:g} h warm-up: {result['false_alarms_total']} "
              f"= {result['false_alarms_per_series_day']:.3f} per series per simulated day "
              f"(alerts during warm-up: {result['warmup_alerts']})")
        for k, v in sorted(result["false_alarms"].items()):
            print(f"  {v:3d} x {k}")
        ok = all(r["detected"] and r["windows_to_detect"] <= 2 for r in result["incidents"]) and \
            result["false_alarms_per_series_day"] <= 1.0
        print("targets (every incident within 2 windows, <= 1 false alarm/series/day):", "MET" if ok else "NOT MET")
    if not args.keep:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
