"""OTLP/HTTP receiver, driven by the real SDK OTLPSpanExporter (HTTP) and raw HTTP on loopback."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import ssl
import threading

import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult
from recorder import Recorder

from gensight.processor.receive.admission import ACCEPTED, Admission
from gensight.processor.receive.decode import message_to_otlp_json
from gensight.processor.receive.http_receiver import INLINE_MAX_BYTES, HttpReceiver, HttpReceiverConfig
from gensight.processor.receive.tls import AuthConfig, TlsConfig

PB = "application/x-protobuf"


@pytest.fixture
def start_receiver():
    started: list[HttpReceiver] = []

    def start(consumer, ready=None, **cfg) -> HttpReceiver:
        config = HttpReceiverConfig(endpoint="127.0.0.1:0", **cfg)
        config.validate()
        rx = HttpReceiver(config, consumer, ready=ready)
        rx.start()
        started.append(rx)
        return rx

    yield start
    for rx in started:
        rx.stop(grace_s=1.0)


@pytest.fixture
def exporters(monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's CA file (psf/requests#3829);
    # this machine sets both, which would hide the exporter's certificate_file.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    made: list[OTLPSpanExporter] = []

    def make(port: int, scheme: str = "http", host: str = "127.0.0.1", **kw) -> OTLPSpanExporter:
        kw.setdefault("timeout", 5)
        exp = OTLPSpanExporter(endpoint=f"{scheme}://{host}:{port}/v1/traces", **kw)
        made.append(exp)
        return exp

    yield make
    for exp in made:
        exp.shutdown()


def post(port: int, body: bytes, content_type: str | None = PB, path: str = "/v1/traces", method: str = "POST", **headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        hdrs = dict(headers)
        if content_type:
            hdrs["Content-Type"] = content_type
        conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in hdrs.items()})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def status_body(data: bytes) -> status_pb2.Status:
    return status_pb2.Status.FromString(data)


def test_sdk_exporter_delivers_spans(start_receiver, exporters, sdk_spans):
    rec = Recorder()
    rx = start_receiver(rec)
    assert exporters(rx.port).export(sdk_spans(3)) == SpanExportResult.SUCCESS
    assert rec.spans == 3


def test_sdk_exporter_with_gzip_is_accepted(start_receiver, exporters, sdk_spans):
    rec = Recorder()
    rx = start_receiver(rec)
    assert exporters(rx.port, compression=Compression.Gzip).export(sdk_spans(4)) == SpanExportResult.SUCCESS
    assert rec.spans == 4


def test_json_body_is_accepted_and_answered_in_json(start_receiver, make_request):
    rec = Recorder()
    rx = start_receiver(rec)
    sent = make_request(2)
    status, headers, body = post(rx.port, json.dumps(message_to_otlp_json(sent)).encode(), "application/json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {}
    assert rec.requests == [sent]


def test_partial_success_is_reported_in_protobuf(start_receiver, make_request):
    rx = start_receiver(Recorder(Admission(True, rejected_spans=1, error_message="1 span has no model")))
    status, _, body = post(rx.port, make_request(2).SerializeToString())
    resp = ExportTraceServiceResponse.FromString(body)
    assert status == 200
    assert (resp.partial_success.rejected_spans, resp.partial_success.error_message) == (1, "1 span has no model")


def test_partial_success_is_reported_in_json(start_receiver, make_request):
    rx = start_receiver(Recorder(Admission(True, rejected_spans=1, error_message="bad")))
    _, _, body = post(rx.port, json.dumps(message_to_otlp_json(make_request(2))).encode(), "application/json")
    assert json.loads(body) == {"partialSuccess": {"rejectedSpans": "1", "errorMessage": "bad"}}


def test_refusal_is_503_with_retry_after(start_receiver, make_request):
    rx = start_receiver(Recorder(Admission(False, error_message="queue full", retry_after_s=2.2)))
    status, headers, body = post(rx.port, make_request(1).SerializeToString())
    assert status == 503 and headers["Retry-After"] == "3"
    assert status_body(body).message == "queue full"


def test_sdk_exporter_retries_503_and_then_succeeds(start_receiver, exporters, sdk_spans):
    rec = Recorder(Admission(False, error_message="queue full", retry_after_s=0.01))
    rx = start_receiver(rec)
    assert exporters(rx.port).export(sdk_spans(1)) == SpanExportResult.SUCCESS
    assert len(rec.requests) == 2


def test_refusal_without_delay_is_503_without_retry_after(start_receiver, make_request):
    rx = start_receiver(Recorder(Admission(False, error_message="shutting down")))
    status, headers, _ = post(rx.port, make_request(1).SerializeToString())
    assert status == 503 and "Retry-After" not in headers


@pytest.mark.parametrize(
    ("body", "ctype"),
    [(b"\xff\xff\xff", PB), (b"{not json", "application/json"), (b"[]", "application/json"),
     (json.dumps({"resourceSpans": [{"scopeSpans": "x"}]}).encode(), "application/json")],
    ids=["bad-protobuf", "bad-json", "json-array", "scope-spans-not-a-list"],
)
def test_malformed_body_is_400_with_status(start_receiver, body, ctype):
    rec = Recorder()
    rx = start_receiver(rec)
    status, headers, data = post(rx.port, body, ctype)
    assert status == 400 and headers["Content-Type"] == ctype
    msg = json.loads(data)["message"] if ctype == "application/json" else status_body(data).message
    assert msg
    assert rec.requests == [] and rx.stats().invalid == 1


def test_bad_gzip_is_400(start_receiver):
    rx = start_receiver(Recorder())
    status, _, data = post(rx.port, b"not gzip", Content_Encoding="gzip")
    assert status == 400 and "gzip" in status_body(data).message


def test_wrong_content_type_is_415(start_receiver, make_request):
    rx = start_receiver(Recorder())
    status, _, data = post(rx.port, make_request(1).SerializeToString(), "text/plain")
    assert status == 415 and "Content-Type" in json.loads(data)["message"]


def test_unsupported_content_encoding_is_415(start_receiver, make_request):
    rx = start_receiver(Recorder())
    status, _, _ = post(rx.port, make_request(1).SerializeToString(), Content_Encoding="br")
    assert status == 415


def test_body_over_limit_is_413(start_receiver):
    rx = start_receiver(Recorder(), max_request_body_mib=1)
    status, _, _ = post(rx.port, b"\0" * (1024 * 1024 + 1))
    assert status == 413 and rx.stats().too_large == 1


def test_gzip_bomb_is_413(start_receiver):
    rx = start_receiver(Recorder(), max_request_body_mib=1)
    status, _, data = post(rx.port, gzip.compress(b"\0" * (4 * 1024 * 1024)), Content_Encoding="gzip")
    assert status == 413 and "exceeds the limit" in status_body(data).message


def test_chunked_body_is_accepted(start_receiver, make_request):
    rec = Recorder()
    rx = start_receiver(rec)
    body = make_request(2).SerializeToString()
    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
    try:
        conn.request("POST", "/v1/traces", body=iter([body[:10], body[10:]]), headers={"Content-Type": PB},
                     encode_chunked=True)
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert rec.spans == 2


def test_missing_length_is_411(start_receiver):
    rx = start_receiver(Recorder())
    with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as s:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 411")


def test_wrong_method_is_405(start_receiver):
    rx = start_receiver(Recorder())
    status, headers, _ = post(rx.port, b"", None, method="GET")
    assert status == 405 and headers["Allow"] == "POST"
    assert post(rx.port, b"", None, method="PUT")[0] == 405


def test_unknown_path_is_404(start_receiver, make_request):
    rx = start_receiver(Recorder())
    assert post(rx.port, make_request(1).SerializeToString(), path="/v1/metrics")[0] == 404
    assert post(rx.port, b"", None, method="GET", path="/nope")[0] == 404


def test_consumer_exception_is_500_and_server_survives(start_receiver, make_request):
    calls = []

    def broken(request, raw=None):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return ACCEPTED

    rx = start_receiver(broken)
    assert post(rx.port, make_request(1).SerializeToString())[0] == 500
    assert post(rx.port, make_request(1).SerializeToString())[0] == 200


def test_keep_alive_connection_serves_several_requests(start_receiver, make_request):
    rec = Recorder()
    rx = start_receiver(rec)
    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/v1/traces", body=make_request(1).SerializeToString(), headers={"Content-Type": PB})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
    finally:
        conn.close()
    assert len(rec.requests) == 3


def test_connections_beyond_workers_and_backlog_get_503(start_receiver):
    rx = start_receiver(Recorder(), workers=1, backlog=1, idle_timeout_s=5)
    held: list[socket.socket] = []
    head = b""
    try:
        for _ in range(10):  # idle connections pin the worker, then the backlog slot, then are shed
            s = socket.create_connection(("127.0.0.1", rx.port), timeout=5)
            held.append(s)
            s.settimeout(0.3)
            try:
                head = s.recv(64)
            except TimeoutError:
                continue  # held by the worker or waiting in the backlog
            break
        assert head.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 1" in head or rx.stats().busy_connections >= 1
        assert rx.stats().busy_connections >= 1
    finally:
        for s in held:
            s.close()


# ---------------------------------------------------------------- health


def test_healthz_is_200(start_receiver):
    rx = start_receiver(Recorder())
    assert post(rx.port, b"", None, method="GET", path="/healthz")[0] == 200


def test_readyz_follows_the_readiness_check(start_receiver):
    ready = [True]
    rx = start_receiver(Recorder(), ready=lambda: ready[0])
    assert post(rx.port, b"", None, method="GET", path="/readyz")[0] == 200
    ready[0] = False
    assert post(rx.port, b"", None, method="GET", path="/readyz")[0] == 503


def test_readyz_is_503_while_stopping(start_receiver):
    rx = start_receiver(Recorder())
    rx.stopping = True  # the first thing stop() does
    assert post(rx.port, b"", None, method="GET", path="/readyz")[0] == 503


# ---------------------------------------------------------------- auth and TLS


def test_missing_token_is_401_when_auth_is_on(start_receiver, exporters, sdk_spans):
    rec = Recorder()
    rx = start_receiver(rec, auth=AuthConfig(bearer_tokens=("s3cret",)))
    assert exporters(rx.port).export(sdk_spans(1)) == SpanExportResult.FAILURE
    assert rec.requests == [] and rx.stats().unauthenticated == 1


def test_wrong_token_is_401_with_www_authenticate(start_receiver, make_request):
    rx = start_receiver(Recorder(), auth=AuthConfig(bearer_tokens=("s3cret",)))
    status, headers, _ = post(rx.port, make_request(1).SerializeToString(), Authorization="Bearer wrong")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")


def test_valid_token_from_file_is_accepted(start_receiver, exporters, sdk_spans, tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text("# rotated\nold-token\nnew-token\n")
    rec = Recorder()
    rx = start_receiver(rec, auth=AuthConfig(bearer_token_file=str(token_file)))
    assert exporters(rx.port, headers={"Authorization": "Bearer new-token"}).export(sdk_spans(2)) == SpanExportResult.SUCCESS
    assert rec.spans == 2


def test_health_endpoints_need_no_token(start_receiver):
    rx = start_receiver(Recorder(), auth=AuthConfig(bearer_tokens=("s3cret",)))
    assert post(rx.port, b"", None, method="GET", path="/healthz")[0] == 200


def test_tls_receiver_accepts_sdk_exporter_trusting_the_ca(start_receiver, exporters, sdk_spans, certs):
    rec = Recorder()
    rx = start_receiver(rec, tls=TlsConfig(str(certs.server_cert), str(certs.server_key)))
    exp = exporters(rx.port, scheme="https", host="localhost", certificate_file=str(certs.ca_cert))
    assert exp.export(sdk_spans(2)) == SpanExportResult.SUCCESS
    assert rec.spans == 2


def test_mtls_receiver_accepts_a_client_certificate(start_receiver, exporters, sdk_spans, certs):
    rec = Recorder()
    rx = start_receiver(rec, tls=TlsConfig(str(certs.server_cert), str(certs.server_key), str(certs.ca_cert)))
    exp = exporters(rx.port, scheme="https", host="localhost", certificate_file=str(certs.ca_cert),
                    client_certificate_file=str(certs.client_cert), client_key_file=str(certs.client_key))
    assert exp.export(sdk_spans(1)) == SpanExportResult.SUCCESS


def test_mtls_receiver_refuses_a_client_without_certificate(start_receiver, certs, make_request):
    rec = Recorder()
    rx = start_receiver(rec, tls=TlsConfig(str(certs.server_cert), str(certs.server_key), str(certs.ca_cert)))
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    conn = http.client.HTTPSConnection("localhost", rx.port, timeout=5, context=ctx)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        conn.request("POST", "/v1/traces", body=make_request(1).SerializeToString(), headers={"Content-Type": PB})
        conn.getresponse()
    conn.close()
    assert rec.requests == []


def test_plaintext_client_cannot_talk_to_tls_receiver(start_receiver, certs, make_request):
    rec = Recorder()
    rx = start_receiver(rec, tls=TlsConfig(str(certs.server_cert), str(certs.server_key)))
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        post(rx.port, make_request(1).SerializeToString())
    assert rec.requests == []
    assert post  # receiver still serves TLS clients afterwards:
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    conn = http.client.HTTPSConnection("localhost", rx.port, timeout=5, context=ctx)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"endpoint": "4318"}, "receivers.http.endpoint"),
        ({"max_request_body_mib": 0}, "receivers.http.max_request_body_mib"),
        ({"workers": 0}, "receivers.http.workers"),
        ({"backlog": 0}, "receivers.http.backlog"),
        ({"idle_timeout_s": 0}, "receivers.http.idle_timeout_s"),
        ({"tls": TlsConfig("/nonexistent.pem", "/nonexistent.key")}, "receivers.http.tls.cert_file"),
        ({"auth": AuthConfig(bearer_token_file="/nonexistent/tokens")}, "receivers.http.auth.bearer_token_file"),
    ],
)
def test_config_validation_names_the_bad_key(cfg, message):
    with pytest.raises(ValueError, match=message):
        HttpReceiverConfig(**cfg).validate()


def test_binding_a_busy_port_fails_with_a_clear_error(start_receiver):
    rx = start_receiver(Recorder())
    with pytest.raises(OSError, match="cannot bind HTTP receiver"):
        HttpReceiver(HttpReceiverConfig(endpoint=f"127.0.0.1:{rx.port}"), Recorder()).start()


def test_sdk_exporter_treats_partial_success_as_success_without_retry(start_receiver, exporters, sdk_spans):
    rec = Recorder(Admission(True, rejected_spans=1, error_message="1 span unusable"))
    rx = start_receiver(rec)
    assert exporters(rx.port).export(sdk_spans(2)) == SpanExportResult.SUCCESS
    assert len(rec.requests) == 1 and rx.stats().partial == 1


# ---------------------------------------------------------------- where decoding runs


@pytest.mark.parametrize("gzipped", [False, True], ids=["large", "gzipped"])
def test_large_or_gzipped_bodies_are_delivered_off_the_event_loop(start_receiver, make_request, gzipped):
    """While the consumer holds a worker thread on such a body, the server still answers."""
    entered, gate = threading.Event(), threading.Event()

    def held(request, raw=None):
        entered.set()
        gate.wait(10)
        return ACCEPTED

    rx = start_receiver(held)
    n = 2
    while len(body := make_request(n).SerializeToString()) <= INLINE_MAX_BYTES and not gzipped:
        n *= 2
    headers = {"Content_Encoding": "gzip"} if gzipped else {}
    statuses: list[int] = []
    sender = threading.Thread(target=lambda: statuses.append(
        post(rx.port, gzip.compress(body) if gzipped else body, **headers)[0]))
    sender.start()
    try:
        assert entered.wait(5)
        assert post(rx.port, b"", None, method="GET", path="/healthz")[0] == 200
    finally:
        gate.set()
        sender.join(10)
    assert statuses == [200]


def test_requests_beyond_the_body_slots_wait_then_get_503_with_retry_after(start_receiver, make_request):
    """At most ``workers`` requests hold a body; one that cannot get a slot within
    ``request_timeout_s`` is refused as busy (its body never read)."""
    entered, gate = threading.Event(), threading.Event()

    def held(request, raw=None):
        entered.set()
        gate.wait(10)
        return ACCEPTED

    rx = start_receiver(held, workers=1, request_timeout_s=0.5)
    statuses: list[int] = []
    first = threading.Thread(target=lambda: statuses.append(
        post(rx.port, gzip.compress(make_request(1).SerializeToString()), Content_Encoding="gzip")[0]))
    first.start()
    try:
        assert entered.wait(5)  # the only slot is held by the first request's delivery
        status, headers, body = post(rx.port, make_request(1).SerializeToString())
        assert status == 503 and headers["Retry-After"] == "1" and status_body(body).message == "server busy"
        assert rx.stats().refused == 1
    finally:
        gate.set()
        first.join(10)
    assert statuses == [200]
    assert post(rx.port, make_request(1).SerializeToString())[0] == 200  # the slot is free again
