"""Restarts: ``gensight serve --state-dir`` killed with SIGKILL at random moments during ingestion,
restarted each time, then stopped with SIGTERM.

* every restart opens the state file (no corruption, no silent reset);
* what was persisted never goes backwards: budget use, SLO event counts and frozen drift
  baselines after each restart are at least what the previous restart found (updates since the
  last snapshot may be lost: that is the documented tolerance, one ``snapshot_interval_s``);
* a graceful SIGTERM flushes the open windows to the metrics backend and the state to disk: the
  final budget use is exactly the state at the last restart plus every span of the last run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from harness import MetricsSink, wait_for
from hostile_client import grpc_channel, send_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from otlp_wire import key_value

from gensight.processor.analyse.analytics import Analytics, AnalyticsConfig

S = 1_000_000_000
SPANS_PER_REQUEST = 20
COST_USD = 0.01
MAX_REQUESTS_PER_CYCLE = 150
BUDGET_LIMIT_USD = 10_000.0
ANALYTICS = {
    "slos": [{"name": "avail", "target": 0.99}],
    "budgets": [{"name": "all", "limit_usd": BUDGET_LIMIT_USD}],
    "drift": {"reference_calls": 60},
}
CONFIG_YAML = f"""
state:
  snapshot_interval_s: 0.2
analytics:
  slos: [{{name: avail, target: 0.99}}]
  budgets: [{{name: all, limit_usd: {BUDGET_LIMIT_USD}}}]
  drift: {{reference_calls: 60}}
"""


def request_for_minute(service: str, minute_start_ns: int, rng: random.Random) -> bytes:
    """SPANS_PER_REQUEST calls ending inside one event-time minute (one window each request)."""
    spans = []
    for i in range(SPANS_PER_REQUEST):
        end = minute_start_ns + (i + 1) * 2 * S
        spans.append(Span(
            trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name="chat m", kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=end - int(rng.uniform(0.3, 2.0) * S), end_time_unix_nano=end,
            attributes=[key_value("gen_ai.operation.name", "chat"), key_value("gen_ai.provider.name", "openai"),
                        key_value("gen_ai.request.model", "m"), key_value("gen_ai.usage.input_tokens", rng.randint(50, 500)),
                        key_value("gen_ai.usage.output_tokens", rng.randint(10, 200)), key_value("gen_ai.usage.cost", COST_USD)],
        ))
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[key_value("service.name", service)]), scope_spans=[ScopeSpans(spans=spans)])])
    return req.SerializeToString()


class Serve:
    """``gensight serve`` as a subprocess (the installed console script's module entry point)."""

    def __init__(self, config: Path, state_dir: Path, sink_port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gensight", "serve", "--config", str(config), "--grpc-endpoint", "127.0.0.1:0",
             "--http-endpoint", "127.0.0.1:0", "--state-dir", str(state_dir),
             "--export-endpoint", f"http://127.0.0.1:{sink_port}"],
            stderr=subprocess.PIPE, text=True, env=env,
        )
        assert self.proc.stderr is not None
        self.log: list[str] = []
        line = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            self.log.append(line)
            if not line or "gensight serve: listening" in line:
                break
        assert "gensight serve: listening" in line, "".join(self.log)
        self.grpc_port = int(line.split("grpc ")[1].split(",")[0].rstrip(")\n"))
        # keep draining stderr so the child never blocks on a full pipe
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._drain.join(5)


def persisted(state_dir: Path) -> dict[str, Any]:
    """What a restart finds in the state file (opened the way serve opens it, then closed)."""
    analytics = Analytics(AnalyticsConfig.from_dict(ANALYTICS), state_dir=str(state_dir))
    try:
        frozen = sum(1 for r in analytics.drift.show(["*"]) if r["status"] == "frozen")
        return {
            "budget_usd": analytics.cost.budget_used("all") * BUDGET_LIMIT_USD,
            "slo_total": sum(analytics.slo.export_state()["avail"]["total"]),
            "frozen": frozen,
        }
    finally:
        analytics.shutdown()


@pytest.fixture
def sink():
    s = MetricsSink()
    yield s
    s.stop()


def test_kill_9_at_random_moments_then_restart_keeps_state_and_sigterm_flushes(tmp_path, sink):
    config = tmp_path / "gensight.yaml"
    config.write_text(CONFIG_YAML)
    state_dir = tmp_path / "state"
    rng = random.Random(20261123)
    # event time: 12 hours ago, one minute per request, at most MAX_REQUESTS_PER_CYCLE per cycle, so
    # the last run is still in the past (future spans would be rejected)
    minute = (time.time_ns() // (60 * S) - 720) * 60 * S
    found: list[dict[str, Any]] = []
    for cycle in range(3):
        serve = Serve(config, state_dir, sink.port)
        try:
            with grpc_channel(f"127.0.0.1:{serve.grpc_port}") as channel:
                kill_after = rng.uniform(0.3, 1.5)  # a random moment, mid-stream
                started = time.monotonic()
                for _ in range(MAX_REQUESTS_PER_CYCLE):
                    if time.monotonic() - started >= kill_after:
                        break
                    answer = send_grpc(channel, request_for_minute(f"cycle-{cycle}", minute, rng), timeout_s=10)
                    assert answer.ok and answer.rejected_spans == 0, answer
                    minute += 60 * S
                    time.sleep(0.005)
                serve.kill9()
        finally:
            serve.cleanup()
        found.append(persisted(state_dir))
        if cycle:
            before, after = found[-2], found[-1]
            assert after["budget_usd"] >= before["budget_usd"] - 1e-9, found
            assert after["slo_total"] >= before["slo_total"], found
            assert after["frozen"] >= before["frozen"], found
    assert found[-1]["budget_usd"] > 0 and found[-1]["slo_total"] > 0, found

    # the last run ends gracefully: every span of it reaches the state and the metrics backend
    serve = Serve(config, state_dir, sink.port)
    sent = 0
    try:
        with grpc_channel(f"127.0.0.1:{serve.grpc_port}") as channel:
            for _ in range(5):
                answer = send_grpc(channel, request_for_minute("final", minute, rng), timeout_s=10)
                assert answer.ok and answer.rejected_spans == 0, answer
                minute += 60 * S
                sent += SPANS_PER_REQUEST
        assert serve.terminate() == 0, "".join(serve.log)
    finally:
        serve.cleanup()
    final = persisted(state_dir)
    assert final["budget_usd"] == pytest.approx(found[-1]["budget_usd"] + sent * COST_USD)
    assert final["slo_total"] == found[-1]["slo_total"] + sent
    calls = wait_for(lambda: sum(v for svc, _, attrs, v in sink.rows("gensight.calls") if svc == "final"
                                 and dict(attrs)["outcome"] == "ok" and v == sent))
    assert calls, "the windows open at SIGTERM were flushed to the metrics backend"
