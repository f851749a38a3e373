"""Scale-out proof: one processor, or two processors each given whole services, export the same
per-series data points.

This is the property the collector's `loadbalancing` exporter with `routing_key: service`
relies on (collector-config/loadbalancing.yaml, docs/scaling.md). The test builds one recorded,
multi-service OTLP/JSON span stream (chat calls on two models, tool calls, retrievals, errors,
several tenants shared across services, a latency/cost shift in one service halfway), then runs
`gensight replay` — the documented CLI, the same pipeline as `gensight serve` — three times:

* on the whole stream (one processor),
* on the requests' `ResourceSpans` of services A, C and D only (replica 1),
* on those of services B and E only (replica 2),

with the analytics on (SLOs, a budget, drift, anomaly, per-tenant cost), and compares every
exported data point by (service, metric, attributes, start, time). The processors'
self-telemetry (`gensight.processor.*`) differs by design: it describes each replica. Points about
configured SLOs and budgets are checked separately (each comes only from the replica that sees its
service): see docs/scaling.md.
A control run gives one replica the spans of half the trace ids instead, to show what\nrouting by trace id would break.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

SERVICES = ["chat-assistant", "support-bot", "docs-search", "checkout-assistant", "travel-agent"]
REPLICA_1 = {"chat-assistant", "docs-search", "checkout-assistant"}
REPLICA_2 = {"support-bot", "travel-agent"}
MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o")]
TENANTS = ["acme", "globex", "initech"]
WINDOW_S = 60
WINDOWS = 12
CALLS_PER_SERVICE_PER_WINDOW = 6
T0_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
SELF_TELEMETRY_PREFIX = "gensight.processor."
# Analytics on, sized for this short stream: SLOs and a budget on two services, per-tenant cost,
# drift references from the first 12 calls, anomaly references from the first 6 calls, and
# detection levels loosened to 100 false alarms a series-day (a dozen windows of 1-2 calls per
# series cannot reach the default 0.1 a day): the test compares points, so alerts must fire.
CONFIG = """
analytics:
  slos:
    - {name: support-availability, type: availability, target: 0.99, selector: {service: support-bot}}
    - {name: chat-latency, type: latency, target: 0.9, threshold_s: 1.0, selector: {service: chat-assistant, kind: chat}}
  budgets:
    - {name: support-monthly, limit_usd: 5, selector: {service: support-bot}}
  drift: {reference_calls: 12, min_eval_count: 6, false_alarms_per_series_per_day: 100}
  anomaly: {min_history: 3, min_calls: 1, min_reference_values: 6, min_reference_calls: 6,
            false_alarms_per_series_per_day: 100, reference_confidence: 0.5}
  cost: {per_tenant: true}
"""
# Points about a configured objective rather than about a series of spans.
OBJECTIVE_METRICS = {"gensight.slo.burn_rate", "gensight.slo.error_budget.remaining", "gensight.budget.used"}


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}}}
    return {"key": key, "value": {"stringValue": value}}


def _span(rng: random.Random, service: str, end_ns: int, incident: bool) -> dict[str, Any]:
    """One GenAI span of `service` ending at end_ns: a chat call, a tool call or a retrieval."""
    kind = rng.choices(["chat", "execute_tool", "retrieval"], weights=[6, 2, 2])[0]
    tenant = rng.choice(TENANTS)
    error = rng.random() < (0.15 if incident else 0.03)
    if kind == "chat":
        provider, model = rng.choice(MODELS)
        duration_s = rng.lognormvariate(-0.5, 0.4) * (4.0 if incident else 1.0)
        in_tok = rng.randint(200, 1500)
        out_tok = int(rng.randint(50, 400) * (3 if incident else 1))
        attrs = [
            _attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", provider),
            _attr("gen_ai.request.model", model), _attr("gen_ai.response.model", model),
            _attr("gen_ai.usage.input_tokens", in_tok), _attr("gen_ai.usage.output_tokens", out_tok),
            _attr("gen_ai.response.finish_reasons", ["stop" if rng.random() < 0.9 else "length"]),
            _attr("server.address", "api.openai.com"), _attr("enduser.id", tenant),
        ]
        name, span_kind = f"chat {model}", 3
    elif kind == "execute_tool":
        tool = rng.choice(["get_weather", "search_orders"])
        duration_s = rng.uniform(0.01, 0.3)
        attrs = [_attr("gen_ai.operation.name", "execute_tool"), _attr("gen_ai.tool.name", tool),
                 _attr("enduser.id", tenant)]
        name, span_kind = f"execute_tool {tool}", 1
    else:
        source = "kb-articles"
        duration_s = rng.uniform(0.02, 0.2)
        attrs = [_attr("gen_ai.operation.name", "retrieval"), _attr("gen_ai.data_source.id", source),
                 _attr("gen_ai.provider.name", "chroma"), _attr("gen_ai.request.top_k", 5),
                 _attr("gensight.retrieval.top_score", round(rng.uniform(0.3, 0.95) * (0.6 if incident else 1), 4)),
                 _attr("enduser.id", tenant)]
        name, span_kind = f"retrieval {source}", 3
    if error:
        attrs.append(_attr("error.type", rng.choice(["RateLimitError", "APITimeoutError"])))
    start_ns = end_ns - int(duration_s * 1e9)
    span: dict[str, Any] = {
        "traceId": rng.randbytes(16).hex(), "spanId": rng.randbytes(8).hex(), "name": name, "kind": span_kind,
        "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns), "attributes": attrs,
        "status": {"code": 2} if error else {},
    }
    return span


def make_stream(seed: int = 7) -> list[dict[str, Any]]:
    """OTLP/JSON ExportTraceServiceRequests in end-time order, each batching several services
    the way a collector's batch processor does (one ResourceSpans per service per request)."""
    rng = random.Random(seed)
    spans: list[tuple[int, str, dict[str, Any]]] = []
    for w in range(WINDOWS):
        incident_service = "support-bot" if w >= WINDOWS // 2 else None
        for service in SERVICES:
            for _ in range(CALLS_PER_SERVICE_PER_WINDOW):
                end_ns = T0_NS + w * WINDOW_S * 10**9 + rng.randrange(1, WINDOW_S * 10**9)
                spans.append((end_ns, service, _span(rng, service, end_ns, service == incident_service)))
    spans.sort(key=lambda s: s[0])
    requests = []
    for i in range(0, len(spans), 40):
        by_service: dict[str, list[dict[str, Any]]] = {}
        for _, service, span in spans[i:i + 40]:
            by_service.setdefault(service, []).append(span)
        requests.append({"resourceSpans": [
            {"resource": {"attributes": [_attr("service.name", svc), _attr("telemetry.sdk.language", "python")]},
             "scopeSpans": [{"scope": {"name": "gensight.instrumentation"}, "spans": svc_spans}]}
            for svc, svc_spans in by_service.items()
        ]})
    return requests


def service_of(resource_spans: dict[str, Any]) -> str:
    return next(a["value"]["stringValue"] for a in resource_spans["resource"]["attributes"] if a["key"] == "service.name")


def split_by_service(requests: list[dict[str, Any]], services: set[str]) -> list[dict[str, Any]]:
    """What one replica receives: each request keeps only the ResourceSpans of its services."""
    out = []
    for req in requests:
        kept = [rs for rs in req["resourceSpans"] if service_of(rs) in services]
        if kept:
            out.append({"resourceSpans": kept})
    return out


def split_by_trace(requests: list[dict[str, Any]], replica: int, replicas: int = 2) -> list[dict[str, Any]]:
    """What one replica would receive with routing_key: traceID (spans of a service spread out)."""
    out = []
    for req in requests:
        kept = []
        for rs in req["resourceSpans"]:
            spans = [sp for ss in rs["scopeSpans"] for sp in ss["spans"] if int(sp["traceId"], 16) % replicas == replica]
            if spans:
                kept.append({"resource": rs["resource"], "scopeSpans": [{"scope": rs["scopeSpans"][0]["scope"], "spans": spans}]})
        if kept:
            out.append({"resourceSpans": kept})
    return out


def write_lines(path: Path, requests: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in requests))
    return path


def replay(spans: Path, out: Path, state_dir: Path, config: Path) -> Path:
    """`gensight replay SPANS --output OUT --window-s 60 --state-dir DIR --config FILE`, through
    the CLI entry point in this process (a subprocess per run would add seconds of imports)."""
    from gensight.cli import main

    code = main(["replay", str(spans), "--output", str(out), "--window-s", str(WINDOW_S),
                 "--state-dir", str(state_dir), "--config", str(config)])
    assert code == 0
    return out


def _value(point: dict[str, Any]) -> Any:
    if "asDouble" in point:
        return ("v", float(point["asDouble"]))
    if "asInt" in point:
        return ("v", float(point["asInt"]))
    if "bucketCounts" in point:  # histogram
        return ("h", point.get("count"), round(float(point.get("sum", 0.0)), 9), tuple(point["bucketCounts"]),
                tuple(point.get("explicitBounds", [])))
    return ("?", json.dumps(point, sort_keys=True))


def _attrs(attributes: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((a["key"], json.dumps(a["value"], sort_keys=True)) for a in attributes))


def per_series_points(path: Path) -> dict[tuple[Any, ...], Any]:
    """(service.name, metric, attributes, start, time) -> value, for every exported data point."""
    points: dict[tuple[Any, ...], Any] = {}
    for line in path.read_text().splitlines():
        for rm in json.loads(line).get("resourceMetrics", []):
            service = dict((a["key"], a["value"].get("stringValue")) for a in rm.get("resource", {}).get("attributes", []))
            for sm in rm.get("scopeMetrics", []):
                for metric in sm.get("metrics", []):
                    if metric["name"].startswith(SELF_TELEMETRY_PREFIX):
                        continue
                    body = next(v for k, v in metric.items() if k in ("gauge", "sum", "histogram",
                                                                     "exponentialHistogram", "summary"))
                    for p in body.get("dataPoints", []):
                        key = (service.get("service.name"), metric["name"], _attrs(p.get("attributes", [])),
                               p.get("startTimeUnixNano"), p.get("timeUnixNano"))
                        assert key not in points, f"duplicate data point {key}"
                        points[key] = _value(p)
    return points


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, dict[tuple[Any, ...], Any]]:
    tmp = tmp_path_factory.mktemp("scale_out")
    config = tmp / "gensight.yaml"
    config.write_text(CONFIG)
    requests = make_stream()
    runs = {
        "single": requests,
        "replica-1": split_by_service(requests, REPLICA_1),
        "replica-2": split_by_service(requests, REPLICA_2),
        "trace-replica-1": split_by_trace(requests, 0),
    }
    result = {}
    for name, reqs in runs.items():
        spans = write_lines(tmp / f"{name}.spans.jsonl", reqs)
        state = tmp / f"{name}.state"
        state.mkdir()
        result[name] = per_series_points(replay(spans, tmp / f"{name}.metrics.jsonl", state, config))
    return result


def test_split_covers_every_service_exactly_once():
    assert set(SERVICES) == REPLICA_1 | REPLICA_2 and not REPLICA_1 & REPLICA_2
    requests = make_stream()
    total = Counter(service_of(rs) for r in requests for rs in r["resourceSpans"])
    parts = Counter(service_of(rs) for part in (REPLICA_1, REPLICA_2)
                    for r in split_by_service(requests, part) for rs in r["resourceSpans"])
    assert parts == total


def _series_points(points: dict[tuple[Any, ...], Any]) -> dict[tuple[Any, ...], Any]:
    return {k: v for k, v in points.items() if k[1] not in OBJECTIVE_METRICS}


def test_single_processor_exports_every_service_and_the_analytics(outputs):
    single = outputs["single"]
    assert {key[0] for key in single} == set(SERVICES)
    names = {key[1] for key in single}
    assert {"gensight.calls", "gensight.call.duration", "gensight.sli.latency", "gensight.cost", "gensight.cost.rate",
            "gensight.drift", "gensight.drift.score", "gensight.anomaly.score", "gensight.alerts.active",
            "gensight.slo.burn_rate", "gensight.budget.used"} <= names
    tenants = {dict(k[2]).get("tenant") for k in single if k[1] == "gensight.cost.rate"}
    assert len(tenants - {None}) == len(TENANTS)  # hashed tenant ids, one per tenant


def test_replicas_never_export_the_same_series(outputs):
    def series(points: dict[tuple[Any, ...], Any]) -> set[tuple[Any, ...]]:
        return {key[:3] for key in _series_points(points)}

    assert series(outputs["replica-1"]).isdisjoint(series(outputs["replica-2"]))
    assert {k[0] for k in _series_points(outputs["replica-1"])} == REPLICA_1
    assert {k[0] for k in _series_points(outputs["replica-2"])} == REPLICA_2


def test_two_replicas_split_by_service_export_the_same_points_as_one_processor(outputs):
    """Every per-series point — SLIs, tokens, cost, per-tenant cost rate, drift, anomaly, alert
    gauges — is identical whether one processor or two service-routed replicas compute it."""
    merged = {**_series_points(outputs["replica-1"]), **_series_points(outputs["replica-2"])}
    single = _series_points(outputs["single"])
    only_single = sorted(set(single) - set(merged))[:5]
    only_split = sorted(set(merged) - set(single))[:5]
    assert not only_single and not only_split, f"only in single: {only_single}; only in split: {only_split}"
    differing = [(k, single[k], merged[k]) for k in single if single[k] != merged[k]]
    assert differing == [], differing[:5]


def test_slo_and_budget_points_come_only_from_the_replica_that_sees_the_service(outputs):
    def objective(points: dict[tuple[Any, ...], Any]) -> dict[tuple[Any, ...], Any]:
        return {k: v for k, v in points.items() if k[1] in OBJECTIVE_METRICS}

    a, b = objective(outputs["replica-1"]), objective(outputs["replica-2"])
    assert {k[:3] for k in a}.isdisjoint({k[:3] for k in b})
    assert {**a, **b} == objective(outputs["single"])


def test_routing_by_trace_id_instead_would_collide_and_change_the_numbers(outputs):
    """Why not routing_key: traceID — a trace-routed replica exports every service's series (so
    would its peers: colliding series), with values computed from a sample of the spans."""
    by_trace = _series_points(outputs["trace-replica-1"])
    assert {k[0] for k in by_trace} == set(SERVICES)
    single = outputs["single"]
    latency = [k for k in by_trace if k[1] == "gensight.sli.latency" and k in single]
    assert latency and any(by_trace[k] != single[k] for k in latency)
