"""Evaluation results over real OTLP: the SDK's span and log exporters (gRPC and HTTP) into a
running processor; record_evaluation's log records join their calls and become quality SLIs.
Same limits, auth and back-pressure on the logs endpoints as on the trace ones."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from gensight.instrumentation import evaluation, manual, record_evaluation, record_feedback, track_llm_call
from gensight.processor.config import config_from_mapping
from gensight.processor.export.metric_builder import flatten
from gensight.processor.pipeline.pipeline import Pipeline
from gensight.processor.receive.grpc_receiver import GrpcReceiver, GrpcReceiverConfig
from gensight.processor.receive.http_receiver import HttpReceiver, HttpReceiverConfig
from gensight.processor.server import ProcessorServer


class Capture:
    def __init__(self) -> None:
        self.requests: list = []

    def export(self, request) -> bool:
        self.requests.append(request)
        return True

    def rows(self, name: str) -> list:
        return [r for req in self.requests for r in flatten(req) if r[1] == name]


def _config(protocol: str):
    receivers = {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None} if protocol == "grpc" else \
        {"grpc": None, "http": {"endpoint": "127.0.0.1:0"}}
    return config_from_mapping({"receivers": receivers, "pipeline": {"window_s": 3600, "idle_tick_s": 0.05}})


@pytest.fixture(params=["grpc", "http"])
def app_to_processor(request, monkeypatch):
    """A running processor and an app whose spans and logs go to it over the given protocol."""
    sink = Capture()
    server = ProcessorServer(_config(request.param), sinks=[sink])
    server.start()
    if request.param == "grpc":
        spans = GrpcSpanExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True)
        logs = GrpcLogExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True)
    else:
        spans = HttpSpanExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces")
        logs = HttpLogExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/logs")
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "chat-app"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=Resource.create({"service.name": "judge"}))
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    monkeypatch.setattr(manual, "_default", None)
    manual.configure(tracer_provider=tracer_provider, meter_provider=MeterProvider(), logger_provider=logger_provider)
    yield server, sink
    evaluation.set_logger_provider(None)
    tracer_provider.shutdown()
    logger_provider.shutdown()
    server.stop()


def _outcomes(sink: Capture) -> dict[str, float]:
    rows = sink.rows("gensight.processor.evaluations")
    last: dict[str, float] = {}
    for r in rows:
        attrs = dict(r[2])
        if r[0] != "judge":
            last[attrs["outcome"]] = r[3]
    return last


def test_evaluations_over_otlp_logs_join_their_calls_and_become_quality_slis(app_to_processor):
    server, sink = app_to_processor
    with track_llm_call("openai", "gpt-4o-mini", input_tokens=10, output_tokens=5) as a:
        a.set_response(id="resp_a")
    with track_llm_call("openai", "gpt-4o-mini", input_tokens=10, output_tokens=5) as b:
        b.set_response(id="resp_b")
    assert record_evaluation("relevance", score=0.9, span=a.invocation.span)  # by span id
    assert record_evaluation("relevance", score=0.5, response_id="resp_b")  # by response id only
    assert record_feedback("negative", response_id="resp_b")
    server.stop()
    quality = {dict(r[2])["gen_ai.evaluation.name"]: r[3] for r in sink.rows("gensight.sli.quality")}
    assert quality == {"relevance": pytest.approx(0.7)}
    ratio = {dict(r[2])["gen_ai.evaluation.name"]: r[3] for r in sink.rows("gensight.sli.quality_pass_ratio")}
    assert ratio == {"relevance": 1.0, "user_feedback": 0.0}
    (row,) = [r for r in sink.rows("gensight.sli.quality")]
    assert row[0] == "chat-app" and dict(row[2])["gen_ai.request.model"] == "gpt-4o-mini"
    assert _outcomes(sink) == {"joined": 3.0, "unjoined": 0.0, "late": 0.0, "dropped": 0.0}


def test_evaluations_whose_call_never_comes_are_unjoined_under_their_own_service(app_to_processor):
    server, sink = app_to_processor
    with track_llm_call("openai", "gpt-4o-mini", input_tokens=10, output_tokens=5):
        pass
    record_evaluation("relevance", score=0.9, response_id="resp_never_seen")
    server.stop()
    assert _outcomes(sink)["unjoined"] == 1.0
    judge = [r for r in sink.rows("gensight.processor.evaluations") if r[0] == "judge"]
    assert judge and judge[-1][3] == 1.0


# -- the logs endpoints follow the trace endpoints' rules --------------------------------------------

def _logs_request_json() -> bytes:
    return json.dumps({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "judge"}}]}, "scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1700000000000000000", "eventName": "gen_ai.evaluation.result",
            "spanId": "0102030405060708", "traceId": "0102030405060708090a0b0c0d0e0f10",
            "attributes": [{"key": "gen_ai.evaluation.name", "value": {"stringValue": "relevance"}},
                           {"key": "gen_ai.evaluation.score.value", "value": {"doubleValue": 0.25}}]}]}]}]}).encode()


def _post(port: int, body: bytes, content_type: str = "application/json", headers: dict | None = None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/logs", data=body, method="POST",
                                 headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@contextlib.contextmanager
def http_receiver(pipeline, cfg=None, *, logs: bool = True):
    rx = HttpReceiver(cfg or HttpReceiverConfig(endpoint="127.0.0.1:0"), pipeline.consume,
                      logs_consumer=pipeline.consume_logs if logs else None)
    rx.start()
    try:
        yield rx
    finally:
        rx.stop()


@pytest.fixture
def idle_pipeline():
    """A pipeline whose worker is not running, with a one-item queue: the second request is refused."""
    cfg = config_from_mapping({"queue": {"max_items": 1}})
    pipeline = Pipeline(cfg, [], live=True)
    yield pipeline


def test_http_logs_json_is_accepted_and_queued(idle_pipeline):
    with http_receiver(idle_pipeline) as rx:
        status, _, body = _post(rx.port, _logs_request_json())
        assert status == 200 and json.loads(body) == {}
        assert idle_pipeline.queue_size == 1


def test_http_logs_back_pressure_is_503_with_retry_after(idle_pipeline):
    with http_receiver(idle_pipeline) as rx:
        assert _post(rx.port, _logs_request_json())[0] == 200
        status, headers, _ = _post(rx.port, _logs_request_json())
        assert status == 503 and headers.get("Retry-After") == "1"


def test_http_logs_need_the_bearer_token_when_auth_is_on(idle_pipeline):
    cfg = config_from_mapping({"receivers": {"grpc": None, "http": {
        "endpoint": "127.0.0.1:0", "auth": {"bearer_tokens": ["s3cret"]}}}}).receivers.http
    with http_receiver(idle_pipeline, cfg) as rx:
        assert _post(rx.port, _logs_request_json())[0] == 401
        assert _post(rx.port, _logs_request_json(), headers={"Authorization": "Bearer s3cret"})[0] == 200


def test_http_logs_undecodable_protobuf_is_400(idle_pipeline):
    with http_receiver(idle_pipeline) as rx:
        assert _post(rx.port, b"\xff\xff\xff", "application/x-protobuf")[0] == 400


def test_http_logs_path_is_404_without_a_logs_consumer(idle_pipeline):
    with http_receiver(idle_pipeline, logs=False) as rx:
        assert _post(rx.port, _logs_request_json())[0] == 404


def test_grpc_logs_back_pressure_is_resource_exhausted(idle_pipeline):
    rx = GrpcReceiver(GrpcReceiverConfig(endpoint="127.0.0.1:0"), idle_pipeline.consume, logs_consumer=idle_pipeline.consume_logs)
    rx.start()
    try:
        from gensight.processor.receive.logs import logs_request_from_dict

        raw = logs_request_from_dict(json.loads(_logs_request_json())).SerializeToString()
        with grpc.insecure_channel(f"127.0.0.1:{rx.port}") as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
            export(raw, timeout=10)
            with pytest.raises(grpc.RpcError) as err:
                export(raw, timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as bad:
                export(b"\xff\xff\xff", timeout=10)
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        rx.stop()


def test_logs_that_are_not_evaluations_are_accepted_and_ignored(idle_pipeline):
    req = ExportLogsServiceRequest()
    req.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1, event_name="app.log")
    assert idle_pipeline.consume_logs(req).accepted
    assert idle_pipeline.queue_size == 0
