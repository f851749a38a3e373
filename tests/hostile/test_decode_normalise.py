"""Every hostile request, straight through the decode and normalise stages (no network).

The receiver tests (``test_receivers.py``) check the answers on the wire; this file pins the two
stages that turn untrusted bytes into call records: decoding — as the receivers do it, strict
first, then lenient (``receive/lenient.py``) — either succeeds or raises the one ``DecodeError``
(never another exception); every span the request frames is either decoded or rejected (counted
against the wire format itself, not the decoder); and normalising a decoded request accounts for
every span (record, rejected or skipped) and never raises.
"""

from __future__ import annotations

import time

import pytest
from hostile_corpus import JSON, HostileCase, build_corpus, envelope_span_count, received_span_count

from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
from gensight.processor.receive.decode import DecodeError, gunzip
from gensight.processor.receive.lenient import Decoded, decode_request
from gensight.processor.records import CallRecord

BASE_NS = time.time_ns() - time.time_ns() % 60_000_000_000
CASES = build_corpus(BASE_NS)
MAX_KEY_CHARS = 256  # series-key strings (service, provider, model/tool/source, error type) are clipped to this


def _decode(case: HostileCase, body: bytes, encoding: str) -> Decoded:
    if case.content_encoding == "gzip":
        body = gunzip(body, 16 << 20)
    return decode_request(body, encoding)


def _kept(decoded: Decoded) -> int:
    return sum(len(ss.spans) for rs in decoded.request.resource_spans for ss in rs.scope_spans)


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
    if "head" in case.tags:
        pytest.skip("request head refused by the HTTP parser before decoding")
    try:
        decoded = _decode(case, case.body, encoding)
    except DecodeError as exc:
        assert exc.message, "a DecodeError must say why"
        assert case.expected_outcome() in ("reject", "either"), f"{case.name} should decode"
        return
    if case.http_status in (None, 400):  # 413/415 are refused before decoding, not by it
        assert case.expected_outcome() in ("accept", "either"), f"{case.name} should be refused"
    if case.content_encoding is None and encoding == "protobuf":
        # every span the bytes frame is decoded or rejected: none silently lost
        rejected = decoded.defects.rejected_spans if decoded.defects is not None else 0
        assert _kept(decoded) + rejected == envelope_span_count(case.body)
        assert decoded.raw is not None and type(decoded.request).FromString(decoded.raw) == decoded.request


@pytest.mark.parametrize("case", [c for c in CASES if "utf8" in c.tags], ids=lambda c: c.name)
def test_invalid_utf8_is_repaired_and_named_without_losing_a_span(case: HostileCase):
    decoded = decode_request(case.body)
    assert decoded.defects is not None and decoded.defects.rejected_spans == 0
    assert decoded.defects.repaired_values >= 1
    assert decoded.defects.message.startswith("invalid UTF-8 replaced with U+FFFD")
    assert "resource_spans[1]" in decoded.defects.message  # the hostile part, not the valid spans
    assert _kept(decoded) == envelope_span_count(case.body)


@pytest.mark.parametrize("accelerate", [True, False], ids=["c-scanner", "protobuf-api"])
@pytest.mark.parametrize("case", [c for c in CASES if c.expected_outcome() == "accept"], ids=lambda c: c.name)
def test_normalising_accounts_for_every_span_and_clips_keys(case: HostileCase, accelerate: bool):
    decoded = _decode(case, case.body, "json" if case.content_type == JSON else "protobuf")
    normaliser = Normaliser(NormaliseConfig(), None, b"k", accelerate=accelerate)
    result = normaliser.normalise(decoded.request, decoded.raw)
    assert len(result.records) + result.skipped + result.rejected == _kept(decoded)
    for rec in result.records:
        assert isinstance(rec, CallRecord)
        for value in (rec.service, rec.provider, rec.target, rec.error_type or ""):
            assert isinstance(value, str) and len(value) <= MAX_KEY_CHARS


@pytest.mark.parametrize("case", [c for c in CASES if c.json_body], ids=lambda c: c.name)
def test_json_encoding_of_a_case_decodes_to_the_same_spans(case: HostileCase):
    assert case.json_body is not None
    assert received_span_count(case.json_body, "json") == received_span_count(case.body)
