"""Through a real collector: app (OTel SDK) → rotel (Rust OTLP collector) → gensight serve."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from gensight.processor.config import config_from_mapping
from gensight.processor.export.metric_builder import flatten
from gensight.processor.server import ProcessorServer


def rotel_binary() -> Path:
    rotel = pytest.importorskip("rotel")
    path = Path(rotel.__file__).parent / "rotel-agent"
    if not path.exists():
        pytest.skip("rotel-agent binary not present")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


class Sink:
    def __init__(self) -> None:
        self.rows: list = []

    def export(self, request) -> None:
        self.rows.extend(flatten(request))


@pytest.fixture
def processor():
    sink = Sink()
    srv = ProcessorServer(config_from_mapping({"receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None}}),
                          sinks=[sink])
    srv.start()
    yield srv, sink
    srv.stop()


@pytest.fixture
def rotel(tmp_path, processor):
    srv, _ = processor
    grpc_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
    proc = subprocess.Popen(
        [str(rotel_binary()), "start",
         "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}", "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
         "--otlp-grpc-max-recv-msg-size-mib", "16",
         "--exporter", "otlp", "--otlp-exporter-endpoint", f"http://127.0.0.1:{srv.grpc_port}",
         "--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel.log"),
         "--batch-timeout", "50ms"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    try:
        wait_for_port(grpc_port)
        yield grpc_port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_spans_through_rotel_become_metrics(processor, rotel, sdk_spans):
    srv, sink = processor
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{rotel}", insecure=True)
    try:
        assert exporter.export(sdk_spans(5, service="support-bot", model="gpt-4o")) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    deadline = time.monotonic() + 15
    while srv.pipeline.counts["accepted"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.stop()
    calls = [r for r in sink.rows if r[1] == "gensight.calls"]
    assert sum(r[3] for r in calls) == 5
    assert {r[0] for r in calls} == {"support-bot"}
    assert dict(calls[0][2])["gen_ai.request.model"] == "gpt-4o"
