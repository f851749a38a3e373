"""``opentelemetry-instrument`` alone (no code change) exports our spans and metrics over OTLP."""

import os
import subprocess
import sys
from pathlib import Path

from gensight.instrumentation import attributes as A

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "openai_app.py"
LAUNCHER = str(Path(sys.executable).parent / "opentelemetry-instrument")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_", "GENSIGHT_"))}
    # other OpenAI instrumentations a developer may have installed (OpenLLMetry's entry point is
    # "openai", the official one "openai_v2") would add their own spans: this test is about ours
    env.update(OTEL_SERVICE_NAME="openai-example", OTEL_LOGS_EXPORTER="none",
               OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai,openai_v2", **extra)
    return env


def _attrs(span) -> dict:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def test_instrumented_app_exports_spans_and_metrics_over_otlp_grpc(otlp_receiver):
    env = _env(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint,
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_METRIC_EXPORT_INTERVAL="200",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    proc = subprocess.run([LAUNCHER, sys.executable, str(APP)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    chats = [s for _, s in otlp_receiver.spans if s.name == "chat gpt-4o-mini"]
    assert len(chats) == 4  # chat, stream, tool call, responses
    for span in chats:
        attrs = _attrs(span)
        assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] > 0 and attrs[A.GEN_AI_USAGE_COST] > 0
    resource = {kv.key: kv.value.string_value for kv in otlp_receiver.spans[0][0].attributes}
    assert resource["service.name"] == "openai-example"
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration", "gen_ai.client.cost"} <= (
        otlp_receiver.metric_names()
    )


def test_console_exporter_prints_spans_with_tokens_and_cost():
    env = _env(OTEL_METRICS_EXPORTER="none")
    proc = subprocess.run([LAUNCHER, "--traces_exporter", "console", sys.executable, str(APP)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"gen_ai.usage.cost"' in proc.stdout
    assert '"gen_ai.usage.output_tokens"' in proc.stdout
    assert '"name": "embeddings text-embedding-3-small"' in proc.stdout
