"""OTLP exporter: env resolution, retry rules, bounded buffer, outage recovery; JSON-lines sink.

Backends are real servers on loopback: a gRPC MetricsService/LogsService and an HTTP endpoint.
"""

from __future__ import annotations

import gzip
import http.server
import io
import json
import threading
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from gensight.processor.export.jsonlines import JsonLinesSink
from gensight.processor.export.otlp import OtlpExporter
from gensight.processor.export.otlp_settings import ExporterConfig, resolve_settings
from gensight.processor.export.otlp_transport import count_items
from gensight.processor.receive.grpc_receiver import retry_status


def metrics_request(tag: int, points: int = 1) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "svc"
    m = rm.scope_metrics.add().metrics.add(name="gensight.calls", unit="{call}")
    m.sum.is_monotonic = True
    m.sum.aggregation_temporality = 2
    for i in range(points):
        m.sum.data_points.add(as_int=tag, time_unix_nano=1000 + i)
    return req


def tag_of(req: ExportMetricsServiceRequest) -> int:
    return req.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].as_int


def logs_request(n: int = 2) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    sl = req.resource_logs.add().scope_logs.add()
    for i in range(n):
        sl.log_records.add(severity_number=13).body.string_value = f"alert {i}"
    return req


# ---------------------------------------------------------------- real backends


class GrpcSink:
    """A real gRPC OTLP metrics+logs backend. ``script`` holds failures to answer before succeeding."""

    def __init__(self, port: int = 0) -> None:
        self.received: list = []
        self.calls = 0
        self.script: list = []  # items: grpc.StatusCode, or a grpc.Status (abort_with_status)
        self.metadata: list[dict] = []
        self.partial = 0
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", 0)])
        handlers = {
            "opentelemetry.proto.collector.metrics.v1.MetricsService": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
            "opentelemetry.proto.collector.logs.v1.LogsService": (ExportLogsServiceRequest, ExportLogsServiceResponse),
        }
        for service, (req_t, resp_t) in handlers.items():
            self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {
                "Export": grpc.unary_unary_rpc_method_handler(
                    self._handler(resp_t), request_deserializer=req_t.FromString, response_serializer=resp_t.SerializeToString),
            }),))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def _handler(self, resp_t):
        def export(request, context):
            with self.lock:
                self.calls += 1
                self.metadata.append(dict(context.invocation_metadata()))
                step = self.script.pop(0) if self.script else None
            if isinstance(step, grpc.StatusCode):
                context.abort(step, "scripted failure")
            if step is not None:
                context.abort_with_status(step)
            with self.lock:
                self.received.append(request)
            resp = resp_t()
            if self.partial and resp_t is ExportMetricsServiceResponse:
                resp.partial_success.rejected_data_points = self.partial
                resp.partial_success.error_message = "some points rejected"
            return resp
        return export

    def stop(self) -> None:
        self.server.stop(0).wait(5)


class HttpSink:
    """A real OTLP/HTTP backend recording bodies; ``script`` = (status, headers) failures first."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict, bytes]] = []
        self.script: list[tuple[int, dict]] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                step = sink.script.pop(0) if sink.script else None
                if step is not None:
                    status, headers = step
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                sink.bodies.append((self.path, dict(self.headers), body))
                payload = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.port = int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def grpc_sink():
    sinks: list[GrpcSink] = []

    def make(port: int = 0) -> GrpcSink:
        sink = GrpcSink(port)
        sinks.append(sink)
        return sink

    yield make
    for s in sinks:
        s.stop()


@pytest.fixture
def http_sink():
    sink = HttpSink()
    yield sink
    sink.stop()


FAST = {"initial_backoff_s": 0.02, "max_backoff_s": 0.1, "timeout_s": 2.0}


@pytest.fixture
def exporter():
    made: list[OtlpExporter] = []

    def make(endpoint: str, protocol: str = "grpc", signal: str = "metrics", env=None, **cfg) -> OtlpExporter:
        for k, v in FAST.items():
            cfg.setdefault(k, v)
        config = ExporterConfig(endpoint=endpoint, protocol=protocol, **cfg)
        config.validate(env=env or {})
        exp = OtlpExporter(config, signal, env=env or {})
        made.append(exp)
        return exp

    yield make
    for exp in made:
        exp.shutdown(timeout_s=0.5)


# ---------------------------------------------------------------- gRPC delivery and retry rules


def test_grpc_delivers_metrics(grpc_sink, exporter):
    sink = grpc_sink()
    exp = exporter(f"http://127.0.0.1:{sink.port}")
    assert exp.export(metrics_request(1, points=3))
    assert exp.force_flush(10)
    assert [tag_of(r) for r in sink.received] == [1]
    st = exp.stats()
    assert (st.sent_requests, st.sent_items, st.dropped_requests) == (1, 3, 0)


def test_grpc_delivers_logs(grpc_sink, exporter):
    sink = grpc_sink()
    exp = exporter(f"http://127.0.0.1:{sink.port}", signal="logs")
    exp.export(logs_request(2))
    assert exp.force_flush(10)
    assert sink.received[0].resource_logs[0].scope_logs[0].log_records[1].body.string_value == "alert 1"


def test_grpc_sends_headers_as_metadata_and_gzip(grpc_sink, exporter):
    sink = grpc_sink()
    exp = exporter(f"http://127.0.0.1:{sink.port}", headers={"Authorization": "Bearer t0k"}, compression="gzip")
    exp.export(metrics_request(1))
    assert exp.force_flush(10)
    assert sink.metadata[0]["authorization"] == "Bearer t0k"


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
                                  grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.DATA_LOSS, grpc.StatusCode.CANCELLED])
def test_grpc_retryable_codes_are_retried(grpc_sink, exporter, code):
    sink = grpc_sink()
    sink.script = [code, code]
    exp = exporter(f"http://127.0.0.1:{sink.port}")
    exp.export(metrics_request(7))
    assert exp.force_flush(10)
    assert [tag_of(r) for r in sink.received] == [7]
    assert exp.stats().retries == 2


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_grpc_non_retryable_codes_are_dropped_and_counted(grpc_sink, exporter, code):
    sink = grpc_sink()
    sink.script = [code]
    exp = exporter(f"http://127.0.0.1:{sink.port}")
    exp.export(metrics_request(1, points=4))
    assert exp.force_flush(10)
    st = exp.stats()
    assert sink.calls == 1 and sink.received == []
    assert (st.dropped_requests, st.dropped_items, st.retries) == (1, 4, 0)


def test_grpc_resource_exhausted_with_retry_info_is_retried(grpc_sink, exporter):
    sink = grpc_sink()
    sink.script = [retry_status("busy", 0.01)]
    exp = exporter(f"http://127.0.0.1:{sink.port}")
    exp.export(metrics_request(3))
    assert exp.force_flush(10)
    assert [tag_of(r) for r in sink.received] == [3] and exp.stats().retries == 1


def test_partial_success_is_counted_as_rejected(grpc_sink, exporter):
    sink = grpc_sink()
    sink.partial = 2
    exp = exporter(f"http://127.0.0.1:{sink.port}")
    exp.export(metrics_request(1, points=5))
    assert exp.force_flush(10)
    st = exp.stats()
    assert (st.sent_items, st.rejected_items) == (5, 2)


def test_outage_buffers_then_delivers_and_drops_oldest_beyond_the_bound(grpc_sink, exporter):
    """The backend is down: export() keeps returning, the newest `max_queue_requests` wait, the rest
    are dropped and counted; when the backend comes up on the same port, the buffer is delivered."""
    probe = grpc_sink()
    port = probe.port
    probe.stop()  # the port is now closed: the backend is "down"
    exp = exporter(f"http://127.0.0.1:{port}", max_queue_requests=5, max_backoff_s=0.05)
    results = [exp.export(metrics_request(i, points=2)) for i in range(12)]
    assert all(results)  # export() accepted every call without waiting for the backend
    st = exp.stats()
    assert st.sent_requests == 0
    assert st.dropped_requests >= 6 and st.dropped_items == 2 * st.dropped_requests
    sink = grpc_sink(port)  # backend comes back
    assert exp.force_flush(15)
    tags = [tag_of(r) for r in sink.received]
    assert tags == sorted(tags) and tags[-1] == 11  # newest kept, in order
    st = exp.stats()
    assert st.sent_requests + st.dropped_requests == 12
    assert st.sent_requests == len(tags) >= 5


def test_item_bound_also_limits_the_buffer(grpc_sink, exporter):
    probe = grpc_sink()
    port = probe.port
    probe.stop()
    exp = exporter(f"http://127.0.0.1:{port}", max_queue_items=10, max_backoff_s=0.05)
    for i in range(8):
        exp.export(metrics_request(i, points=4))
    st = exp.stats()
    assert st.queued_items <= 10 + 4  # buffer bound plus the one request in flight
    assert st.dropped_items >= 32 - 14


def test_shutdown_with_backend_down_returns_and_counts_what_was_left(grpc_sink):
    probe = grpc_sink()
    port = probe.port
    probe.stop()
    exp = OtlpExporter(ExporterConfig(endpoint=f"http://127.0.0.1:{port}", protocol="grpc", **FAST), env={})
    for i in range(3):
        exp.export(metrics_request(i))
    assert exp.shutdown(timeout_s=0.3) is False
    st = exp.stats()
    assert st.dropped_requests == 3 and st.queued_requests == 0
    assert exp.export(metrics_request(9)) is False  # closed
    assert exp.stats().dropped_requests == 4


def test_shutdown_flushes_pending_data(grpc_sink):
    sink = grpc_sink()
    exp = OtlpExporter(ExporterConfig(endpoint=f"http://127.0.0.1:{sink.port}", protocol="grpc", **FAST), env={})
    for i in range(3):
        exp.export(metrics_request(i))
    assert exp.shutdown(timeout_s=10)
    assert [tag_of(r) for r in sink.received] == [0, 1, 2]


def test_max_retry_elapsed_gives_up_and_counts(grpc_sink, exporter):
    sink = grpc_sink()
    sink.script = [grpc.StatusCode.UNAVAILABLE] * 100
    exp = exporter(f"http://127.0.0.1:{sink.port}", max_retry_elapsed_s=0.1)
    exp.export(metrics_request(1))
    assert exp.force_flush(10)
    assert exp.stats().dropped_requests == 1 and sink.received == []


# ---------------------------------------------------------------- HTTP


def test_http_delivers_to_the_signal_path_with_gzip(http_sink, exporter):
    exp = exporter(f"http://127.0.0.1:{http_sink.port}", protocol="http/protobuf", compression="gzip")
    exp.export(metrics_request(5))
    assert exp.force_flush(10)
    path, headers, body = http_sink.bodies[0]
    assert path == "/v1/metrics"
    assert headers["Content-Type"] == "application/x-protobuf" and headers["Content-Encoding"] == "gzip"
    assert tag_of(ExportMetricsServiceRequest.FromString(body)) == 5


def test_http_logs_go_to_v1_logs(http_sink, exporter):
    exp = exporter(f"http://127.0.0.1:{http_sink.port}", protocol="http/protobuf", signal="logs")
    exp.export(logs_request(1))
    assert exp.force_flush(10)
    assert http_sink.bodies[0][0] == "/v1/logs"


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_http_retryable_statuses_are_retried_honouring_retry_after(http_sink, exporter, status):
    http_sink.script = [(status, {"Retry-After": "0"})]
    exp = exporter(f"http://127.0.0.1:{http_sink.port}", protocol="http/protobuf", initial_backoff_s=5, max_backoff_s=5)
    exp.export(metrics_request(2))
    assert exp.force_flush(10)  # would take >= 4 s without Retry-After: 0
    assert len(http_sink.bodies) == 1 and exp.stats().retries == 1


@pytest.mark.parametrize("status", [400, 401, 404, 413, 500])
def test_http_non_retryable_statuses_are_dropped(http_sink, exporter, status):
    http_sink.script = [(status, {})]
    exp = exporter(f"http://127.0.0.1:{http_sink.port}", protocol="http/protobuf")
    exp.export(metrics_request(2, points=3))
    assert exp.force_flush(10)
    st = exp.stats()
    assert http_sink.bodies == [] and (st.dropped_requests, st.dropped_items, st.retries) == (1, 3, 0)


def test_http_explicit_endpoint_with_path_is_used_as_is(http_sink, exporter):
    exp = exporter(f"http://127.0.0.1:{http_sink.port}/custom/ingest", protocol="http/protobuf")
    exp.export(metrics_request(1))
    assert exp.force_flush(10)
    assert http_sink.bodies[0][0] == "/custom/ingest"


# ---------------------------------------------------------------- env resolution


def settings(env, signal="metrics", **cfg):
    return resolve_settings(ExporterConfig(**cfg), signal, env)


def test_defaults_are_grpc_to_localhost_like_the_python_sdk():
    s = settings({})
    assert (s.protocol, s.endpoint, s.insecure, s.timeout_s, s.compression) == ("grpc", "localhost:4317", True, 10.0, "none")


def test_http_default_endpoint():
    assert settings({}, protocol="http/protobuf").endpoint == "http://localhost:4318/v1/metrics"


def test_generic_endpoint_gets_the_signal_path_for_http():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/base/", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    assert settings(env).endpoint == "http://collector:4318/base/v1/metrics"
    assert settings(env, "logs").endpoint == "http://collector:4318/base/v1/logs"


def test_signal_endpoint_is_used_as_is_and_wins_over_generic():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://b:9999/m",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    assert settings(env).endpoint == "http://b:9999/m"
    assert settings(env, "logs").endpoint == "http://a:4318/v1/logs"


def test_explicit_config_wins_over_env():
    env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://b:9999/m", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
           "OTEL_EXPORTER_OTLP_TIMEOUT": "500", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}
    s = settings(env, endpoint="http://c:4318", protocol="http/protobuf", timeout_s=3, headers={"x": "y"})
    assert (s.endpoint, s.protocol, s.timeout_s, s.headers) == ("http://c:4318/v1/metrics", "http/protobuf", 3.0, {"x": "y"})


def test_signal_protocol_wins_over_generic():
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"}
    s = settings(env)
    assert (s.protocol, s.endpoint) == ("grpc", "localhost:4317")
    assert settings(env, "logs").protocol == "http/protobuf"


def test_grpc_scheme_decides_tls_and_bare_host_follows_insecure():
    assert settings({}, protocol="grpc", endpoint="http://h:4317").insecure is True
    assert settings({}, protocol="grpc", endpoint="https://h:4317").insecure is False
    assert settings({}, protocol="grpc", endpoint="h:4317").insecure is False
    assert settings({"OTEL_EXPORTER_OTLP_INSECURE": "true"}, protocol="grpc", endpoint="h:4317").insecure is True
    assert settings({"OTEL_EXPORTER_OTLP_METRICS_INSECURE": "true"}, protocol="grpc", endpoint="h:4317").insecure is True


def test_headers_timeout_compression_from_env_with_signal_precedence():
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "api-key=gen%20eric,x=1", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "api-key=specific",
           "OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip"}
    s = settings(env)
    assert (s.headers, s.timeout_s, s.compression) == ({"api-key": "specific"}, 2.5, "gzip")
    s = settings(env, "logs")
    assert (s.headers, s.compression) == ({"api-key": "gen eric", "x": "1"}, "none")


def test_certificate_from_env(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert settings({"OTEL_EXPORTER_OTLP_CERTIFICATE": str(ca)}).certificate_file == str(ca)


@pytest.mark.parametrize(
    ("env", "cfg", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/xml"}, {}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "soon"}, {}, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, {}, "OTEL_EXPORTER_OTLP_COMPRESSION"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, {}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent.pem"}, {}, "OTEL_EXPORTER_OTLP_CERTIFICATE"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"}, {}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({}, {"protocol": "udp"}, "exporter.protocol"),
        ({}, {"max_queue_requests": 0}, "exporter.max_queue_requests"),
        ({}, {"initial_backoff_s": 0}, "exporter.initial_backoff_s"),
        ({}, {"endpoint": "nohost"}, "exporter.endpoint"),
        ({}, {"certificate_file": "/nonexistent.pem"}, "exporter.certificate_file"),
    ],
)
def test_bad_settings_fail_fast_naming_the_key(env, cfg, message):
    with pytest.raises(ValueError, match=message):
        ExporterConfig(**cfg).validate(env=env)


# ---------------------------------------------------------------- JSON lines sink


def test_json_lines_sink_writes_one_otlp_json_line_per_request(tmp_path):
    path = tmp_path / "out.jsonl"
    sink = JsonLinesSink(path)
    sink.export(metrics_request(1))
    sink.export(logs_request(1))
    sink.shutdown()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["aggregationTemporality"] == 2
    assert "resourceLogs" in json.loads(lines[1])
    assert sink.export(metrics_request(2)) is False  # after shutdown


def test_json_lines_sink_to_a_stream():
    buf = io.StringIO()
    sink = JsonLinesSink(buf)
    sink.export(metrics_request(1))
    assert buf.getvalue().count("\n") == 1


def test_count_items_rejects_other_messages():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    assert count_items(metrics_request(1, points=3)) == 3
    with pytest.raises(TypeError):
        count_items(ExportTraceServiceRequest())


def test_http_json_sends_otlp_json(http_sink, exporter):
    exp = exporter(f"http://127.0.0.1:{http_sink.port}", protocol="http/json")
    exp.export(metrics_request(4))
    assert exp.force_flush(10)
    path, headers, body = http_sink.bodies[0]
    assert path == "/v1/metrics" and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]["asInt"] == "4"


def test_the_yaml_export_section_is_the_exporter_config(grpc_sink):
    from gensight.processor.config import config_from_mapping
    from gensight.processor.export.otlp import OtlpSink

    sink = grpc_sink()
    section = config_from_mapping({"export": {"endpoint": f"http://127.0.0.1:{sink.port}",
                                              "headers": {"x-tenant": "a"}}}).export
    out = OtlpSink(section, env={})
    try:
        assert out.metrics.settings.protocol == "grpc" and out.metrics.settings.insecure
        out.export(metrics_request(1))
        assert out.force_flush(10)
        assert sink.metadata[0]["x-tenant"] == "a"
        assert out.delivery_stats().sent_items == 1
    finally:
        out.shutdown(1)
