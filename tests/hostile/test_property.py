"""Property test: hypothesis-generated OTLP requests against a running processor.

Requests are built from strategies over the whole OTLP span model — any attribute key from the
GenAI dialects with any AnyValue (nested arrays/kvlists, NaN, huge ints, bytes, empty), any
timestamps in the uint64 range, any ids, kinds and status codes, random resources — and, as a
second strategy, valid requests with a few bytes mutated, and as a third, generated requests
whose strings (attribute keys and values, span and scope names, status messages, resource
attributes, elements of nested arrays and kvlists) hold invalid UTF-8. For every example, over
gRPC and OTLP/HTTP (and OTLP/JSON for the third): the request is answered (OK, or
INVALID_ARGUMENT / 400 when its framing is broken), every span it frames is counted exactly once
in ``gensight.processor.spans`` (decoded or rejected: ``receive/lenient.py``), and the process
stays healthy.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from harness import MetricsSink, processor_config, wait_for
from hostile_client import grpc_channel, grpc_health, http_get, send_grpc, send_http
from hostile_corpus import JSON, envelope_span_count, received_span_count, to_otlp_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from gensight.processor.server import ProcessorServer

KEYS = [
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model", "gen_ai.response.model",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cost", "gen_ai.usage.cost.amount",
    "gen_ai.usage.cost.currency", "gen_ai.usage.cache_read.input_tokens", "gen_ai.tool.name", "gen_ai.data_source.id",
    "gen_ai.response.finish_reasons", "gen_ai.response.time_to_first_chunk", "error.type", "enduser.id",
    "openinference.span.kind", "llm.model_name", "llm.token_count.prompt", "llm.cost.total", "traceloop.span.kind",
    "llm.usage.total_tokens", "gensight.retrieval.top_score", "gensight.cache.hit", "gen_ai.input.messages",
    "gen_ai.prompt.0.content", "input.value", "service.name", "",
]
NOW_NS = time.time_ns()
# a string the generators put anywhere a string goes; the UTF-8 test swaps it for invalid bytes of
# the same length after encoding (so every length prefix stays right)
MARKER = "QZQZQZQZ"
INVALID_8_BYTES = [b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", b"\xc3\x28\xc3\x28\xc3\x28\xc3\x28",
                   b"\xed\xa0\x80\xed\xbf\xbf\x80\x80", b"abc\xe2\x82def", b"\xf0\x9f\x98abcde",
                   b"\xc0\xafxx\xe0\x80\xafy"]
KEYS.append(MARKER)
texts = st.one_of(st.text(max_size=20), st.just(MARKER), st.just(f"gpt-{MARKER}"))

scalars = st.one_of(
    st.text(max_size=30).map(lambda s: AnyValue(string_value=s)),
    texts.map(lambda s: AnyValue(string_value=s)),
    st.sampled_from(["chat", "execute_tool", "retrieval", "openai", "gpt-4o-mini", "LLM", "USD", ""]).map(
        lambda s: AnyValue(string_value=s)),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=20).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
any_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(st.sampled_from(KEYS), children), max_size=3).map(
            lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))),
    ),
    max_leaves=8,
)
attributes = st.lists(st.tuples(st.sampled_from(KEYS), any_values), max_size=10).map(
    lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs])
times = st.one_of(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=NOW_NS - 3600 * 10**9, max_value=NOW_NS + 60 * 10**9),
)


@st.composite
def spans(draw: Any) -> Span:
    start, end = draw(times), draw(times)
    return Span(
        trace_id=draw(st.binary(max_size=20)), span_id=draw(st.binary(max_size=10)),
        name=draw(texts), kind=draw(st.integers(min_value=-5, max_value=10)),
        start_time_unix_nano=start, end_time_unix_nano=end, attributes=draw(attributes),
        status=Status(code=draw(st.integers(min_value=-3, max_value=5)), message=draw(texts)),
    )


@st.composite
def requests(draw: Any) -> bytes:
    return draw(request_messages()).SerializeToString()


@st.composite
def request_messages(draw: Any) -> ExportTraceServiceRequest:
    resource_spans = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        resource = None if draw(st.booleans()) and draw(st.booleans()) else Resource(attributes=draw(attributes))
        scopes = [ScopeSpans(spans=draw(st.lists(spans(), max_size=4))) for _ in range(draw(st.integers(0, 2)))]
        for scope in scopes:
            scope.scope.name = draw(texts)
        rs = ResourceSpans(scope_spans=scopes)
        if resource is not None:
            rs.resource.CopyFrom(resource)
        resource_spans.append(rs)
    return ExportTraceServiceRequest(resource_spans=resource_spans)


@st.composite
def mutated(draw: Any) -> bytes:
    data = bytearray(draw(requests()))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not data:
            break
        i = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[i] = draw(st.integers(min_value=0, max_value=255))
    if data and draw(st.booleans()):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return bytes(data)


@pytest.fixture(scope="module")
def server() -> Any:
    sink = MetricsSink()
    srv = ProcessorServer(processor_config(sink.port))
    srv.start()
    channel = grpc_channel(f"127.0.0.1:{srv.grpc_port}")
    yield srv, channel
    channel.close()
    srv.stop()
    sink.stop()


def _total(srv: ProcessorServer) -> int:
    with srv.pipeline._lock:
        return sum(srv.pipeline.counts.values())


def _check(srv: ProcessorServer, channel: Any, body: bytes, json_body: bytes | None = None) -> None:
    n = received_span_count(body)
    if n is not None:  # nothing the bytes frame is lost: decoded or rejected, never dropped silently
        assert n == envelope_span_count(body)
    plans = [("grpc", body), ("http", body)] + ([("http-json", json_body)] if json_body is not None else [])
    for transport, data in plans:
        before = _total(srv)
        if transport == "grpc":
            answer = send_grpc(channel, data)
        elif transport == "http":
            answer = send_http(srv.http_port, data)
        else:
            answer = send_http(srv.http_port, data, content_type=JSON)
            assert received_span_count(data, "json") == n
        if n is None:
            assert not answer.ok and answer.code in ("INVALID_ARGUMENT", "400"), answer
            assert _total(srv) == before
        else:
            assert answer.ok, answer
            assert wait_for(lambda b=before, n=n: _total(srv) - b >= n, timeout_s=10)
            assert _total(srv) - before == n
            assert answer.rejected_spans <= n
    assert grpc_health(channel) == "SERVING"
    assert http_get(srv.http_port, "/healthz")[0] == 200


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(body=requests())
def test_generated_requests_are_answered_counted_and_survived(server, body):
    _check(*server, body)


@PROPERTY_SETTINGS
@given(request=request_messages(), invalid=st.sampled_from(INVALID_8_BYTES))
def test_requests_with_invalid_utf8_in_any_string_are_answered_counted_and_survived(server, request, invalid):
    body = request.SerializeToString()
    json_body = to_otlp_json(request)
    _check(*server, body.replace(MARKER.encode(), invalid), json_body.replace(MARKER.encode(), invalid))
    if MARKER.encode() in body:  # the strict parser refuses it; lenient decoding accepts every span
        assert received_span_count(body.replace(MARKER.encode(), invalid)) == envelope_span_count(body)


@PROPERTY_SETTINGS
@given(body=mutated())
def test_mutated_requests_are_answered_counted_and_survived(server, body):
    _check(*server, body)
