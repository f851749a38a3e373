"""Detection quality of the analytics on a harder stream than the tests: `gensight replay`, default config.

Simulates ``--days`` (default 4) of GenAI spans (OTLP/JSON lines, gzip) with a daily traffic cycle
(Poisson arrivals, rate x 0.5 .. x 1.5 over the day) for nine series: busy and quiet chat series
(one at about 2 calls/min), a streamed series with time to first chunk, a retriever, a tool, an
embeddings series that no incident touches, lognormal latencies with a slow tail (1 % of calls x 4)
and isolated single errors (0.5 % base rate). Day 1 is clean; from day 2 on, swept incidents of
30 minutes each (the creep: 6 hours) are injected, at least 12 h apart on the same series:

  errors 2 / 5 / 10 / 40 %            checkout gpt-4o-mini (40 calls/min)
  latency x 1.2 / 1.5 / 2 / 3         checkout claude-3-5-haiku (30/min)
  finish reason length 10 / 30 %      search gpt-4o (30/min; base 1 %)
  input tokens x 1.5 / 3, output x 2  search gpt-4o
  relevance 0.70 / 0.62 / 0.45        search retrieval kb (base 0.80)
  tool failure storm 10 / 30 %        search execute_tool web_search (20/min)
  ttfc x 2 / 3, silent model swap     support gpt-4o-mini, streamed (30/min)
  low-traffic latency x 3             support gpt-4.1 (2 calls/min)
  latency creep x 1 -> x 2 over 6 h   batch gpt-4o-mini (20/min)
  errors 5 / 10 % (busy)              checkout gpt-4.1-mini (120/min)
  tool failure storm 10 / 30 % (busy) search execute_tool vector_lookup (60/min)

For every error incident it also prints the information bound: the full windows any detector needs
on average at the same false-alarm budget (Lorden), from the calls the incident actually had.

It runs the stream through ``gensight replay --logs-output`` with the default analytics settings
(60 s windows, nothing configured) and reads the alert transitions (OTLP log records) back:

* windows to detect: the first ``firing`` alert on the incident's series (or a service-level alert:
  cost spike, model-mix drift, of its service) from the incident's start to its end, in windows
  (``ceil((fire - start) / 60 s)``); for the creep also the latency factor reached by then.
* false alarms: ``firing`` alerts not explained by an incident (same series, or service-level on the
  same service when the incident can cause it: a cost spike only for a cost-changing incident, a
  model-mix drift only for a model swap; from its start to 1 h after its end), after a warm-up (``--warmup-h``, 3 h:
  references are learnt), counted as distinct (series, hour) pairs, per series per simulated day.
  Target: <= 0.1.

    nice python bench/detection.py [--days 4] [--seed 7] [--keep DIR] [--json]
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
HOUR_NS = 60 * MIN_NS
DAY_NS = 1440 * MIN_NS
T0_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
INCIDENT_MIN = 30
CREEP_MIN = 360
EXPLAIN_TAIL_NS = HOUR_NS
SLOW_TAIL_P = 0.01  # share of calls in the slow tail
SLOW_TAIL_FACTOR = 4.0
ERROR_TYPES = ("RateLimitError", "InternalServerError", "APITimeoutError")


class Series(NamedTuple):
    service: str
    kind: str  # chat | retrieval | execute_tool | embeddings
    provider: str
    target: str
    per_min: float  # mean calls per minute (the daily cycle moves it x0.5 .. x1.5)
    latency_s: float  # median
    in_tokens: int
    out_tokens: int
    price_in: float  # USD per token
    price_out: float
    error_p: float
    streamed: bool = False


SERIES = {
    "errors": Series("checkout", "chat", "openai", "gpt-4o-mini", 40, 0.9, 600, 150, 0.15e-6, 0.6e-6, 0.005),
    "latency": Series("checkout", "chat", "anthropic", "claude-3-5-haiku", 30, 1.2, 700, 180, 0.8e-6, 4e-6, 0.005),
    "mix": Series("search", "chat", "openai", "gpt-4o", 30, 1.8, 1500, 250, 2.5e-6, 10e-6, 0.005),
    "retrieval": Series("search", "retrieval", "chroma", "kb", 30, 0.08, 0, 0, 0.0, 0.0, 0.002),
    "tool": Series("search", "execute_tool", "", "web_search", 20, 0.4, 0, 0, 0.0, 0.0, 0.005),
    "stream": Series("support", "chat", "openai", "gpt-4o-mini", 30, 1.0, 800, 200, 0.15e-6, 0.6e-6, 0.005, True),
    "quiet": Series("support", "chat", "openai", "gpt-4.1", 2, 1.5, 900, 220, 2e-6, 8e-6, 0.005),
    "creep": Series("batch", "chat", "openai", "gpt-4o-mini", 20, 1.0, 500, 120, 0.15e-6, 0.6e-6, 0.005),
    "control": Series("search", "embeddings", "openai", "text-embedding-3-small", 30, 0.15, 300, 0, 0.02e-6, 0.0, 0.002),
    # busier series: where the error targets (5 % in 3 windows, 10 % and tool storms in 2) are
    # within reach of the information the calls carry at 0.1 false alarms a day (see bound_windows)
    "busy": Series("checkout", "chat", "openai", "gpt-4.1-mini", 120, 0.8, 500, 120, 0.4e-6, 1.6e-6, 0.005),
    "busy_tool": Series("search", "execute_tool", "", "vector_lookup", 60, 0.2, 0, 0, 0.0, 0.0, 0.005),
}
BUDGET_PER_DAY = 0.1  # the default analytics.anomaly.false_alarms_per_series_per_day


class Incident(NamedTuple):
    name: str  # class and magnitude, e.g. "errors 10%"
    series: str  # key of SERIES
    effect: dict[str, float]
    start_ns: int
    end_ns: int


# (label, series, effect); effects: err (error rate), lat (factor), ttfc (factor), length (share),
# rel (mean), in_tok / out_tok (factor), swap (1), creep (final latency factor)
SWEEP: list[tuple[str, str, dict[str, float]]] = [
    ("errors 2%", "errors", {"err": 0.02}), ("errors 5%", "errors", {"err": 0.05}),
    ("errors 10%", "errors", {"err": 0.10}), ("errors 40%", "errors", {"err": 0.40}),
    ("latency x1.2", "latency", {"lat": 1.2}), ("latency x1.5", "latency", {"lat": 1.5}),
    ("latency x2", "latency", {"lat": 2.0}), ("latency x3", "latency", {"lat": 3.0}),
    ("finish length 10%", "mix", {"length": 0.10}), ("finish length 30%", "mix", {"length": 0.30}),
    ("input tokens x1.5", "mix", {"in_tok": 1.5}), ("input tokens x3", "mix", {"in_tok": 3.0}),
    ("output tokens x2", "mix", {"out_tok": 2.0}),
    ("relevance 0.70", "retrieval", {"rel": 0.70}), ("relevance 0.62", "retrieval", {"rel": 0.62}),
    ("relevance 0.45", "retrieval", {"rel": 0.45}),
    ("tool failures 10%", "tool", {"err": 0.10}), ("tool failures 30%", "tool", {"err": 0.30}),
    ("errors 5% (busy)", "busy", {"err": 0.05}), ("errors 10% (busy)", "busy", {"err": 0.10}),
    ("tool failures 10% (busy)", "busy_tool", {"err": 0.10}), ("tool failures 30% (busy)", "busy_tool", {"err": 0.30}),
    ("ttfc x2", "stream", {"ttfc": 2.0}), ("ttfc x3", "stream", {"ttfc": 3.0}),
    ("silent model swap", "stream", {"swap": 1.0}),
    ("low-traffic latency x3", "quiet", {"lat": 3.0}),
    ("latency creep x1->x2 / 6 h", "creep", {"creep": 2.0}),
]


def plan_incidents(days: int) -> list[Incident]:
    """Each series' incidents spread evenly over day 2 .. the last day, first one 3 h into day 2."""
    by_series: dict[str, list[tuple[str, dict[str, float]]]] = defaultdict(list)
    for label, series, effect in SWEEP:
        by_series[series].append((label, effect))
    out = []
    first = T0_NS + DAY_NS + 3 * HOUR_NS
    span = (days - 1) * DAY_NS - 4 * HOUR_NS - CREEP_MIN * MIN_NS
    for series, items in by_series.items():
        step = span // max(1, len(items))
        for i, (label, effect) in enumerate(items):
            start = (first + i * step) // MIN_NS * MIN_NS + MIN_NS // 2  # mid-window start
            length = CREEP_MIN if "creep" in effect else INCIDENT_MIN
            out.append(Incident(label, series, effect, start, start + length * MIN_NS))
    return sorted(out, key=lambda i: i.start_ns)


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


def make_span(rng: random.Random, s: Series, end_ns: int, fx: dict[str, float]) -> dict[str, Any]:
    lat = s.latency_s * math.exp(rng.gauss(0, 0.3)) * (SLOW_TAIL_FACTOR if rng.random() < SLOW_TAIL_P else 1.0)
    lat *= fx.get("lat", 1.0)
    in_tok = int(s.in_tokens * math.exp(rng.gauss(0, 0.25)) * fx.get("in_tok", 1.0)) if s.in_tokens else 0
    out_tok = int(s.out_tokens * math.exp(rng.gauss(0, 0.3)) * fx.get("out_tok", 1.0)) if s.out_tokens else 0
    finish = "length" if rng.random() < fx.get("length", 0.01) else "stop"
    relevance = min(1.0, max(0.0, rng.gauss(fx.get("rel", 0.80), 0.08)))
    if fx.get("swap"):
        out_tok *= 2
        lat *= 1.5
        finish = "length" if rng.random() < 0.3 else "stop"
    error = rng.random() < fx.get("err", s.error_p)
    attrs = [_kv("gen_ai.operation.name", s.kind)]
    if s.provider:
        attrs.append(_kv("gen_ai.provider.name", s.provider))
    if s.kind in ("chat", "embeddings"):
        attrs += [_kv("gen_ai.request.model", s.target), _kv("gen_ai.usage.input_tokens", in_tok),
                  _kv("gen_ai.usage.cost", round(in_tok * s.price_in + out_tok * s.price_out, 9))]
        if s.kind == "chat":
            attrs += [_kv("gen_ai.usage.output_tokens", out_tok), _kv("gen_ai.response.finish_reasons", [finish])]
        if s.streamed:
            ttfc = min(lat, 0.25 * s.latency_s * math.exp(rng.gauss(0, 0.3)) * fx.get("ttfc", 1.0))
            lat = max(lat, ttfc)
            attrs.append(_kv("gen_ai.response.time_to_first_chunk", ttfc))
        name, kind = f"{s.kind} {s.target}", 3
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
        attrs.append(_kv("error.type", ERROR_TYPES[rng.randrange(len(ERROR_TYPES))]))
        span["status"] = {"code": 2}
    return span


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def effect_at(inc: Incident, t_ns: int) -> dict[str, float]:
    if "creep" in inc.effect:
        frac = (t_ns - inc.start_ns) / (inc.end_ns - inc.start_ns)
        return {"lat": 1.0 + (inc.effect["creep"] - 1.0) * frac}
    return inc.effect


def generate(path: Path, days: int, seed: int, incidents: list[Incident]) -> tuple[int, dict[str, int]]:
    """Write the stream (one ExportTraceServiceRequest per simulated minute); returns the span count
    and the calls each incident affected."""
    rng = random.Random(seed)
    n = 0
    affected: dict[str, int] = defaultdict(int)
    with gzip.open(path, "wt", compresslevel=1) as f:
        for m in range(days * 1440):
            t = T0_NS + m * MIN_NS
            cycle = 1.0 + 0.5 * math.sin(2 * math.pi * (m % 1440) / 1440 - math.pi / 2)
            by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for key, s in SERIES.items():
                active = [i for i in incidents if i.series == key and i.start_ns < t + MIN_NS and i.end_ns > t]
                for _ in range(_poisson(rng, s.per_min * cycle)):
                    end = t + rng.randrange(MIN_NS)
                    fx: dict[str, float] = {}
                    for inc in active:
                        if inc.start_ns <= end < inc.end_ns:
                            fx = effect_at(inc, end)
                            affected[inc.name] += 1
                    by_service[s.service].append(make_span(rng, s, end, fx))
                    n += 1
            line = {"resourceSpans": [
                {"resource": {"attributes": [_kv("service.name", svc)]},
                 "scopeSpans": [{"scope": {"name": "bench.detection"},
                                 "spans": sorted(spans, key=lambda x: int(x["endTimeUnixNano"]))}]}
                for svc, spans in by_service.items()]}
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    return n, dict(affected)


def bernoulli_kl(p1: float, p0: float) -> float:
    """KL(Bernoulli(p1) || Bernoulli(p0)) in nats: the evidence one call of rate p1 brings against p0."""
    return p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))


def bound_windows(p1: float, p0: float, calls_per_window: float, budget_per_day: float = BUDGET_PER_DAY) -> float:
    """Full windows that *any* detector of a rate change p0 -> p1 needs on average when it may raise
    at most ``budget_per_day`` false alarms a day (Lorden's asymptotic lower bound: detection delay
    >= ln(ARL0) / KL per window, ARL0 = windows a day / budget), with p0 known exactly. Gensight's
    test knows p0 only through its reference and shares the budget with 17 other tests, so it
    needs more."""
    return math.log((86400 / 60) / budget_per_day) / (calls_per_window * bernoulli_kl(p1, p0))


CONFIG = "pipeline:\n  window_s: 60\n"


class Fired(NamedTuple):
    time_ns: int
    alert: str
    series: str
    service: str
    signal: str


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
                                             attrs["gensight.alert.series"], svc, str(attrs.get("gensight.alert.signal", ""))))
    return out


COST_EFFECTS = frozenset(("in_tok", "out_tok", "swap"))  # incidents that change what a call costs


def _matches(f: Fired, s: Series, inc: Incident | None = None) -> bool:
    """Whether alert ``f`` is about series ``s`` (and, with ``inc``, could be caused by it: a
    service-level cost spike only by an incident that changes cost, a model-mix drift only by a
    model swap; otherwise it is a false alarm that happened to fall inside the incident)."""
    if f.alert == "cost_spike":
        return f.series == s.service and (inc is None or not COST_EFFECTS.isdisjoint(inc.effect))
    parts = f.series.split("|")
    if len(parts) == 4 and parts[1] == "*":  # service-level model mix
        return parts[0] == s.service and (inc is None or "swap" in inc.effect)
    return len(parts) == 4 and parts[0] == s.service and parts[1] == s.kind and parts[3] == s.target


def evaluate(fired: list[Fired], incidents: list[Incident], days: int, warmup_h: float,
             affected: dict[str, int] | None = None) -> dict[str, Any]:
    rows = []
    for inc in incidents:
        s = SERIES[inc.series]
        hits = sorted((f for f in fired if inc.start_ns <= f.time_ns <= inc.end_ns and _matches(f, s, inc)),
                      key=lambda f: f.time_ns)
        row: dict[str, Any] = {"incident": inc.name, "series": f"{s.service}|{s.kind}|{s.target}",
                               "detected": bool(hits), "windows_to_detect": None, "by": None}
        if affected is not None and "creep" not in inc.effect:
            per_window = affected.get(inc.name, 0) / INCIDENT_MIN
            row["calls_per_window"] = round(per_window, 1)
            if "err" in inc.effect and per_window > 0:
                row["bound_windows"] = round(bound_windows(inc.effect["err"], s.error_p, per_window), 1)
        if hits:
            row["windows_to_detect"] = math.ceil((hits[0].time_ns - inc.start_ns) / MIN_NS)
            row["by"] = f"{hits[0].alert}" + (f" ({hits[0].signal})" if hits[0].signal else "")
            if "creep" in inc.effect:
                row["factor_at_detection"] = round(effect_at(inc, hits[0].time_ns)["lat"], 2)
        rows.append(row)
    warm_ns = T0_NS + int(warmup_h * 3600e9)
    hours: set[tuple[str, str, int]] = set()
    detail: dict[str, int] = defaultdict(int)
    for f in fired:
        if f.time_ns < warm_ns:
            continue
        if any(inc.start_ns <= f.time_ns <= inc.end_ns + EXPLAIN_TAIL_NS and _matches(f, SERIES[inc.series], inc)
               for inc in incidents):
            continue
        key = (f.alert, f.series, (f.time_ns - T0_NS) // HOUR_NS)
        if key not in hours:
            hours.add(key)
            detail[f"{f.alert} {f.series}" + (f" ({f.signal})" if f.signal else "")] += 1
    series_hours = {(s, h) for _, s, h in hours}
    clean_days = days - warmup_h / 24
    return {"incidents": rows, "false_alarms": dict(detail), "false_alarm_series_hours": len(series_hours),
            "false_alarms_per_series_day": len(series_hours) / (len(SERIES) * clean_days),
            "warmup_alerts": sum(1 for f in fired if f.time_ns < warm_ns)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=4, help="simulated days (default 4; day 1 is clean)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warmup-h", type=float, default=3.0, help="hours excluded from false-alarm counting")
    ap.add_argument("--keep", metavar="DIR", help="keep the stream, config, metrics and alerts here")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    if args.days < 3:
        ap.error("--days must be at least 3 (day 1 is clean traffic, incidents need two days)")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gensight-detection-"))
    work.mkdir(parents=True, exist_ok=True)
    incidents = plan_incidents(args.days)
    t = time.perf_counter()
    spans, affected = generate(work / "spans.jsonl.gz", args.days, args.seed, incidents)
    gen_s = time.perf_counter() - t
    (work / "gensight.yaml").write_text(CONFIG)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "gensight", "replay", str(work / "spans.jsonl.gz"), "--config", str(work / "gensight.yaml"),
           "--output", os.devnull, "--logs-output", str(work / "alerts.jsonl")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    replay_s = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    result = evaluate(read_alerts(work / "alerts.jsonl"), incidents, args.days, args.warmup_h, affected)
    result.update(days=args.days, series=len(SERIES), spans=spans, generate_s=round(gen_s, 1),
                  replay_s=round(replay_s, 1))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{spans} spans, {args.days} simulated days, {len(SERIES)} series; generate {gen_s:.0f} s, "
              f"replay {replay_s:.0f} s")
        print(f"{'incident':28} {'series':40} {'calls/w':>7} {'windows':>7} {'bound':>6}  first alert")
        for r in result["incidents"]:
            extra = f" at x{r['factor_at_detection']}" if "factor_at_detection" in r else ""
            bound = f"{r['bound_windows']:.1f}" if "bound_windows" in r else ""
            print(f"{r['incident']:28} {r['series']:40} {r.get('calls_per_window', ''):>7} "
                  f"{r['windows_to_detect'] if r['detected'] else 'missed':>7} {bound:>6}  {r['by'] or ''}{extra}")
        print("bound: full windows any detector needs on average at this false-alarm budget (Lorden; p0 known)")
        print(f"false alarms after {args.warmup_h:g} h warm-up: {result['false_alarm_series_hours']} series-hours "
              f"= {result['false_alarms_per_series_day']:.3f} per series per simulated day "
              f"(alerts during warm-up: {result['warmup_alerts']})")
        for k, v in sorted(result["false_alarms"].items()):
            print(f"  {v:3d} x {k}")
    if not args.keep:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
