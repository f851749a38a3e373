"""decode: protobuf, OTLP/JSON (hex ids, int enums, string int64s), gzip limits, JSON lines, metrics out."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gensight.processor.receive.decode import (
    DecodeError,
    decode_trace_request,
    gunzip,
    logs_request_to_json_line,
    metrics_request_to_json_line,
    trace_request_from_json,
)
from gensight.processor.receive.json_lines import BadLine, iter_json_lines

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "eee19b7ec3c1b173"


def otlp_json(**span_overrides) -> dict:
    """An OTLP/JSON request shaped like the specification's examples/trace.json."""
    span = {
        "traceId": TRACE_ID,
        "spanId": SPAN_ID,
        "parentSpanId": PARENT_ID,
        "name": "chat gpt-4o",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 3,
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 7}},
        ],
        "links": [{"traceId": TRACE_ID, "spanId": PARENT_ID}],
        "status": {"code": 2, "message": "boom"},
    }
    span.update(span_overrides)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": [{"scope": {"name": "my.library", "version": "1.0.0"}, "spans": [span]}],
            }
        ]
    }


def the_span(req) -> Span:
    return req.resource_spans[0].scope_spans[0].spans[0]


def test_protobuf_round_trips_sdk_encoded_spans(make_request):
    sent = make_request(4)
    got = decode_trace_request(sent.SerializeToString())
    assert got == sent


def test_json_hex_ids_become_raw_bytes():
    span = the_span(trace_request_from_json(json.dumps(otlp_json())))
    assert span.trace_id.hex() == TRACE_ID
    assert span.span_id.hex() == SPAN_ID
    assert span.parent_span_id.hex() == PARENT_ID
    assert span.links[0].trace_id.hex() == TRACE_ID


def test_json_int_enums_are_accepted():
    span = the_span(trace_request_from_json(json.dumps(otlp_json())))
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.status.code == 2


def test_json_string_enums_are_accepted():
    span = the_span(trace_request_from_json(json.dumps(otlp_json(kind="SPAN_KIND_SERVER"))))
    assert span.kind == Span.SPAN_KIND_SERVER


def test_json_int64_as_string_or_number():
    req = trace_request_from_json(json.dumps(otlp_json(startTimeUnixNano=1544712660000000000)))
    span = the_span(req)
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.end_time_unix_nano == 1544712661000000000
    values = {a.key: a.value for a in span.attributes}
    assert values["gen_ai.usage.input_tokens"].int_value == 42
    assert values["gen_ai.usage.output_tokens"].int_value == 7


def test_json_snake_case_keys_are_accepted():
    doc = {"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": TRACE_ID, "span_id": SPAN_ID,
                                                             "start_time_unix_nano": "5"}]}]}]}
    span = the_span(trace_request_from_json(json.dumps(doc)))
    assert span.trace_id.hex() == TRACE_ID
    assert span.start_time_unix_nano == 5


def test_json_unknown_fields_are_ignored():
    doc = otlp_json(futureField={"x": 1})
    doc["somethingNew"] = [1, 2]
    span = the_span(trace_request_from_json(json.dumps(doc)))
    assert span.name == "chat gpt-4o"


def test_json_base64_ids_from_canonical_protobuf_json_are_accepted(make_request):
    sent = make_request(1)
    from google.protobuf import json_format

    canonical = json_format.MessageToJson(sent)
    assert trace_request_from_json(canonical) == sent


def test_json_invalid_id_is_a_decode_error_naming_the_field():
    with pytest.raises(DecodeError, match="span.traceId"):
        trace_request_from_json(json.dumps(otlp_json(traceId="not-an-id!")))


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2]", b"\xff\xfe", b'{"resourceSpans": 5}', b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": {}}]}]}]}',
     b"[" * 100_000 + b"]" * 100_000],
    ids=["truncated", "array", "not-utf8", "wrong-type", "enum-object", "deep-nesting"],
)
def test_bad_json_is_a_decode_error(body):
    with pytest.raises(DecodeError):
        decode_trace_request(body, encoding="json")


@pytest.mark.parametrize("body", [b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05abc", b"\xff" * 10], ids=["bad-length", "truncated", "garbage"])
def test_bad_protobuf_is_a_decode_error(body):
    with pytest.raises(DecodeError, match="protobuf"):
        decode_trace_request(body)


def test_gzip_body_is_decompressed(make_request):
    sent = make_request(2)
    assert decode_trace_request(gzip.compress(sent.SerializeToString()), gzip=True) == sent


def test_gzip_multi_member_body_is_decompressed():
    assert gunzip(gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


def test_gzip_bomb_is_refused_at_the_limit():
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(DecodeError, match="exceeds the limit of 1048576 bytes"):
        gunzip(bomb, max_bytes=1024 * 1024)


def test_gzip_exactly_at_the_limit_is_accepted():
    assert len(gunzip(gzip.compress(b"x" * 1000), max_bytes=1000)) == 1000


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b"hello")[:-6], gzip.compress(b"a") + b"junk"],
                         ids=["not-gzip", "truncated", "trailing-garbage"])
def test_bad_gzip_is_a_decode_error(body):
    with pytest.raises(DecodeError, match="gzip"):
        gunzip(body)


def test_unknown_encoding_is_a_decode_error():
    with pytest.raises(DecodeError, match="unsupported encoding"):
        decode_trace_request(b"", encoding="xml")


# ---------------------------------------------------------------- JSON lines


def _lines_file(tmp_path, lines: list[str], gz: bool = False):
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / ("in.jsonl.gz" if gz else "in.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_json_lines_yields_each_request(tmp_path):
    path = _lines_file(tmp_path, [json.dumps(otlp_json()), "", json.dumps(otlp_json(name="second"))])
    names = [the_span(r).name for r in iter_json_lines(path)]
    assert names == ["chat gpt-4o", "second"]


def test_json_lines_reads_gzip_files(tmp_path):
    path = _lines_file(tmp_path, [json.dumps(otlp_json())] * 3, gz=True)
    assert len(list(iter_json_lines(path))) == 3


def test_json_lines_reports_bad_lines_with_numbers_and_continues(tmp_path):
    path = _lines_file(tmp_path, [json.dumps(otlp_json()), "{oops", '{"resourceMetrics": []}',
                                  json.dumps(otlp_json(traceId="zz")), json.dumps(otlp_json())])
    bad: list[BadLine] = []
    got = list(iter_json_lines(path, on_bad_line=bad.append))
    assert len(got) == 2
    assert [b.line_no for b in bad] == [2, 3, 4]
    assert "invalid JSON" in bad[0].reason
    assert "resourceSpans" in bad[1].reason
    assert "traceId" in bad[2].reason
    assert bad[0].source == str(path)


def test_json_lines_skips_oversized_lines(tmp_path):
    path = _lines_file(tmp_path, [json.dumps(otlp_json(name="x" * 5000)), json.dumps(otlp_json())])
    bad: list[BadLine] = []
    got = list(iter_json_lines(path, on_bad_line=bad.append, max_line_bytes=2000))
    assert len(got) == 1
    assert bad == [BadLine(str(path), 1, "line longer than 2000 bytes")]


def test_json_lines_reads_a_binary_stream():
    stream = io.BytesIO((json.dumps(otlp_json()) + "\n").encode())
    assert len(list(iter_json_lines(stream))) == 1


def test_json_lines_dash_reads_stdin(monkeypatch):
    fake_stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(gzip.compress((json.dumps(otlp_json()) + "\n").encode()))))
    monkeypatch.setattr("sys.stdin", fake_stdin)
    assert len(list(iter_json_lines("-"))) == 1


def test_json_lines_reports_truncated_gzip(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(otlp_json()) + "\n").encode() * 50)[:-40])
    bad: list[BadLine] = []
    list(iter_json_lines(path, on_bad_line=bad.append))
    assert len(bad) == 1 and "cannot read further" in bad[0].reason


def test_sdk_encoded_request_survives_json_round_trip_through_file_format(tmp_path, make_request):
    from gensight.processor.receive.decode import message_to_otlp_json

    sent = make_request(5)
    line = json.dumps(message_to_otlp_json(sent))
    assert json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == \
        sent.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    (got,) = list(iter_json_lines(_lines_file(tmp_path, [line])))
    assert got == sent


# ---------------------------------------------------------------- metrics / logs out


def test_metrics_line_uses_otlp_json_encoding():
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = "svc"
    m = rm.scope_metrics.add().metrics.add(name="gensight.calls", unit="{call}")
    m.sum.aggregation_temporality = 2
    m.sum.is_monotonic = True
    dp = m.sum.data_points.add(as_int=3, time_unix_nano=10)
    ex = dp.exemplars.add(as_double=1.0, trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(SPAN_ID))
    assert ex.trace_id
    line = metrics_request_to_json_line(req)
    assert "\n" not in line
    doc = json.loads(line)
    metric = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    assert metric["sum"]["aggregationTemporality"] == 2  # integer enum
    assert metric["sum"]["isMonotonic"] is True
    assert metric["sum"]["dataPoints"][0]["exemplars"][0]["traceId"] == TRACE_ID
    assert metric["sum"]["dataPoints"][0]["exemplars"][0]["spanId"] == SPAN_ID


def test_logs_line_has_hex_ids():
    req = ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add(trace_id=bytes.fromhex(TRACE_ID), severity_number=13)
    rec.body.string_value = "alert"
    doc = json.loads(logs_request_to_json_line(req))
    got = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert got["traceId"] == TRACE_ID and got["severityNumber"] == 13


def test_json_any_values_of_every_kind():
    attrs = [
        {"key": "b", "value": {"boolValue": True}},
        {"key": "d", "value": {"doubleValue": "NaN"}},
        {"key": "i", "value": {"doubleValue": 1}},
        {"key": "raw", "value": {"bytesValue": "aGk="}},
        {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "2"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
        {"key": "empty", "value": {}},
    ]
    span = the_span(trace_request_from_json(json.dumps(otlp_json(attributes=attrs))))
    got = {a.key: a.value for a in span.attributes}
    assert got["b"].bool_value is True
    assert got["d"].double_value != got["d"].double_value  # NaN
    assert got["i"].double_value == 1.0
    assert got["raw"].bytes_value == b"hi"
    assert got["arr"].array_value.values[1].int_value == 2
    assert got["kv"].kvlist_value.values[0].value.string_value == "v"
    assert got["empty"].WhichOneof("value") is None and span.attributes[6].HasField("value")


def test_json_nulls_and_unknown_enum_names_are_ignored():
    span = the_span(trace_request_from_json(json.dumps(otlp_json(kind="SPAN_KIND_FROM_THE_FUTURE", name=None))))
    assert span.kind == 0 and span.name == ""


def test_json_unknown_enum_numbers_are_kept():
    assert the_span(trace_request_from_json(json.dumps(otlp_json(kind=42)))).kind == 42


@pytest.mark.parametrize(
    ("override", "field"),
    [({"kind": True}, "kind"), ({"name": 5}, "name"), ({"startTimeUnixNano": "soon"}, "start_time_unix_nano"),
     ({"startTimeUnixNano": -1}, "start_time_unix_nano"), ({"attributes": {"key": "x"}}, "attributes"),
     ({"status": "ok"}, "status"), ({"startTimeUnixNano": 2 ** 64}, "start_time_unix_nano")],
)
def test_json_wrong_types_are_decode_errors(override, field):
    with pytest.raises(DecodeError):
        trace_request_from_json(json.dumps(otlp_json(**override)))


# ---------------------------------------------------------------- never crash on hostile input

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "kind", "attributes", "key",
                         "value", "stringValue", "intValue", "arrayValue", "values", "status", "code", "name",
                         "startTimeUnixNano", "links", "events", "resource", "scope", "x"]),
        children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json_values)
def test_any_json_document_decodes_or_raises_decode_error(doc):
    try:
        trace_request_from_json(json.dumps(doc))
    except DecodeError:
        pass


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_decode_error(data):
    for kwargs in ({}, {"encoding": "json"}, {"gzip": True}):
        try:
            decode_trace_request(data, **kwargs)
        except DecodeError:
            pass


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_bare_nan_and_infinity_literals_are_not_json(literal):
    body = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":{"doubleValue":' + literal + b"}}]}]}]}]}"
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode_trace_request(body, encoding="json")
