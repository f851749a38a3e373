"""The C span scanner (``_spanscan.c``) against the protobuf-API reader it accelerates.

The scanner is only allowed to be faster: for any request protobuf accepts, the records, counts
and messages must equal the reference reader's, and for any bytes at all it must return rows or
None (decline), never crash. Hypothesis generates the hostile mixes: every key the normaliser
reads, every AnyValue type, repeated keys, several resources, out-of-order fields.
"""

from __future__ import annotations

import math
import shutil
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from otlp_wire import key_value, length_delimited

from gensight.pricing import PricingTable
from gensight.processor.normalise import normaliser as normalise
from gensight.processor.normalise import values as slot_values
from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser

KEY = b"test-key"
PRICING = PricingTable.bundled()
TENANTS = ("enduser.id", "app.tenant")
T0_NS = 1_700_000_000_000_000_000

needs_scanner = pytest.mark.skipif(normalise._spanscan is None, reason="C scanner not built (no compiler)")


def pair() -> tuple[Normaliser, Normaliser]:
    cfg = NormaliseConfig(tenant_attributes=TENANTS)
    return Normaliser(cfg, PRICING, KEY, accelerate=True), Normaliser(cfg, PRICING, KEY, accelerate=False)


def _records_equal(a, b) -> bool:
    """NormaliseResults equal, NaN-safe (a NaN never reaches a record, but compare robustly)."""
    return repr(a) == repr(b)


def test_scanner_is_built_wherever_a_c_compiler_exists():
    # CI machines have gcc: a silently failed optional build would hide a 3x slowdown
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the pure-Python reader is used")
    assert normalise._spanscan is not None
    assert pair()[0].accelerated and not pair()[1].accelerated


# -- building requests -------------------------------------------------------------------------

def build(resources) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for resource_attrs, spans in resources:
        rs = req.resource_spans.add()
        rs.resource.attributes.extend(key_value(k, x) for k, x in resource_attrs)
        ss = rs.scope_spans.add()
        for i, (start, end, status, attrs) in enumerate(spans):
            span = ss.spans.add()
            span.trace_id = b"\x01" * 16
            span.span_id = (i + 1).to_bytes(8, "big")
            span.start_time_unix_nano = start
            span.end_time_unix_nano = end
            span.status.code = status
            span.attributes.extend(key_value(k, x) for k, x in attrs)
    return req


# -- strategies --------------------------------------------------------------------------------

READ_KEYS = sorted({k for group in normalise._SLOT_GROUPS for k in group} | set(TENANTS))
DOC_KEYS = [f"retrieval.documents.{i}.document.score" for i in range(3)]
OTHER_KEYS = ["http.method", "db.system.name", "gen_ai.prompt", "", "llm.usage", "retrieval.documents.x"]
scalars = st.one_of(
    st.sampled_from(["chat", "embeddings", "execute_tool", "retrieval", "LLM", "tool", "openai", "OpenAI ",
                     "gpt-4o-mini", "claude-sonnet-4", "USD", "eur", "true", "False", "12", "1e400", "nan", "",
                     "stop", "x" * 300]),
    st.text(max_size=8),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, 7, 1500, 2**53, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=4),
    st.just(AnyValue()),  # an unset value
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=3), scalars,
                                                                               max_size=1)), max_size=3),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
attrs = st.lists(st.tuples(st.sampled_from(READ_KEYS + DOC_KEYS + OTHER_KEYS), values), max_size=14)
times = st.one_of(st.just(0), st.integers(T0_NS, T0_NS + 10**12), st.integers(0, 2**64 - 1))
spans = st.lists(st.tuples(times, times, st.sampled_from([0, 1, 2, 7]), attrs), max_size=6)
resource_attrs = st.lists(st.tuples(st.sampled_from(["service.name", *TENANTS, "host.name"]), values), max_size=4)
requests = st.lists(st.tuples(resource_attrs, spans), max_size=3)


@needs_scanner
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_scanner_gives_the_reference_readers_results_for_any_request(resources):
    fast, ref = pair()
    req = build(resources)
    raw = req.SerializeToString()
    assert _records_equal(fast.normalise(req, raw), ref.normalise(req))


@needs_scanner
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_scanner_never_crashes_on_arbitrary_bytes(data):
    fast, ref = pair()
    table = fast._slots
    out = table.scan(data)  # rows or None: never an exception, never a crash
    assert out is None or isinstance(out, list)
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(data)
    except Exception:
        return  # receivers answer INVALID_ARGUMENT before normalising
    assert _records_equal(fast.normalise(req, data), ref.normalise(req))


# -- hand-written wire edge cases ---------------------------------------------------------------

def _chat_span(*extra_kv: bytes) -> bytes:
    kv = KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")).SerializeToString()
    times = bytes([7 << 3 | 1]) + struct.pack("<Q", T0_NS) + bytes([8 << 3 | 1]) + struct.pack("<Q", T0_NS + 10**9)
    return times + length_delimited(9, kv) + b"".join(length_delimited(9, e) for e in extra_kv)


def _request(span: bytes) -> bytes:
    return length_delimited(1, length_delimited(2, length_delimited(2, span)))


@pytest.mark.parametrize("accelerated", [True, False], ids=["c-scanner", "reference"])
def test_records_carry_the_spans_trace_and_span_ids(accelerated):
    if accelerated and normalise._spanscan is None:
        pytest.skip("C scanner not built")
    req = build([([("service.name", "svc")], [(T0_NS, T0_NS + 10**9, 0, [("gen_ai.operation.name", "chat")])] * 2)])
    [first, second] = pair()[0 if accelerated else 1].normalise(req, req.SerializeToString()).records
    assert (first.trace_id, first.span_id) == (b"\x01" * 16, (1).to_bytes(8, "big"))
    assert second.span_id == (2).to_bytes(8, "big")


@needs_scanner
def test_scanner_takes_the_last_of_repeated_span_ids_as_protobuf_does():
    span = _chat_span() + length_delimited(2, b"\xaa" * 8) + length_delimited(2, b"\xbb" * 8)
    [(_, [row], _)] = pair()[0]._slots.scan(_request(span))
    assert row[4] == b"\xbb" * 8


@needs_scanner
def test_scanner_reads_a_plain_span():
    out = pair()[0]._slots.scan(_request(_chat_span()))
    assert out is not None
    [(pairs, rows, skipped)] = out
    assert pairs == [] and skipped == 0 and len(rows) == 1
    assert rows[0][:3] == (T0_NS, T0_NS + 10**9, 0) and rows[0][normalise._OP] == "chat"


@needs_scanner
@pytest.mark.parametrize("kv", [
    pytest.param(length_delimited(2, AnyValue(string_value="a").SerializeToString()) * 2 + length_delimited(1, b"error.type"),
                 id="value-field-repeated"),
    pytest.param(length_delimited(1, b"error.type") * 2, id="key-field-repeated"),
    pytest.param(length_delimited(1, b"error.type") + length_delimited(2, b"\x0a\x01a\x18\x01"), id="two-oneof-members"),
    pytest.param(length_delimited(1, b"error.type") + length_delimited(2, b"\x0a\x02\xff\xfe"), id="invalid-utf8"),
    pytest.param(length_delimited(1, b"error.type") + b"\x13\x14", id="group-wire-type"),
])
def test_scanner_declines_what_it_does_not_reproduce_exactly(kv):
    # the normaliser then reads the request through the protobuf API instead
    assert pair()[0]._slots.scan(_request(_chat_span(kv))) is None


@needs_scanner
@pytest.mark.parametrize("tail", [
    pytest.param(bytes([7 << 3 | 1]) + b"\x01\x02\x03", id="fixed64-start-time"),
    pytest.param(length_delimited(15, b"\x18") , id="varint-status-code"),
    pytest.param(bytes([9 << 3 | 2, 0x05]) + b"\x0a\x03ab", id="length-beyond-end"),
    pytest.param(length_delimited(9, length_delimited(1, b"gen_ai.usage.cost") + length_delimited(2, b"\x21\x00\x00")),
                 id="fixed64-double-value"),
    pytest.param(length_delimited(9, length_delimited(1, b"gen_ai.usage.input_tokens") + length_delimited(2, b"\x18\xff\xff")),
                 id="varint-int-value"),
])
def test_scanner_declines_a_field_cut_short_at_the_end_of_the_request(tail):
    # every container length is right, so only the innermost read runs past the buffer's end: the
    # scanner must see that itself (the sanitizer run of this file would catch an overread)
    assert pair()[0]._slots.scan(_request(_chat_span() + tail)) is None


@needs_scanner
def test_scanner_declines_truncated_bytes():
    data = _request(_chat_span())
    for cut in range(1, len(data)):
        out = pair()[0]._slots.scan(data[:cut])
        assert out is None or out == [] or isinstance(out, list)


@needs_scanner
def test_scanner_keeps_the_first_dialect_key_and_the_last_repeat():
    req = build([([("service.name", "svc")], [(T0_NS, T0_NS + 5, 0, [
        ("gen_ai.operation.name", "chat"),
        ("llm.usage.prompt_tokens", 3), ("gen_ai.usage.input_tokens", 5), ("gen_ai.usage.input_tokens", 9),
        ("gen_ai.usage.prompt_tokens", 4),
    ])])])
    fast, ref = pair()
    raw = req.SerializeToString()
    [rec] = fast.normalise(req, raw).records
    assert rec.input_tokens == 9  # gen_ai.usage.input_tokens outranks the older names; its last value
    assert _records_equal(fast.normalise(req, raw), ref.normalise(req))


@needs_scanner
def test_scanner_string_cache_never_confuses_values():
    # more distinct model names than the cache has entries, interleaved with repeats
    models = [f"model-{i}" for i in range(3000)] + ["gpt-4o"] * 10
    req = build([([("service.name", "svc")], [
        (T0_NS, T0_NS + 5, 0, [("gen_ai.operation.name", "chat"), ("gen_ai.request.model", m)]) for m in models
    ])])
    recs = pair()[0].normalise(req, req.SerializeToString()).records
    assert [r.target for r in recs] == models


@needs_scanner
def test_scanner_skips_non_genai_spans_unread():
    req = build([([("service.name", "svc")], [(T0_NS, T0_NS + 5, 0, [("http.method", "GET")])] * 5)])
    [(pairs, rows, skipped)] = pair()[0]._slots.scan(req.SerializeToString())
    assert rows == [] and skipped == 5 and pairs[0][1] == "svc"


def test_unusable_values_are_bad_numbers_but_never_names():
    assert slot_values._number(slot_values.UNUSABLE) is False
    assert slot_values._str(slot_values.UNUSABLE) is None
    assert slot_values._number(math.inf) is False and slot_values._number("7") == 7.0
