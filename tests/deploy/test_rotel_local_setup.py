"""The Docker-free set-up in collector-config/README.md works as written: rotel started with the
README's own flags receives an app's spans over OTLP/gRPC and forwards them to the processor's
endpoint (here a gRPC TraceService sink standing in for `gensight serve`)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "collector-config" / "README.md"


def readme_rotel_args() -> list[str]:
    """The arguments after `rotel-agent" start` in the README's shell block."""
    text = README.read_text()
    m = re.search(r"rotel-agent[^\n]*\sstart\s*\\\n((?:.*\\\n)*.*\n)", text)
    assert m, "no rotel-agent start command in collector-config/README.md"
    return shlex.split(m.group(1).replace("\\\n", " "))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


class TraceSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = threading.Event()

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def sink():
    servicer = TraceSink()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(grace=None)


@pytest.fixture
def rotel(tmp_path, sink):
    rotel_mod = pytest.importorskip("rotel")
    binary = Path(rotel_mod.__file__).parent / "rotel-agent"
    if not binary.exists():
        pytest.skip("rotel-agent binary not present in the rotel package")
    _, sink_port = sink
    grpc_port, http_port = free_port(), free_port()
    args = [a.replace("127.0.0.1:4317", f"127.0.0.1:{grpc_port}")
             .replace("127.0.0.1:4318", f"127.0.0.1:{http_port}")
             .replace("http://127.0.0.1:24317", f"http://127.0.0.1:{sink_port}") for a in readme_rotel_args()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROTEL_")}
    proc = subprocess.Popen(
        [str(binary), "start", *args, "--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    try:
        wait_for_port(grpc_port)
        yield grpc_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_readme_command_names_the_ports_the_docs_use():
    args = readme_rotel_args()
    assert args[args.index("--otlp-grpc-endpoint") + 1] == "127.0.0.1:4317"
    assert args[args.index("--otlp-exporter-endpoint") + 1] == "http://127.0.0.1:24317"
    assert "--otlp-receiver-metrics-disabled" in args


def test_readme_rotel_command_forwards_app_spans_to_the_processor_endpoint(sink, rotel):
    servicer, _ = sink
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-assistant"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{rotel}", insecure=True)))
    with provider.get_tracer("test").start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
    provider.shutdown()
    assert servicer.received.wait(timeout=15), "rotel forwarded nothing to the processor endpoint"
    spans = [(rs.resource, s) for r in servicer.requests for rs in r.resource_spans
             for ss in rs.scope_spans for s in ss.spans]
    assert [s.name for _, s in spans] == ["chat gpt-4o-mini"]
    resource_attrs = {kv.key: kv.value.string_value for kv in spans[0][0].attributes}
    assert resource_attrs["service.name"] == "chat-assistant"
