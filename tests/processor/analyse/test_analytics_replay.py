"""A recorded incident replayed through the real `gensight replay`: the alert fires, then resolves."""

import json

from gensight.cli import main

MIN_NS = 60 * 10**9
T0_NS = 1_767_225_600 * 10**9


def _span(i, end_ns, error):
    attrs = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
             {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
             {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
             {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
             {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "50"}}]
    span = {"traceId": f"{i:032x}", "spanId": f"{i:016x}", "name": "chat gpt-4o-mini", "kind": 3,
            "startTimeUnixNano": str(end_ns - 500_000_000), "endTimeUnixNano": str(end_ns), "attributes": attrs}
    if error:
        attrs.append({"key": "error.type", "value": {"stringValue": "RateLimitError"}})
        span["status"] = {"code": 2}
    return span


def _write_stream(path, minutes=120, per_min=20, burst=(60, 75)):
    i = 0
    with open(path, "w") as f:
        for m in range(minutes):
            spans = []
            for k in range(per_min):
                i += 1
                error = burst[0] <= m < burst[1] and k % 2 == 0
                spans.append(_span(i, T0_NS + m * MIN_NS + (k + 1) * (MIN_NS // (per_min + 1)), error))
            f.write(json.dumps({"resourceSpans": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}) + "\n")


def _transitions(path):
    out = []
    with open(path) as f:
        lines = f.readlines()
    for line in lines:
        for rl in json.loads(line)["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                for rec in sl["logRecords"]:
                    a = {kv["key"]: next(iter(kv["value"].values())) for kv in rec["attributes"]}
                    out.append((int(rec["timeUnixNano"]), a["gensight.alert.name"], a["gensight.alert.state"], a))
    return out


def test_replayed_error_burst_pages_then_resolves(tmp_path):
    stream = tmp_path / "spans.jsonl"
    _write_stream(stream)
    cfg = tmp_path / "gensight.yaml"
    cfg.write_text("analytics:\n  slos:\n    - {name: checkout-availability, target: 0.995, selector: {service: checkout}}\n"
                   "  alerts:\n    runbook_base_url: https://runbooks.example/gensight\n")
    logs = tmp_path / "alerts.jsonl"
    metrics = tmp_path / "metrics.jsonl"
    assert main(["replay", str(stream), "--config", str(cfg), "--output", str(metrics), "--logs-output", str(logs)]) == 0
    page = [(t, state, a) for t, name, state, a in _transitions(logs) if name == "slo_burn_fast"]
    states = [s for _, s, _ in page]
    assert states[:3] == ["pending", "firing", "resolved"]
    fired_at = page[1][0]
    assert T0_NS + 60 * MIN_NS < fired_at <= T0_NS + 75 * MIN_NS  # during the burst (1h burn > 14.4 after ~9 min)
    assert page[2][0] > T0_NS + 75 * MIN_NS  # resolved after it
    firing = page[1][2]
    assert firing["gensight.alert.severity"] == "page"
    assert firing["runbook_url"] == "https://runbooks.example/gensight/slo_burn_fast"
    assert firing["gensight.alert.value"] > 14.4
    names = set()
    for line in metrics.read_text().splitlines():
        for rm in json.loads(line)["resourceMetrics"]:
            for sm in rm["scopeMetrics"]:
                names.update(m["name"] for m in sm["metrics"])
    assert {"gensight.slo.burn_rate", "gensight.slo.error_budget.remaining", "gensight.anomaly.score",
            "gensight.cost.rate", "gensight.alerts.active", "gensight.drift"} <= names


def test_replay_is_deterministic_with_analytics(tmp_path):
    stream = tmp_path / "spans.jsonl"
    _write_stream(stream, minutes=40, burst=(30, 35))
    outs = []
    for n in range(2):
        out = tmp_path / f"logs{n}.jsonl"
        assert main(["replay", str(stream), "--output", str(tmp_path / f"m{n}.jsonl"), "--logs-output", str(out)]) == 0
        outs.append((out.read_text(), (tmp_path / f"m{n}.jsonl").read_text()))
    assert outs[0] == outs[1]
