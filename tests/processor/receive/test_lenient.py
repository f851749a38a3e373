"""Lenient decoding (``receive/lenient.py``), without the network.

Strict parsing stays the fast path (clean bytes come back untouched); when it fails, invalid UTF-8
in any string field is replaced with U+FFFD, a span that still cannot be decoded is rejected
alone, and only broken framing refuses the request. The repaired bytes handed to the normaliser's
C scanner give the same records as the parsed request read through the protobuf API.
"""

from __future__ import annotations

import gzip
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_wire import key_value, length_delimited

from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
from gensight.processor.receive.admission import Defects
from gensight.processor.receive.decode import DecodeError, message_to_otlp_json
from gensight.processor.receive.json_lines import BadLine
from gensight.processor.receive.lenient import decode_json, decode_protobuf, iter_decoded_lines

MARKER = "ZQZQZQZQ"
INVALID = b"\xff\xfe\xc3\x28\xa0\xa1\xed\xa0"  # invalid starts, bad continuation, an encoded surrogate
REPAIRED = INVALID.decode("utf-8", "replace")


def _request(build=None, otlp=None) -> ExportTraceServiceRequest:
    """A good svc-a span and a svc-b span that ``build(span, request)`` may put MARKER into."""
    good = otlp.chat()
    req = otlp.request([good], service="svc-a")
    bad = otlp.request([otlp.chat(model="m")], service="svc-b")
    req.resource_spans.extend(bad.resource_spans)
    if build is not None:
        build(req.resource_spans[1].scope_spans[0].spans[0], req)
    return req


def _corrupt(req: ExportTraceServiceRequest) -> bytes:
    body = req.SerializeToString()
    assert MARKER.encode() in body
    return body.replace(MARKER.encode(), INVALID)


def _span_count(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


# Every string position of the OTLP trace model a producer can fill, with where the repair shows.
def _attr_value(span, req):
    span.attributes[2].value.string_value = MARKER  # gen_ai.request.model


def _attr_key(span, req):
    span.attributes.append(key_value(MARKER, "v"))


def _name(span, req):
    span.name = MARKER


def _resource_attr_value(span, req):
    req.resource_spans[1].resource.attributes.append(key_value("deployment.environment", MARKER))


def _resource_attr_key(span, req):
    req.resource_spans[1].resource.attributes.append(key_value(MARKER, "prod"))


def _service_name(span, req):
    req.resource_spans[1].resource.attributes[0].value.string_value = MARKER


def _array_element(span, req):
    span.attributes.append(key_value("gen_ai.response.finish_reasons", ["stop", MARKER]))


def _nested_array(span, req):
    span.attributes.append(key_value("app.nested", [[["x", MARKER]]]))


def _kvlist_key(span, req):
    span.attributes.append(key_value("app.map", {MARKER: 1}))


def _kvlist_value(span, req):
    span.attributes.append(key_value("app.map", {"inner": {"deeper": [MARKER]}}))


def _scope_name(span, req):
    req.resource_spans[1].scope_spans[0].scope.name = MARKER


def _scope_attr(span, req):
    req.resource_spans[1].scope_spans[0].scope.attributes.append(key_value("lib", MARKER))


def _status_message(span, req):
    span.status.message = MARKER


def _event(span, req):
    event = span.events.add(name="e", time_unix_nano=1)
    event.attributes.append(key_value(MARKER, MARKER))


def _link(span, req):
    link = span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, trace_state=MARKER)
    link.attributes.append(key_value("k", MARKER))


def _trace_state(span, req):
    span.trace_state = MARKER


def _schema_url(span, req):
    req.resource_spans[1].schema_url = MARKER
    req.resource_spans[1].scope_spans[0].schema_url = MARKER


POSITIONS = {
    "attribute-value": (_attr_value, "spans[0].attributes['gen_ai.request.model'].value.string_value"),
    "attribute-key": (_attr_key, f"spans[0].attributes['{REPAIRED}'].key"),
    "span-name": (_name, "spans[0].name"),
    "resource-attribute-value": (_resource_attr_value, "resource.attributes['deployment.environment'].value"),
    "resource-attribute-key": (_resource_attr_key, "resource.attributes["),
    "service-name": (_service_name, "resource.attributes['service.name'].value.string_value"),
    "array-element": (_array_element, "value.array_value.values[1].string_value"),
    "nested-arrays": (_nested_array, "array_value.values[0].array_value.values[1].string_value"),
    "kvlist-key": (_kvlist_key, "kvlist_value.values[" ),
    "kvlist-value": (_kvlist_value, "kvlist_value.values['deeper'].value.array_value.values[0].string_value"),
    "scope-name": (_scope_name, "scope_spans[0].scope.name"),
    "scope-attribute": (_scope_attr, "scope_spans[0].scope.attributes['lib'].value.string_value"),
    "status-message": (_status_message, "spans[0].status.message"),
    "event-attribute": (_event, "spans[0].events[0].attributes["),
    "link": (_link, "spans[0].links[0].trace_state"),
    "trace-state": (_trace_state, "spans[0].trace_state"),
    "schema-url": (_schema_url, "schema_url"),
}


@pytest.mark.parametrize("position", list(POSITIONS))
def test_invalid_utf8_in_every_string_position_is_repaired_and_both_spans_kept(otlp, position):
    build, where = POSITIONS[position]
    body = _corrupt(_request(build, otlp))
    with pytest.raises(Exception, match="UTF-8"):  # what strict parsing alone would answer
        ExportTraceServiceRequest.FromString(body)
    decoded = decode_protobuf(body)
    assert _span_count(decoded.request) == 2
    assert decoded.defects is not None and decoded.defects.rejected_spans == 0
    assert decoded.defects.repaired_values >= 1
    assert where in decoded.defects.message and "resource_spans[1]" in decoded.defects.message
    assert REPAIRED in str(decoded.request)  # the replacement characters, where the bytes were
    assert ExportTraceServiceRequest.FromString(decoded.raw) == decoded.request


@pytest.mark.parametrize("position", list(POSITIONS))
def test_repaired_requests_give_the_same_records_with_and_without_the_c_scanner(otlp, position):
    decoded = decode_protobuf(_corrupt(_request(POSITIONS[position][0], otlp)))
    c_reader = Normaliser(NormaliseConfig(), None, b"k", accelerate=True)
    api_reader = Normaliser(NormaliseConfig(), None, b"k", accelerate=False)
    from_bytes = c_reader.normalise(decoded.request, decoded.raw)
    from_message = api_reader.normalise(decoded.request)
    assert from_bytes == from_message
    assert len(from_bytes.records) == 2


def test_repaired_model_becomes_the_replacement_text(otlp):
    decoded = decode_protobuf(_corrupt(_request(_attr_value, otlp)))
    records = Normaliser(NormaliseConfig(), None, b"k").normalise(decoded.request, decoded.raw).records
    assert sorted((r.service, r.target) for r in records) == [("svc-a", "gpt-4o-mini"), ("svc-b", REPAIRED)]


def test_clean_bytes_take_the_strict_path_untouched(otlp):
    body = _request(None, otlp).SerializeToString()
    decoded = decode_protobuf(body)
    assert decoded.raw is body and decoded.defects is None


def test_clean_json_takes_the_strict_path(otlp):
    decoded = decode_json(json.dumps(message_to_otlp_json(_request(None, otlp))).encode())
    assert decoded.defects is None and decoded.raw is None and _span_count(decoded.request) == 2


def test_a_span_nested_too_deep_is_rejected_alone(otlp):
    req = _request(None, otlp)
    inner = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(120):
        inner = length_delimited(5, length_delimited(1, inner))
    deep = req.resource_spans[1].scope_spans[0].spans[0].SerializeToString()
    deep += length_delimited(9, length_delimited(1, b"deep") + length_delimited(2, inner))
    del req.resource_spans[1].scope_spans[0].spans[:]
    body = req.SerializeToString() + length_delimited(1, length_delimited(2, length_delimited(2, deep)))
    decoded = decode_protobuf(body)
    assert _span_count(decoded.request) == 1
    assert decoded.defects == Defects(1, 0, "1 span(s) rejected, first: resource_spans[2].scope_spans[0].spans[0]: nested too deep")


@pytest.mark.parametrize("cut", [1, 7, 40])
def test_truncated_framing_refuses_the_request_with_the_strict_message(otlp, cut):
    body = _corrupt(_request(_attr_value, otlp))[:-cut]
    with pytest.raises(DecodeError, match="invalid protobuf ExportTraceServiceRequest"):
        decode_protobuf(body)


def test_broken_framing_inside_a_span_refuses_the_request(otlp):
    span = Span(name="x").SerializeToString() + b"\x0a\x7f\x01"  # a length beyond the span's end
    body = _request(None, otlp).SerializeToString() + length_delimited(1, length_delimited(2, length_delimited(2, span)))
    with pytest.raises(DecodeError):
        decode_protobuf(body)


def test_random_bytes_are_refused():
    with pytest.raises(DecodeError):
        decode_protobuf(b"\xff\xff\xff\x07")


# ---------------------------------------------------------------- OTLP/JSON


def _json(req: ExportTraceServiceRequest) -> dict:
    return message_to_otlp_json(req)


def test_json_with_invalid_utf8_bytes_is_repaired(otlp):
    body = json.dumps(_json(_request(_attr_value, otlp))).encode().replace(MARKER.encode(), INVALID)
    decoded = decode_json(body)
    assert _span_count(decoded.request) == 2
    assert decoded.defects == Defects(0, 1, "invalid UTF-8 replaced with U+FFFD in 1 string(s), first at "
                                             "resourceSpans[1].scopeSpans[0].spans[0].attributes['gen_ai.request.model']"
                                             ".value.stringValue")
    model = decoded.request.resource_spans[1].scope_spans[0].spans[0].attributes[2].value.string_value
    assert model == REPAIRED


def test_json_lone_surrogate_escape_is_repaired(otlp):
    body = json.dumps(_json(_request(_name, otlp))).replace(MARKER, "\\ud800x")
    decoded = decode_json(body.encode())
    assert decoded.request.resource_spans[1].scope_spans[0].spans[0].name == "\ufffdx"
    assert decoded.defects is not None and decoded.defects.repaired_values == 1


@pytest.mark.parametrize(("field", "value"), [("traceId", "zz"), ("startTimeUnixNano", "soon"),
                                                ("attributes", {"a": 1}), ("kind", {"x": 1})])
def test_json_span_with_a_bad_field_is_rejected_alone(otlp, field, value):
    obj = _json(_request(None, otlp))
    obj["resourceSpans"][1]["scopeSpans"][0]["spans"][0][field] = value
    decoded = decode_json(json.dumps(obj).encode())
    assert _span_count(decoded.request) == 1
    assert decoded.request.resource_spans[0].resource.attributes[0].value.string_value == "svc-a"
    assert decoded.defects is not None and decoded.defects.rejected_spans == 1
    assert decoded.defects.message.startswith("1 span(s) rejected, first: resourceSpans[1].scopeSpans[0].spans[0]: ")


def test_json_span_that_is_not_an_object_is_rejected_alone(otlp):
    obj = _json(_request(None, otlp))
    obj["resourceSpans"][1]["scopeSpans"][0]["spans"].append(7)
    decoded = decode_json(json.dumps(obj).encode())
    assert _span_count(decoded.request) == 2 and decoded.defects.rejected_spans == 1


def test_json_resource_with_a_bad_field_rejects_its_spans(otlp):
    obj = _json(_request(None, otlp))
    obj["resourceSpans"][1]["resource"] = {"attributes": "nope"}
    decoded = decode_json(json.dumps(obj).encode())
    assert _span_count(decoded.request) == 1
    assert decoded.defects.rejected_spans == 1 and "resourceSpans[1] (resource)" in decoded.defects.message


@pytest.mark.parametrize("body", [b"{not json", b'{"resourceSpans":"x"}', b'{"resourceSpans":[{"scopeSpans":5}]}',
                                  b'{"resourceSpans":[{"scopeSpans":[{"spans":5}]}]}', b"[1]", b"\xff\xfe{"])
def test_json_with_broken_framing_is_refused(body):
    with pytest.raises(DecodeError):
        decode_json(body)


# ---------------------------------------------------------------- JSON lines (replay)


def test_json_lines_are_decoded_leniently(tmp_path, otlp):
    good = json.dumps(_json(_request(None, otlp))).encode()
    bad = json.dumps(_json(_request(_attr_value, otlp))).encode().replace(MARKER.encode(), INVALID)
    path = tmp_path / "spans.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join([good, bad, b"{broken", b'{"resourceMetrics":[]}']) + b"\n"))
    skipped: list[BadLine] = []
    got = list(iter_decoded_lines(str(path), on_bad_line=skipped.append))
    assert [(n, d.defects is None, _span_count(d.request)) for n, d in got] == [(1, True, 2), (2, False, 2)]
    assert [b.line_no for b in skipped] == [3, 4]


def test_defect_message_stays_small_whatever_the_input(otlp):
    obj = _json(_request(None, otlp))
    obj["resourceSpans"][1]["k" * 100_000] = {"x": "\ud800"}  # an unknown field, named in the path
    obj["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["traceId"] = "!" * 100_000
    decoded = decode_json(json.dumps(obj).encode())
    assert decoded.defects is not None and decoded.defects.rejected_spans == 1
    assert decoded.defects.repaired_values == 1 and len(decoded.defects.message) <= 1100


@pytest.mark.parametrize("position", ["attribute-value", "attribute-key", "span-name", "service-name", "nested-arrays",
                                      "kvlist-value", "resource-attribute-value"])
def test_json_and_protobuf_repair_the_same_bytes_to_the_same_text(otlp, position):
    """Replay (OTLP/JSON lines) must equal live (protobuf): the same bad bytes, the same repair."""
    req = _request(POSITIONS[position][0], otlp)
    from_protobuf = decode_protobuf(_corrupt(req)).request
    from_json = decode_json(json.dumps(_json(req)).encode().replace(MARKER.encode(), INVALID)).request
    assert from_json == from_protobuf


def test_broken_framing_in_an_ascii_attribute_of_a_repaired_span_refuses_the_request(otlp):
    span = Span(name=MARKER).SerializeToString() + length_delimited(9, b"\x0a\x05ab")  # key runs past its KeyValue
    body = _request(None, otlp).SerializeToString() + length_delimited(1, length_delimited(2, length_delimited(2, span)))
    with pytest.raises(DecodeError, match="invalid protobuf ExportTraceServiceRequest"):
        decode_protobuf(body.replace(MARKER.encode(), INVALID))
