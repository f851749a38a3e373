"""gensight serve end to end: real OTel SDK span exporter → processor on loopback → real gRPC
OTLP metrics sink."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.sdk.trace.export import SpanExportResult

from gensight.processor.config import config_from_mapping
from gensight.processor.export.metric_builder import flatten
from gensight.processor.server import ProcessorServer, build_sinks


class MetricsSinkServer(metrics_service_pb2_grpc.MetricsServiceServicer):
    """A real OTLP/gRPC metrics endpoint that records what it receives."""

    def __init__(self) -> None:
        self.requests: list = []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        with self.lock:
            self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def rows(self, name=None):
        with self.lock:
            out = [r for req in self.requests for r in flatten(req)]
        return [r for r in out if name is None or r[1] == name]

    def stop(self) -> None:
        self.server.stop(0).wait(2)


@pytest.fixture
def metrics_sink():
    sink = MetricsSinkServer()
    yield sink
    sink.stop()


def serve_config(sink_port: int, **extra):
    data = {
        "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None},
        "export": {"endpoint": f"http://127.0.0.1:{sink_port}", "protocol": "grpc"},
        "pipeline": {"idle_tick_s": 0.05},
    }
    data.update(extra)
    return config_from_mapping(data)


@pytest.fixture
def server(metrics_sink):
    srv = ProcessorServer(serve_config(metrics_sink.port))
    srv.start()
    yield srv
    srv.stop()


def test_sdk_grpc_spans_become_otlp_metrics(server, metrics_sink, sdk_spans):
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True)
    try:
        assert exporter.export(sdk_spans(4, service="checkout", model="gpt-4o-mini")) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    server.stop()  # graceful: drains and flushes open windows to the exporter
    calls = metrics_sink.rows("gensight.calls")
    assert calls and calls[0][0] == "checkout"
    attrs = dict(calls[0][2])
    assert attrs == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                     "gen_ai.request.model": "gpt-4o-mini", "outcome": "ok"}
    assert sum(r[3] for r in calls) == 4
    tokens = {dict(r[2])["gen_ai.token.type"]: r[3] for r in metrics_sink.rows("gensight.tokens")}
    assert tokens == {"input": 10 + 11 + 12 + 13, "output": 20}
    cost = metrics_sink.rows("gensight.cost")
    assert cost and cost[0][3] > 0  # enriched from the pricing table
    spans = {dict(r[2])["outcome"]: r[3] for r in metrics_sink.rows("gensight.processor.spans")}
    assert spans["accepted"] == 4
    assert {r[0] for r in metrics_sink.rows("gensight.processor.spans")} == {"gensight-processor"}


def test_live_windows_close_on_idle_without_shutdown(metrics_sink, otlp):
    """Idle advance: a short window closes from wall-clock idle time, no new spans needed."""
    import grpc as _grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    srv = ProcessorServer(serve_config(metrics_sink.port, pipeline={"window_s": 0.2, "allowed_lateness_s": 0,
                                                                    "idle_tick_s": 0.02}))
    srv.start()
    try:
        with _grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as ch:
            trace_service_pb2_grpc.TraceServiceStub(ch).Export(otlp.request([otlp.chat()]), timeout=5)
        deadline = time.monotonic() + 10
        while not metrics_sink.rows("gensight.sli.availability") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metrics_sink.rows("gensight.sli.availability")
    finally:
        srv.stop()


def test_build_sinks_reads_standard_env(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    sinks = build_sinks(config_from_mapping({}))
    assert [type(s).__name__ for s in sinks] == ["OtlpSink"]
    for s in sinks:
        s.shutdown(1.0)


def test_no_export_endpoint_means_no_otlp_sink(monkeypatch):
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert build_sinks(config_from_mapping({})) == []


def test_cli_serve_starts_and_stops_on_sigterm(tmp_path, metrics_sink):
    cfg = tmp_path / "gensight.yaml"
    cfg.write_text("pipeline:\n  window_s: 30\nreceivers:\n  http: null\n")
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{metrics_sink.port}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gensight", "serve", "--config", str(cfg), "--grpc-endpoint", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        for _ in range(50):
            line = proc.stderr.readline()
            if not line or "gensight serve: listening" in line:
                break
        assert "gensight serve: listening" in line, line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()


def test_cli_serve_bad_config_fails_fast_naming_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("pipeline:\n  window_s: -5\n")
    proc = subprocess.run([sys.executable, "-m", "gensight", "serve", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "pipeline.window_s: must be > 0, got -5" in proc.stderr


def test_sdk_http_spans_become_otlp_metrics(metrics_sink, sdk_spans):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    cfg = config_from_mapping({
        "receivers": {"grpc": None, "http": {"endpoint": "127.0.0.1:0"}},
        "export": {"endpoint": f"http://127.0.0.1:{metrics_sink.port}", "protocol": "grpc"},
    })
    srv = ProcessorServer(cfg)
    srv.start()
    try:
        exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{srv.http_port}/v1/traces")
        try:
            assert exporter.export(sdk_spans(3, service="search", model="gpt-4o")) == SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
    finally:
        srv.stop()
    calls = metrics_sink.rows("gensight.calls")
    assert sum(r[3] for r in calls) == 3 and {r[0] for r in calls} == {"search"}
    assert dict(calls[0][2])["gen_ai.request.model"] == "gpt-4o"
    latency = {dict(r[2])["quantile"] for r in metrics_sink.rows("gensight.sli.latency")}
    assert latency == {"0.5", "0.95", "0.99"}


def test_prometheus_endpoint_serves_processor_metrics(otlp):
    import urllib.request

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    cfg = config_from_mapping({
        "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None},
        "prometheus": {"endpoint": "127.0.0.1:0"},
        "pipeline": {"window_s": 0.2, "allowed_lateness_s": 0, "idle_tick_s": 0.02},
    })
    srv = ProcessorServer(cfg)
    srv.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as ch:
            trace_service_pb2_grpc.TraceServiceStub(ch).Export(
                otlp.request([otlp.chat(), otlp.chat()], service="checkout"), timeout=5)
        body = ""
        deadline = time.monotonic() + 10
        while "gensight_calls{" not in body and time.monotonic() < deadline:
            time.sleep(0.05)
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.prometheus_port}/metrics", timeout=5) as resp:
                body = resp.read().decode()
        line = next(ln for ln in body.splitlines() if ln.startswith("gensight_calls{"))
        assert 'service_name="checkout"' in line and 'outcome="ok"' in line and float(line.rsplit(" ", 1)[1]) == 2
    finally:
        srv.stop()


def test_tune_gc_freezes_startup_objects_and_raises_thresholds():
    # in a child process: freezing the test runner's own heap would leak into other tests
    import subprocess
    import sys

    code = ("import gc; from gensight.processor.server import tune_gc, GC_THRESHOLDS; tune_gc(); "
            "print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_exported_duration_exemplars_are_input_spans_of_their_series_and_window(server, metrics_sink, otlp):
    """Through the live server (gRPC in, OTLP out): every exemplar on a gensight.call.duration point
    is one of the input spans of that point's series, and ended in the window the point closes."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    window_ns = 60 * 1_000_000_000
    spans = []
    for w in range(2):
        for i in range(6):
            start = otlp.T0_NS + w * window_ns + i * 1_000_000_000
            spans.append(otlp.chat("gpt-4o", start=start, duration_s=0.1 + 0.1 * i, error="Timeout" if i == 2 else None))
            spans.append(otlp.chat("gpt-4o-mini", start=start, duration_s=0.05 * (i + 1)))
    req = otlp.request(spans)
    by_id = {}
    for span in req.resource_spans[0].scope_spans[0].spans:
        model = next(kv.value.string_value for kv in span.attributes if kv.key == "gen_ai.request.model")
        by_id[(span.trace_id, span.span_id)] = (model, span.end_time_unix_nano, span.status.code)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
        trace_service_pb2_grpc.TraceServiceStub(ch).Export(req, timeout=5)
    server.stop()
    checked = 0
    for exported in metrics_sink.requests:
        for rm in exported.resource_metrics:
            for m in rm.scope_metrics[0].metrics:
                if m.name != "gensight.call.duration":
                    continue
                for dp in m.histogram.data_points:
                    model = next(kv.value.string_value for kv in dp.attributes if kv.key == "gen_ai.request.model")
                    for ex in dp.exemplars:
                        span_model, end_ns, _ = by_id[(ex.trace_id, ex.span_id)]
                        assert span_model == model and dp.time_unix_nano - window_ns <= end_ns < dp.time_unix_nano
                        checked += 1
                    if model == "gpt-4o":  # slowest call (0.6 s) and the failed one (0.3 s)
                        assert sorted(round(e.as_double, 3) for e in dp.exemplars) == [0.3, 0.6]
    assert checked == 4 + 2  # 2 windows x (2 for gpt-4o + 1 for gpt-4o-mini)
