"""examples/agent_app.py under ``opentelemetry-instrument``: the whole span tree over real OTLP/gRPC."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gensight.instrumentation import attributes as A

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "agent_app.py"
LAUNCHER = str(Path(sys.executable).parent / "opentelemetry-instrument")


def _attrs(span) -> dict:
    out = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def _run_app(otlp_receiver):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "ANTHROPIC_", "GENSIGHT_"))}
    env.update(
        OTEL_SERVICE_NAME="agent-example", OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint, OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_TRACES_EXPORTER="otlp", OTEL_METRICS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="200", OTEL_BSP_SCHEDULE_DELAY="100",
    )
    proc = subprocess.run([LAUNCHER, sys.executable, str(APP)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [span for _, span in otlp_receiver.spans]


def test_agent_app_span_tree_attributes_and_metrics(otlp_receiver):
    spans = _run_app(otlp_receiver)
    by_id = {s.span_id: s for s in spans}
    names = [s.name for s in spans]

    def parent(span):
        return by_id.get(span.parent_span_id)

    agents = [s for s in spans if s.name == "invoke_agent support-agent"]
    assert len(agents) == 3
    assert "anthropic.messages.create" not in names  # one span per model call: ours

    retrievals = [s for s in spans if s.name == "retrieval support-kb"]
    assert len(retrievals) == 2 and all(parent(r).name == "invoke_agent support-agent" for r in retrievals)
    for r in retrievals:
        attrs = _attrs(r)
        assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 2
        assert 0.0 <= attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] <= attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] <= 1.0
        children = [s for s in spans if s.parent_span_id == r.span_id]
        assert [c.name for c in children] == ["embeddings text-embedding-3-small"]

    tools = {s.name: s for s in spans if s.name.startswith("execute_tool")}
    assert set(tools) == {"execute_tool lookup_order", "execute_tool get_weather"}
    for span in tools.values():
        assert parent(span).name == "invoke_agent support-agent"
        assert _attrs(span)[A.GEN_AI_TOOL_CALL_ID].startswith("toolu_")

    chats = [s for s in spans if s.name == "chat claude-haiku-4-5"]
    assert len(chats) == 5 and all(parent(c).name == "invoke_agent support-agent" for c in chats)
    billed = [_attrs(c) for c in chats if A.GENSIGHT_CACHE_HIT not in _attrs(c)]
    assert len(billed) == 4 and all(a[A.GEN_AI_USAGE_COST] > 0 for a in billed)
    assert sum(a.get(A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0) for a in billed) > 0  # cached system prompt
    (hit,) = [_attrs(c) for c in chats if A.GENSIGHT_CACHE_HIT in _attrs(c)]
    assert hit[A.GENSIGHT_CACHE_HIT] is True and hit[A.GEN_AI_USAGE_COST] == 0.0

    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage", "gen_ai.client.cost"} <= (
        otlp_receiver.metric_names())
