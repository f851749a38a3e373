"""``gensight pricing show`` and ``gensight pricing check``."""

from __future__ import annotations

import json
import os

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_wire import key_value

from gensight.cli import main

T_NS = 1_790_000_000_000_000_000  # 2026-09-21


@pytest.fixture(autouse=True)
def _no_pricing_file(monkeypatch):
    monkeypatch.delenv("GENSIGHT_PRICING_FILE", raising=False)


def _span_file(tmp_path, spans):
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(key_value("service.name", "app"))
    ss = rs.scope_spans.add()
    for i, attrs in enumerate(spans):
        s = ss.spans.add()
        s.trace_id, s.span_id, s.name = os.urandom(16), os.urandom(8), "chat"
        s.start_time_unix_nano = T_NS + i * 1_000_000
        s.end_time_unix_nano = s.start_time_unix_nano + 500_000_000
        s.attributes.extend(key_value(k, v) for k, v in attrs.items())
    path = tmp_path / "spans.jsonl"
    path.write_text(json_format.MessageToJson(req, indent=None) + "\n")
    return path


def _chat(model, provider="openai", **extra):
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 0, **extra}


def test_show_prints_rates_and_library_source(capsys):
    assert main(["pricing", "show", "gpt-4o", "--tier", "priority", "--at", "2026-11-20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usd_per_1m_tokens"]["input"] == pytest.approx(4.25)
    assert out["source"] == f"genai-prices {out['genai_prices_version']} (openai/gpt-4o)"


def test_show_at_an_older_date_gives_the_older_price(capsys):
    assert main(["pricing", "show", "o3", "--at", "2025-06-01T08:00:00Z"]) == 0
    assert "input 10," in capsys.readouterr().out


def test_show_names_the_override_file(tmp_path, capsys):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"providers": {"openai": {"models": {"gpt-4o": {"input": 1, "output": 2}}}}}))
    assert main(["pricing", "show", "gpt-4o", "--pricing-file", str(f)]) == 0
    assert f"source    override file {f}" in capsys.readouterr().out


def test_show_unknown_model_exits_1(capsys):
    assert main(["pricing", "show", "acme-llm-7b"]) == 1
    assert "price     none" in capsys.readouterr().out


def test_show_rejects_a_bad_date(capsys):
    assert main(["pricing", "show", "gpt-4o", "--at", "yesterday"]) == 2
    assert "--at: not a date" in capsys.readouterr().err


def test_check_lists_models_calls_priced_and_total(tmp_path, capsys):
    path = _span_file(tmp_path, [
        _chat("gpt-4o-mini"), _chat("gpt-4o-mini"), _chat("acme-llm-7b"),
        _chat("house", "ibm.watsonx.ai", **{"gen_ai.usage.cost": 0.5}),
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
    ])
    assert main(["pricing", "check", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_model = {m["model"]: m for m in out["models"]}
    assert set(by_model) == {"gpt-4o-mini", "acme-llm-7b", "house"}
    assert by_model["gpt-4o-mini"]["calls"] == 2 and by_model["gpt-4o-mini"]["priced"] == "yes"
    assert by_model["gpt-4o-mini"]["cost_usd"] == pytest.approx(0.30)  # 2 x 1M input tokens at 0.15
    assert by_model["acme-llm-7b"]["priced"] == "no" and by_model["acme-llm-7b"]["price_source"] == "none"
    assert by_model["house"]["price_source"] == "span attribute"
    assert out["total_cost_usd"] == pytest.approx(0.80) and out["unpriced_calls"] == 1


def test_check_table_output(tmp_path, capsys):
    path = _span_file(tmp_path, [_chat("gpt-4o-mini")])
    assert main(["pricing", "check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PROVIDER", "MODEL", "CALLS", "PRICED", "COST_USD", "PRICE", "SOURCE"]
    assert lines[1].split()[:5] == ["openai", "gpt-4o-mini", "1", "yes", "0.150000"]
    assert lines[-1].startswith("total cost USD 0.150000 over 1 calls; 0 unpriced")


def test_check_missing_file(capsys):
    assert main(["pricing", "check", "/no/such/spans.jsonl"]) == 2
    assert "no such file" in capsys.readouterr().err
