"""OTLP/gRPC receiver, driven by the real SDK OTLPSpanExporter and raw gRPC calls on loopback."""

from __future__ import annotations

import threading

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult
from recorder import Recorder

from gensight.processor.receive.admission import ACCEPTED, Admission, count_spans
from gensight.processor.receive.grpc_receiver import GrpcReceiver, GrpcReceiverConfig
from gensight.processor.receive.tls import AuthConfig, TlsConfig

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def start_receiver():
    started: list[GrpcReceiver] = []

    def start(consumer, ready=None, **cfg) -> GrpcReceiver:
        config = GrpcReceiverConfig(endpoint="127.0.0.1:0", **cfg)
        config.validate()
        rx = GrpcReceiver(config, consumer, ready=ready)
        rx.start()
        started.append(rx)
        return rx

    yield start
    for rx in started:
        rx.stop(grace_s=0.5)


@pytest.fixture
def exporters():
    made: list[OTLPSpanExporter] = []

    def make(port: int, host: str = "127.0.0.1", **kw) -> OTLPSpanExporter:
        kw.setdefault("insecure", "credentials" not in kw)
        kw.setdefault("timeout", 5)
        exp = OTLPSpanExporter(endpoint=f"{host}:{port}", **kw)
        made.append(exp)
        return exp

    yield make
    for exp in made:
        exp.shutdown()


def raw_export(port: int, body: bytes, metadata=None, compression=None):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)
        return call.with_call(body, timeout=5, metadata=metadata, compression=compression)


def test_sdk_exporter_delivers_spans(start_receiver, exporters, sdk_spans):
    rec = Recorder()
    rx = start_receiver(rec)
    assert exporters(rx.port).export(sdk_spans(3)) == SpanExportResult.SUCCESS
    assert rec.spans == 3
    rs = rec.requests[0].resource_spans[0]
    assert {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"] == "chat-app"
    names = {a.key for a in rs.scope_spans[0].spans[0].attributes}
    assert "gen_ai.request.model" in names


def test_sdk_exporter_with_gzip_is_accepted(start_receiver, exporters, sdk_spans):
    rec = Recorder()
    rx = start_receiver(rec)
    assert exporters(rx.port, compression=Compression.Gzip).export(sdk_spans(5)) == SpanExportResult.SUCCESS
    assert rec.spans == 5


def test_partial_success_reaches_the_client(start_receiver, make_request):
    rx = start_receiver(Recorder(Admission(True, rejected_spans=2, error_message="2 spans lack a model")))
    resp, call = raw_export(rx.port, make_request(3).SerializeToString())
    assert call.code() == grpc.StatusCode.OK
    assert resp.partial_success.rejected_spans == 2
    assert resp.partial_success.error_message == "2 spans lack a model"
    assert rx.stats().partial == 1


def test_refusal_is_resource_exhausted_with_retry_info_in_status_details(start_receiver, make_request):
    rx = start_receiver(Recorder(Admission(False, error_message="queue full", retry_after_s=2.5)))
    with pytest.raises(grpc.RpcError) as err:
        raw_export(rx.port, make_request(1).SerializeToString())
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(err.value)
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert (info.retry_delay.seconds, info.retry_delay.nanos) == (2, 500_000_000)


def test_sdk_exporter_retries_resource_exhausted_and_then_succeeds(start_receiver, exporters, sdk_spans):
    rec = Recorder(Admission(False, error_message="queue full", retry_after_s=0.05))
    rx = start_receiver(rec)
    assert exporters(rx.port).export(sdk_spans(2)) == SpanExportResult.SUCCESS
    assert len(rec.requests) == 2  # refused once, retried after RetryInfo's delay, accepted


def test_refusal_without_delay_is_unavailable(start_receiver, make_request):
    rx = start_receiver(Recorder(Admission(False, error_message="shutting down")))
    with pytest.raises(grpc.RpcError) as err:
        raw_export(rx.port, make_request(1).SerializeToString())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x03\x0a\x01\xff"], ids=["garbage", "truncated", "bad-nesting"])
def test_malformed_protobuf_is_invalid_argument(start_receiver, body):
    rec = Recorder()
    rx = start_receiver(rec)
    with pytest.raises(grpc.RpcError) as err:
        raw_export(rx.port, body)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "protobuf" in err.value.details()
    assert rec.requests == [] and rx.stats().invalid == 1


def test_message_over_the_size_limit_is_refused(start_receiver):
    rx = start_receiver(Recorder(), max_recv_msg_size_mib=1)
    with pytest.raises(grpc.RpcError) as err:
        raw_export(rx.port, b"\x0a" + b"\x80\x80\x40" + b"x" * (1024 * 1024 + 10))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_consumer_exception_is_internal_and_server_survives(start_receiver, make_request):
    calls = []

    def broken(request, raw=None):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return ACCEPTED

    rx = start_receiver(broken)
    with pytest.raises(grpc.RpcError) as err:
        raw_export(rx.port, make_request(1).SerializeToString())
    assert err.value.code() == grpc.StatusCode.INTERNAL
    _, call = raw_export(rx.port, make_request(1).SerializeToString())
    assert call.code() == grpc.StatusCode.OK


def test_gzip_compressed_raw_call_is_decoded(start_receiver, make_request):
    rec = Recorder()
    rx = start_receiver(rec)
    raw_export(rx.port, make_request(4).SerializeToString(), compression=grpc.Compression.Gzip)
    assert rec.spans == 4


# ---------------------------------------------------------------- health


def health_status(port: int, service: str = "") -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_health_is_serving_while_running(start_receiver):
    rx = start_receiver(Recorder())
    assert health_status(rx.port) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(rx.port, "opentelemetry.proto.collector.trace.v1.TraceService") == health_pb2.HealthCheckResponse.SERVING


def test_health_is_not_serving_when_not_ready(start_receiver):
    ready = [True]
    rx = start_receiver(Recorder(), ready=lambda: ready[0])
    ready[0] = False
    assert health_status(rx.port) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_stop_turns_health_not_serving_before_closing(make_request):
    cfg = GrpcReceiverConfig(endpoint="127.0.0.1:0")
    rx = GrpcReceiver(cfg, Recorder())
    rx.start()
    rx._health.enter_graceful_shutdown()  # the first step of stop()
    try:
        assert health_status(rx.port) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        rx.stop(grace_s=0.5)
    with pytest.raises(grpc.RpcError):
        raw_export(rx.port, make_request(1).SerializeToString())


# ---------------------------------------------------------------- auth and TLS


def test_bearer_token_is_required_when_auth_is_on(start_receiver, exporters, sdk_spans):
    rec = Recorder()
    rx = start_receiver(rec, auth=AuthConfig(bearer_tokens=("s3cret",)))
    assert exporters(rx.port).export(sdk_spans(1)) == SpanExportResult.FAILURE
    assert rec.requests == [] and rx.stats().unauthenticated == 1


def test_wrong_bearer_token_is_unauthenticated(start_receiver, make_request):
    rx = start_receiver(Recorder(), auth=AuthConfig(bearer_tokens=("s3cret",)))
    with pytest.raises(grpc.RpcError) as err:
        raw_export(rx.port, make_request(1).SerializeToString(), metadata=(("authorization", "Bearer nope"),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_valid_bearer_token_is_accepted(start_receiver, exporters, sdk_spans):
    rec = Recorder()
    rx = start_receiver(rec, auth=AuthConfig(bearer_tokens=("s3cret",)))
    exp = exporters(rx.port, headers={"authorization": "Bearer s3cret"})
    assert exp.export(sdk_spans(2)) == SpanExportResult.SUCCESS
    assert rec.spans == 2


def test_health_needs_no_token(start_receiver):
    rx = start_receiver(Recorder(), auth=AuthConfig(bearer_tokens=("s3cret",)))
    assert health_status(rx.port) == health_pb2.HealthCheckResponse.SERVING


def test_tls_receiver_accepts_sdk_exporter_trusting_the_ca(start_receiver, exporters, sdk_spans, certs):
    rec = Recorder()
    rx = start_receiver(rec, tls=TlsConfig(str(certs.server_cert), str(certs.server_key)))
    creds = grpc.ssl_channel_credentials(root_certificates=certs.ca_cert.read_bytes())
    assert exporters(rx.port, host="localhost", credentials=creds, insecure=False).export(sdk_spans(2)) == SpanExportResult.SUCCESS
    assert rec.spans == 2


def test_mtls_receiver_accepts_a_client_certificate(start_receiver, exporters, sdk_spans, certs):
    rec = Recorder()
    rx = start_receiver(rec, tls=TlsConfig(str(certs.server_cert), str(certs.server_key), str(certs.ca_cert)))
    creds = grpc.ssl_channel_credentials(
        root_certificates=certs.ca_cert.read_bytes(),
        private_key=certs.client_key.read_bytes(),
        certificate_chain=certs.client_cert.read_bytes(),
    )
    assert exporters(rx.port, host="localhost", credentials=creds, insecure=False).export(sdk_spans(1)) == SpanExportResult.SUCCESS


def test_mtls_receiver_refuses_a_client_without_certificate(start_receiver, exporters, sdk_spans, certs):
    rec = Recorder()
    rx = start_receiver(rec, tls=TlsConfig(str(certs.server_cert), str(certs.server_key), str(certs.ca_cert)))
    creds = grpc.ssl_channel_credentials(root_certificates=certs.ca_cert.read_bytes())
    exp = exporters(rx.port, host="localhost", credentials=creds, insecure=False, timeout=1)
    assert exp.export(sdk_spans(1)) == SpanExportResult.FAILURE
    assert rec.requests == []


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"endpoint": "nohostport"}, "receivers.grpc.endpoint"),
        ({"endpoint": "127.0.0.1:99999"}, "receivers.grpc.endpoint"),
        ({"max_recv_msg_size_mib": 0}, "receivers.grpc.max_recv_msg_size_mib"),
        ({"max_workers": 0}, "receivers.grpc.max_workers"),
        ({"tls": TlsConfig("/nonexistent/cert.pem", "/nonexistent/key.pem")}, "receivers.grpc.tls.cert_file"),
        ({"auth": AuthConfig(bearer_tokens=("",))}, r"receivers.grpc.auth.bearer_tokens\[0\]"),
    ],
)
def test_config_validation_names_the_bad_key(cfg, message):
    with pytest.raises(ValueError, match=message):
        GrpcReceiverConfig(**cfg).validate()


def test_binding_a_busy_port_fails_with_a_clear_error(start_receiver):
    rx = start_receiver(Recorder())
    other = GrpcReceiver(GrpcReceiverConfig(endpoint=f"127.0.0.1:{rx.port}"), Recorder())
    with pytest.raises(OSError, match="cannot bind gRPC receiver"):
        other.start()


def test_full_queue_refuses_then_recovers_when_drained(start_receiver, exporters, sdk_spans):
    """A real BoundedQueue behind the receiver: when full, the SDK exporter is told to retry
    (RESOURCE_EXHAUSTED + RetryInfo); once the queue drains, its retry is accepted."""
    from gensight.processor.pipeline.queue import BoundedQueue
    from gensight.processor.receive.admission import QueueConsumer

    q: BoundedQueue = BoundedQueue(max_items=2)
    rx = start_receiver(QueueConsumer(q, retry_after_s=0.05))
    exp = exporters(rx.port, timeout=10)
    assert exp.export(sdk_spans(1)) == SpanExportResult.SUCCESS
    assert exp.export(sdk_spans(1)) == SpanExportResult.SUCCESS
    result: list = []
    t = threading.Thread(target=lambda: result.append(exp.export(sdk_spans(3))))
    t.start()
    try:
        for _ in range(200):  # wait (bounded) until the receiver has refused at least once
            if rx.stats().refused:
                break
            threading.Event().wait(0.02)
        assert rx.stats().refused >= 1
        assert q.get(0) is not None and q.get(0) is not None  # the analysis side catches up
    finally:
        t.join(15)
    assert result == [SpanExportResult.SUCCESS]
    assert count_spans(q.get(0)) == 3


def test_sdk_exporter_treats_partial_success_as_success_without_retry(start_receiver, exporters, sdk_spans):
    rec = Recorder(Admission(True, rejected_spans=1, error_message="1 span unusable"))
    rx = start_receiver(rec)
    assert exporters(rx.port).export(sdk_spans(2)) == SpanExportResult.SUCCESS
    assert len(rec.requests) == 1 and rx.stats().partial == 1


def test_gzip_message_expanding_beyond_the_limit_is_refused(start_receiver):
    """The size limit applies after decompression: a small gzip bomb does not get through."""
    rec = Recorder()
    rx = start_receiver(rec, max_recv_msg_size_mib=1)
    body = b"\x0a\x80\x80\x80\x01" + b"\0" * (2 * 1024 * 1024)  # 2 MiB of zeros: compresses to ~2 KiB
    with pytest.raises(grpc.RpcError) as err:
        raw_export(rx.port, body, compression=grpc.Compression.Gzip)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert rec.requests == []
