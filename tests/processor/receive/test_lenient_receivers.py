"""One bad span never costs the batch: a running processor (both receivers, the real pipeline)
receives 99 good GenAI spans of ``svc-a`` and one span of ``svc-b`` whose model string holds
invalid UTF-8, in one request — from the real SDK exporters and as raw bytes, over gRPC, OTLP/HTTP
protobuf and OTLP/HTTP JSON, with and without the C span scanner. Every good span is counted for
``svc-a``; the bad one is counted with its string replaced (U+FFFD), and the answer says so in
``partial_success``. A span that cannot be decoded at all is rejected alone (counted ``dropped``).
Broken framing still refuses the whole request.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from otlp_wire import length_delimited

from gensight.processor.config import config_from_mapping
from gensight.processor.export.metric_builder import flatten
from gensight.processor.normalise import slot_table
from gensight.processor.receive.decode import message_to_otlp_json
from gensight.processor.server import ProcessorServer

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MARKER = b"ZQZQZQ"  # in the bad span's model (and name); swapped for the invalid bytes below
INVALID = b"\xff\xfe\xc3\x28\xa0\xa1"  # invalid starts, a bad continuation, lone continuations
GOOD_SPANS = 99
BAD_MODEL = "gpt-" + INVALID.decode("utf-8", "replace")


class ListSink:
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.lock = threading.Lock()

    def export(self, request: Any) -> None:
        with self.lock:
            self.requests.append(request)

    def latest(self, name: str) -> dict[tuple[str, tuple], float]:
        """Last value per (service, attributes) of a cumulative metric."""
        out: dict[tuple[str, tuple], float] = {}
        with self.lock:
            for service, metric, attrs, value in (r for req in self.requests for r in flatten(req)):
                if metric == name:
                    out[(service, attrs)] = value
        return out


@pytest.fixture(params=["c-scanner", "protobuf-api"])
def processor(request, monkeypatch) -> Iterator[tuple[ProcessorServer, ListSink]]:
    if request.param == "protobuf-api":
        monkeypatch.setattr(slot_table, "_spanscan", None)
    elif slot_table._spanscan is None:
        pytest.skip("the C span scanner is not built here")
    sink = ListSink()
    config = config_from_mapping({
        "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
        "pipeline": {"idle_tick_s": 0.05},
    })
    server = ProcessorServer(config, sinks=[sink])
    server.start()
    assert server.pipeline.normaliser.accelerated == (request.param == "c-scanner")
    try:
        yield server, sink
    finally:
        server.stop()


def _finish(processor: tuple[ProcessorServer, ListSink]) -> dict[str, Any]:
    """Stops the processor (flushing every window) and returns what it reported."""
    server, sink = processor
    server.stop()
    calls = sink.latest("gensight.calls")
    per_service: dict[str, float] = {}
    models: dict[str, set[str]] = {}
    for (service, attrs), value in calls.items():
        per_service[service] = per_service.get(service, 0) + value
        models.setdefault(service, set()).add(dict(attrs).get("gen_ai.request.model", ""))
    spans = {dict(attrs)["outcome"]: v for (_, attrs), v in sink.latest("gensight.processor.spans").items()}
    repaired = sum(sink.latest("gensight.processor.values_repaired").values())
    return {"calls": per_service, "models": models, "spans": spans, "repaired": repaired}


def _sdk_batch(sdk_spans) -> list[Any]:
    return sdk_spans(GOOD_SPANS, "svc-a") + sdk_spans(1, "svc-b", model="gpt-" + MARKER.decode())


def _batch_bytes(sdk_spans) -> bytes:
    body = encode_spans(_sdk_batch(sdk_spans)).SerializeToString()
    assert body.count(MARKER) == 2  # span name and model
    return body.replace(MARKER, INVALID)


def _assert_batch_counted(report: dict[str, Any]) -> None:
    assert report["calls"]["svc-a"] == GOOD_SPANS
    assert report["calls"]["svc-b"] == 1
    assert report["models"]["svc-b"] == {BAD_MODEL}
    assert report["repaired"] == 2  # the model and the span name
    assert report["spans"].get("dropped", 0) == 0


# ---------------------------------------------------------------- the real SDK exporters


class _PatchingStub:
    """Stands in for the SDK gRPC exporter's stub: serializes the request as the stub would, puts
    the invalid bytes in (what a C++/Go SDK writing raw bytes sends), and calls the real channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._call = channel.unary_unary(EXPORT, request_serializer=None,
                                         response_deserializer=ExportTraceServiceResponse.FromString)
        self.responses: list[ExportTraceServiceResponse] = []

    def Export(self, request: Any, metadata: Any = None, timeout: float | None = None) -> Any:  # noqa: N802
        response = self._call(request.SerializeToString().replace(MARKER, INVALID), metadata=metadata, timeout=timeout)
        self.responses.append(response)
        return response


class _PatchingSession(requests.Session):
    """A requests session (the SDK HTTP exporter's transport) that puts the invalid bytes in."""

    def request(self, method: str, url: str, *args: Any, data: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if isinstance(data, bytes):
            data = data.replace(MARKER, INVALID)
        return super().request(method, url, *args, data=data, **kwargs)


def test_sdk_grpc_exporter_batch_with_invalid_utf8_counts_every_call(processor, sdk_spans):
    server, _ = processor
    exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True, timeout=10)
    stub = _PatchingStub(exporter._channel)
    exporter._client = stub
    try:
        assert exporter.export(_sdk_batch(sdk_spans)) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    (response,) = stub.responses
    assert response.partial_success.rejected_spans == 0
    assert "invalid UTF-8 replaced with U+FFFD in 2 string(s)" in response.partial_success.error_message
    _assert_batch_counted(_finish(processor))


def test_sdk_http_exporter_batch_with_invalid_utf8_counts_every_call(processor, sdk_spans, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    server, _ = processor
    exporter = HttpSpanExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces", timeout=10,
                                session=_PatchingSession())
    try:
        assert exporter.export(_sdk_batch(sdk_spans)) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    _assert_batch_counted(_finish(processor))


# ---------------------------------------------------------------- raw bytes


def _grpc_export(port: int, body: bytes) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None,
                                   response_deserializer=ExportTraceServiceResponse.FromString)
        return call(body, timeout=10)


def _http_export(port: int, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": content_type})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if content_type == "application/json":
        return resp.status, json.loads(data)
    if resp.status != 200:
        return resp.status, {}
    ps = ExportTraceServiceResponse.FromString(data).partial_success
    return resp.status, {"partialSuccess": {"rejectedSpans": ps.rejected_spans, "errorMessage": ps.error_message}}


REPAIR_MESSAGE = ("invalid UTF-8 replaced with U+FFFD in 2 string(s), first at "
                  "resource_spans[1].scope_spans[0].spans[0].name")


def test_raw_grpc_batch_with_invalid_utf8_is_ok_with_a_partial_success_message(processor, sdk_spans):
    response = _grpc_export(processor[0].grpc_port, _batch_bytes(sdk_spans))
    assert (response.partial_success.rejected_spans, response.partial_success.error_message) == (0, REPAIR_MESSAGE)
    _assert_batch_counted(_finish(processor))


def test_raw_http_protobuf_batch_with_invalid_utf8_is_200_with_a_partial_success_message(processor, sdk_spans):
    status, body = _http_export(processor[0].http_port, _batch_bytes(sdk_spans), "application/x-protobuf")
    assert status == 200
    assert body["partialSuccess"] == {"rejectedSpans": 0, "errorMessage": REPAIR_MESSAGE}
    _assert_batch_counted(_finish(processor))


def test_raw_http_json_batch_with_invalid_utf8_is_200_with_a_partial_success_message(processor, sdk_spans):
    request = encode_spans(_sdk_batch(sdk_spans))
    body = json.dumps(message_to_otlp_json(request)).encode().replace(MARKER, INVALID)
    status, answer = _http_export(processor[0].http_port, body, "application/json")
    assert status == 200
    message = answer["partialSuccess"]["errorMessage"]
    assert message.startswith("invalid UTF-8 replaced with U+FFFD in 2 string(s), first at resourceSpans[1]")
    assert int(answer["partialSuccess"].get("rejectedSpans", 0)) == 0
    _assert_batch_counted(_finish(processor))


def _too_deep_span(sdk_spans) -> bytes:
    """A svc-b span (as a whole ResourceSpans) with an attribute nested past upb's depth limit."""
    request = encode_spans(sdk_spans(1, "svc-b"))
    inner = b"\x0a\x04leaf"  # AnyValue.string_value
    for _ in range(60):
        inner = length_delimited(5, length_delimited(1, inner))  # AnyValue.array_value.values[0]
    span = request.resource_spans[0].scope_spans[0].spans[0].SerializeToString()
    span += length_delimited(9, length_delimited(1, b"deep") + length_delimited(2, inner))
    resource = request.resource_spans[0].resource.SerializeToString()
    return length_delimited(1, length_delimited(1, resource) + length_delimited(2, length_delimited(2, span)))


def test_raw_grpc_span_that_cannot_be_decoded_is_rejected_alone(processor, sdk_spans):
    body = encode_spans(sdk_spans(GOOD_SPANS, "svc-a")).SerializeToString() + _too_deep_span(sdk_spans)
    response = _grpc_export(processor[0].grpc_port, body)
    assert response.partial_success.rejected_spans == 1
    assert response.partial_success.error_message == (
        "1 span(s) rejected, first: resource_spans[1].scope_spans[0].spans[0]: nested too deep")
    report = _finish(processor)
    assert report["calls"] == {"svc-a": GOOD_SPANS}
    assert report["spans"]["dropped"] == 1


def test_raw_http_json_span_with_a_bad_trace_id_is_rejected_alone(processor, sdk_spans):
    obj = message_to_otlp_json(encode_spans(_sdk_batch(sdk_spans)))
    obj["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["traceId"] = "not-hex!"
    status, answer = _http_export(processor[0].http_port, json.dumps(obj).encode(), "application/json")
    assert status == 200
    assert int(answer["partialSuccess"]["rejectedSpans"]) == 1  # int64: a JSON string
    assert answer["partialSuccess"]["errorMessage"].startswith(
        "1 span(s) rejected, first: resourceSpans[1].scopeSpans[0].spans[0]: invalid span.traceId")
    report = _finish(processor)
    assert report["calls"] == {"svc-a": GOOD_SPANS}
    assert report["spans"]["dropped"] == 1


def test_raw_truncated_request_is_still_refused_whole(processor, sdk_spans):
    body = _batch_bytes(sdk_spans)[:-7]
    with pytest.raises(grpc.RpcError) as err:
        _grpc_export(processor[0].grpc_port, body)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status, _ = _http_export(processor[0].http_port, body, "application/x-protobuf")
    assert status == 400
    assert _finish(processor)["calls"] == {}


def test_clean_batch_has_no_partial_success(processor, sdk_spans):
    response = _grpc_export(processor[0].grpc_port, encode_spans(sdk_spans(3, "svc-a")).SerializeToString())
    assert not response.HasField("partial_success")
    assert _finish(processor)["calls"] == {"svc-a": 3}


def test_request_framing_is_what_decides(sdk_spans):
    """Sanity of the test inputs: strict parsing refuses the bad batch, and only for UTF-8."""
    with pytest.raises(Exception, match="UTF-8"):
        ExportTraceServiceRequest.FromString(_batch_bytes(sdk_spans))
