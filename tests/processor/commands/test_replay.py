"""gensight replay: OTLP JSON lines in, OTLP/JSON metrics lines out; replay equals live."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from gensight.processor.commands.replay import replay_files
from gensight.processor.config import config_from_mapping
from gensight.processor.export.jsonlines import JsonLinesSink
from gensight.processor.export.metric_builder import flatten
from gensight.processor.receive.decode import message_to_otlp_json
from gensight.processor.server import ProcessorServer

S = 1_000_000_000


def stream(otlp):
    """Three services, several models/tools, errors and cost, over five minutes, in order."""
    reqs = []
    for minute in range(5):
        spans_a, spans_b = [], []
        for i in range(12):
            start = otlp.T0_NS + minute * 60 * S + i * 4 * S
            spans_a.append(otlp.chat("gpt-4o-mini" if i % 3 else "gpt-4o", start=start, duration_s=0.2 + 0.05 * i,
                                     error="Timeout" if i == 7 and minute == 2 else None))
            spans_b.append({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"tool{i % 2}",
                            "_start": start, "_end": start + 30_000_000 * (i + 1)})
        reqs.append(otlp.request(spans_a, service="checkout"))
        reqs.append(otlp.request(spans_b, service="agent"))
    return reqs


def write_lines(path, reqs, opener=open):
    with opener(path, "wt") as f:
        for r in reqs:
            f.write(json.dumps(message_to_otlp_json(r)) + "\n")


def metric_rows(lines):
    rows = []
    for line in lines:
        req = json_format.Parse(line, ExportMetricsServiceRequest(), ignore_unknown_fields=True)
        rows.extend(flatten(req))
    return rows


def analysis_rows(rows):
    return sorted(repr(r) for r in rows if not r[1].startswith("gensight.processor."))


def test_replay_cli_writes_one_metrics_request_per_line(tmp_path, otlp):
    src = tmp_path / "spans.jsonl"
    write_lines(src, stream(otlp))
    out = tmp_path / "metrics.jsonl"
    proc = subprocess.run([sys.executable, "-m", "gensight", "replay", str(src), "--output", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert lines and all(json.loads(line)["resourceMetrics"] for line in lines)
    names = {r[1] for r in metric_rows(lines)}
    assert {"gensight.calls", "gensight.call.duration", "gensight.sli.latency", "gensight.sli.tool_success",
            "gensight.processor.spans"} <= names


def test_replay_reads_gzip_and_stdin_identically(tmp_path, otlp):
    reqs = stream(otlp)
    plain, gz = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    write_lines(plain, reqs)
    write_lines(gz, reqs, opener=gzip.open)
    from_gz = subprocess.run([sys.executable, "-m", "gensight", "replay", str(gz)],
                             capture_output=True, text=True, timeout=60)
    from_stdin = subprocess.run([sys.executable, "-m", "gensight", "replay", "-"], input=plain.read_text(),
                                capture_output=True, text=True, timeout=60)
    assert from_gz.returncode == from_stdin.returncode == 0
    assert from_gz.stdout == from_stdin.stdout and from_gz.stdout


def test_bad_lines_are_reported_and_skipped(tmp_path, otlp):
    src = tmp_path / "mixed.jsonl"
    write_lines(src, stream(otlp)[:2])
    with open(src, "a") as f:
        f.write("{not json\n")
    proc = subprocess.run([sys.executable, "-m", "gensight", "replay", str(src)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and ":3: skipped" in proc.stderr and "bad_lines 1" in proc.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gensight", "replay", str(tmp_path / "nope.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_replay_equals_live_on_the_same_spans(tmp_path, otlp):
    reqs = stream(otlp)
    src = tmp_path / "spans.jsonl"
    write_lines(src, reqs)

    # replay
    out = tmp_path / "replay.jsonl"
    sink = JsonLinesSink(out, append=False)
    replay_files([str(src)], config_from_mapping({}), sink)
    sink.shutdown()
    replay_rows = metric_rows(out.read_text().splitlines())

    # live: same requests over real gRPC, in order, then graceful stop (flush)
    class Sink:
        def __init__(self):
            self.rows = []

        def export(self, request):
            self.rows.extend(flatten(request))

    live = Sink()
    srv = ProcessorServer(config_from_mapping({"receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None}}),
                          sinks=[live])
    srv.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as ch:
            stub = trace_service_pb2_grpc.TraceServiceStub(ch)
            for r in reqs:
                stub.Export(r, timeout=5)
    finally:
        srv.stop()
    assert analysis_rows(replay_rows) == analysis_rows(live.rows)
    assert len(analysis_rows(replay_rows)) > 100


def test_replay_reads_lines_with_invalid_utf8_and_bad_spans(tmp_path, otlp):
    """A line holding invalid UTF-8 and a span with a bad id loses only that span: 99 calls of
    svc-a are counted, svc-b's call with its model repaired, the bad span counted as dropped."""
    good = otlp.request([otlp.chat(start=otlp.T0_NS + i * S // 10) for i in range(99)], service="svc-a")
    bad = otlp.request([otlp.chat("gpt-ZQZQ", start=otlp.T0_NS), otlp.chat(start=otlp.T0_NS)], service="svc-b")
    good.resource_spans.extend(bad.resource_spans)
    obj = message_to_otlp_json(good)
    obj["resourceSpans"][1]["scopeSpans"][0]["spans"][1]["spanId"] = "not hex"
    src = tmp_path / "spans.jsonl"
    src.write_bytes(json.dumps(obj).encode().replace(b"ZQZQ", b"\xff\xfe\xc3\x28") + b"\n")
    out = tmp_path / "metrics.jsonl"
    proc = subprocess.run([sys.executable, "-m", "gensight", "replay", str(src), "--output", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"{src}:1: 1 span(s) rejected, first: resourceSpans[1].scopeSpans[0].spans[1]" in proc.stderr
    assert "invalid UTF-8 replaced with U+FFFD in 1 string(s)" in proc.stderr
    calls: dict[tuple, float] = {}
    spans: dict[str, float] = {}
    for service, name, attrs, value in metric_rows(out.read_text().splitlines()):
        if name == "gensight.calls":
            calls[(service, dict(attrs)["gen_ai.request.model"])] = value
        elif name == "gensight.processor.spans":
            spans[dict(attrs)["outcome"]] = value
    assert calls == {("svc-a", "gpt-4o-mini"): 99, ("svc-b", "gpt-\ufffd\ufffd\ufffd("): 1}
    assert spans["dropped"] == 1 and spans["accepted"] == 100
