"""Every hostile request, straight through the decode and normalise stages (no network).

The receiver tests (``test_receivers.py``) check the answers on the wire; this file pins the two
stages that turn untrusted bytes into call records: decoding either succeeds or raises the one
``DecodeError`` (never another exception), and normalising a decoded request accounts for every
span (record, rejected or skipped) and never raises.
"""

from __future__ import annotations

import time

import pytest
from hostile_corpus import JSON, HostileCase, build_corpus, span_count

from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
from gensight.processor.receive.decode import DecodeError, decode_trace_request
from gensight.processor.records import CallRecord

BASE_NS = time.time_ns() - time.time_ns() % 60_000_000_000
CASES = build_corpus(BASE_NS)
MAX_KEY_CHARS = 256  # series-key strings (service, provider, model/tool/source, error type) are clipped to this


def _decode(case: HostileCase, body: bytes, encoding: str) -> object:
    return decode_trace_request(body, encoding=encoding, gzip=case.content_encoding == "gzip",
                                max_decompressed_bytes=16 << 20)


def test_the_corpus_holds_at_least_200_requests():
    bodies = len(CASES) + sum(1 for c in CASES if c.json_body)
    assert len(CASES) >= 200 and bodies >= 300


def test_the_corpus_is_deterministic():
    first, again = build_corpus(BASE_NS, big=False), build_corpus(BASE_NS, big=False)
    assert [(c.name, c.body, c.json_body) for c in again] == [(c.name, c.body, c.json_body) for c in first]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_decoding_succeeds_or_raises_decode_error(case: HostileCase):
    encoding = "json" if case.content_type == JSON else "protobuf"
    if case.content_encoding not in (None, "gzip"):
        pytest.skip("content encoding refused by the HTTP receiver before decoding")
    try:
        request = _decode(case, case.body, encoding)
    except DecodeError as exc:
        assert exc.message, "a DecodeError must say why"
        assert case.expected_outcome() in ("reject", "either"), f"{case.name} should decode"
        return
    if case.expect == "parse" and case.content_encoding is None and encoding == "protobuf":
        assert span_count(case.body) is not None
    assert request is not None


@pytest.mark.parametrize("case", [c for c in CASES if c.expected_outcome() == "accept"], ids=lambda c: c.name)
def test_normalising_accounts_for_every_span_and_clips_keys(case: HostileCase):
    request = decode_trace_request(case.body)
    normaliser = Normaliser(NormaliseConfig(), None, b"k")
    result = normaliser.normalise(request)
    spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    assert len(result.records) + result.skipped + result.rejected == spans
    for rec in result.records:
        assert isinstance(rec, CallRecord)
        for value in (rec.service, rec.provider, rec.target, rec.error_type or ""):
            assert isinstance(value, str) and len(value) <= MAX_KEY_CHARS


@pytest.mark.parametrize("case", [c for c in CASES if c.json_body], ids=lambda c: c.name)
def test_json_encoding_of_a_case_decodes_to_the_same_spans(case: HostileCase):
    assert case.json_body is not None
    request = decode_trace_request(case.json_body, encoding="json")
    spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    assert spans == span_count(case.body)
