"""The hostile corpus against a running processor, over gRPC and OTLP/HTTP (protobuf and JSON).

One processor (``ProcessorServer``: both receivers, the real pipeline, the OTLP metrics exporter
to a real gRPC sink) receives every case of ``hostile_corpus`` once per transport. For each
request the suite checks that it was

* answered: rejected with the right status (gRPC ``INVALID_ARGUMENT`` / HTTP 400, 413 for
  oversize, 415 for a wrong content type or encoding) or accepted (``OK`` / 200, unusable spans in
  ``partial_success``);
* counted: every span of an accepted request lands in exactly one ``gensight.processor.spans``
  outcome (``partial_success.rejected_spans`` of them as ``dropped``); a rejected request counts
  no span and is counted by its receiver;
* survived: gRPC health and ``/healthz`` answer after it;

and, after a graceful stop that flushes every window, that the valid spans sharing a request
with hostile ones gave exactly the metrics they would have given alone, that every exported
metrics request stays small, and that the exported self-telemetry matches the counts.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import pytest
from harness import MetricsSink, processor_config, wait_for
from hostile_client import Answer, grpc_channel, grpc_health, http_get, send_grpc, send_http
from hostile_corpus import (
    JSON,
    PROTOBUF,
    VALID_INPUT_TOKENS,
    VALID_MODEL,
    VALID_OUTPUT_TOKENS,
    VALID_SPANS,
    HostileCase,
    build_corpus,
    received_span_count,
)

from gensight.processor.pipeline.pipeline import OUTCOMES
from gensight.processor.server import ProcessorServer

MAX_MESSAGE_MIB = 16
WINDOW_S = 60.0
# Exported metrics requests must fit the gRPC default receive limit of backends (4 MiB).
MAX_EXPORT_REQUEST_BYTES = 4 << 20
BASE_NS = time.time_ns()
CASES = build_corpus(BASE_NS)


class Sent(NamedTuple):
    transport: str  # grpc | http-protobuf | http-json | http
    answer: Answer
    spans: int | None  # spans in the request (None: undecodable)
    delta: dict[str, int]  # change of gensight.processor.spans per outcome
    receiver_delta: dict[str, int]  # change of the receiver's request counters
    healthy: bool


class Run(NamedTuple):
    sent: dict[str, list[Sent]]
    valid_calls_expected: dict[str, int]
    calls: dict[tuple[str, tuple], Any]  # last exported gensight.calls per (service, attributes)
    tokens: dict[tuple[str, tuple], Any]
    self_spans: dict[tuple[str, tuple], Any]
    export_sizes: list[int]
    final_counts: dict[str, int]
    requests: dict[tuple[str, tuple], Any]  # last exported gensight.processor.requests


def _counts(server: ProcessorServer) -> dict[str, int]:
    with server.pipeline._lock:
        return dict(server.pipeline.counts)


def _rx_counts(server: ProcessorServer) -> dict[str, int]:
    out: dict[str, int] = {}
    for rx in server.receivers:
        for k, v in rx.stats()._asdict().items():
            out[f"{type(rx).__name__}.{k}"] = v
    return out


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def _expected_spans(case: HostileCase, transport: str, body: bytes) -> int | None:
    """Spans the processor must account for (kept by decoding + rejected by it); None: refused."""
    if transport == "http-json" or (transport == "http" and case.content_type == JSON):
        if case.content_encoding:
            return None
        return received_span_count(body, "json")
    if case.content_encoding == "gzip" or (transport == "http" and case.content_type != PROTOBUF):
        return None
    return received_span_count(body)


@pytest.fixture(scope="module")
def run() -> Any:
    sink = MetricsSink()
    config = processor_config(
        sink.port,
        receivers={"grpc": {"max_recv_msg_size_mib": MAX_MESSAGE_MIB}, "http": {"max_request_body_mib": MAX_MESSAGE_MIB}},
        pipeline={"window_s": WINDOW_S, "allowed_lateness_s": 5.0, "idle_tick_s": 0.05},
        series={"max_series": 50_000},  # the corpus holds ~3 k distinct series; the cap has its own tests
    )
    # The corpus was built at import with timestamps around BASE_NS. The processor's wall clock is
    # pinned there: a moving clock caps the watermark at "now - lateness", so where BASE_NS fell
    # late in a 60-s window, the valid spans' window closed mid-run and later valid spans were
    # (correctly) late — a result that depended on load and on the minute the suite ran in.
    server = ProcessorServer(config, wall_ns=lambda: BASE_NS)
    server.start()
    channel = grpc_channel(f"127.0.0.1:{server.grpc_port}")
    sent: dict[str, list[Sent]] = {}
    valid_expected: dict[str, int] = {}
    try:
        for case in CASES:
            plans: list[tuple[str, bytes]] = []
            if case.transport == "protobuf":
                plans += [("grpc", case.body), ("http-protobuf", case.body)]
                if case.json_body is not None:
                    plans.append(("http-json", case.json_body))
            else:
                plans.append(("http", case.body))
            results = []
            for transport, body in plans:
                before, rx_before = _counts(server), _rx_counts(server)
                if transport == "grpc":
                    answer = send_grpc(channel, body)
                elif transport == "http-protobuf":
                    answer = send_http(server.http_port, body, content_type=PROTOBUF)
                elif transport == "http-json":
                    answer = send_http(server.http_port, body, content_type=JSON)
                else:
                    answer = send_http(server.http_port, body, content_type=case.content_type,
                                       content_encoding=case.content_encoding)
                spans = _expected_spans(case, transport, body)
                if answer.ok and spans:
                    # accepted/late are counted by the pipeline worker: wait until it caught up
                    wait_for(lambda b=before, n=spans: sum(_delta(_counts(server), b).values()) >= n, timeout_s=20)
                delta = _delta(_counts(server), before)
                healthy = grpc_health(channel) == "SERVING" and http_get(server.http_port, "/healthz")[0] == 200
                results.append(Sent(transport, answer, spans, delta, _delta(_rx_counts(server), rx_before), healthy))
                if answer.ok and case.valid_service:
                    valid_expected[case.valid_service] = valid_expected.get(case.valid_service, 0) + VALID_SPANS
            sent[case.name] = results
    finally:
        channel.close()
        server.stop()  # graceful: flushes every open window to the sink
        final = _counts(server)
        sink.stop()
    return Run(sent, valid_expected, sink.latest("gensight.calls"), sink.latest("gensight.tokens"),
               sink.latest("gensight.processor.spans"), [len(b) for b in sink.raw], final,
               sink.latest("gensight.processor.requests"))


def _sent(run: Run, case: HostileCase) -> list[Sent]:
    return run.sent[case.name]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_request_is_answered_with_the_right_status(run: Run, case: HostileCase):
    for s in _sent(run, case):
        expected = case.expected_outcome()
        if s.transport == "http-json" and case.expect == "parse":
            expected = "accept" if s.spans is not None else "reject"
        if expected == "either":
            expected = "accept" if s.answer.ok else "reject"
        if expected == "accept":
            assert s.answer.ok, f"{s.transport}: {s.answer}"
        elif s.transport == "grpc":
            assert s.answer.code == (case.grpc_status or "INVALID_ARGUMENT"), f"{s.transport}: {s.answer}"
        else:
            allowed = {case.http_status} if case.http_status else {400, 413, 415}
            assert int(s.answer.code) in allowed, f"{s.transport}: {s.answer}"
            assert s.answer.message, "a rejection says why"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_span_is_counted_once(run: Run, case: HostileCase):
    for s in _sent(run, case):
        if s.answer.ok:
            assert sum(s.delta.values()) == (s.spans or 0), f"{s.transport}: {s.delta} for {s.spans} spans"
            assert s.delta.get("dropped", 0) == s.answer.rejected_spans, f"{s.transport}: {s.delta} vs {s.answer}"
            assert set(s.delta) <= set(OUTCOMES)
        else:
            assert s.delta == {}, f"{s.transport}: a rejected request counted spans {s.delta}"
            refusals = {k: v for k, v in s.receiver_delta.items()
                        if k.split(".")[1] in ("invalid", "too_large", "unsupported")}
            if s.answer.code != "RESOURCE_EXHAUSTED":  # gRPC core refuses oversize before our handler
                assert sum(refusals.values()) == 1, f"{s.transport}: receiver counters {s.receiver_delta}"


@pytest.mark.parametrize("case", [c for c in CASES if "utf8" in c.tags], ids=lambda c: c.name)
def test_invalid_utf8_is_answered_ok_with_a_partial_success_warning(run: Run, case: HostileCase):
    for s in _sent(run, case):
        assert s.answer.ok and s.answer.rejected_spans == 0, f"{s.transport}: {s.answer}"
        assert s.answer.message.startswith("invalid UTF-8 replaced with U+FFFD in "), f"{s.transport}: {s.answer}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_process_is_healthy_after_the_request(run: Run, case: HostileCase):
    assert all(s.healthy for s in _sent(run, case))


@pytest.mark.parametrize("case", [c for c in CASES if c.valid_service], ids=lambda c: c.name)
def test_valid_spans_in_the_same_batch_give_unaffected_results(run: Run, case: HostileCase):
    service = case.valid_service
    expected_calls = run.valid_calls_expected.get(service or "", 0)
    calls = {attrs: v for (svc, attrs), v in run.calls.items() if svc == service}
    tokens = {dict(attrs)["gen_ai.token.type"]: v for (svc, attrs), v in run.tokens.items() if svc == service}
    if expected_calls == 0:
        assert calls == {}
        return
    series = {attrs: v for attrs, v in calls.items() if dict(attrs).get("gen_ai.request.model") == VALID_MODEL}
    assert series == {
        (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"), ("gen_ai.request.model", VALID_MODEL),
         ("outcome", "ok")): expected_calls,
    }
    n = expected_calls
    assert tokens == {"input": n * VALID_INPUT_TOKENS, "output": n * VALID_OUTPUT_TOKENS}


def test_exported_metrics_requests_stay_small(run: Run):
    assert run.export_sizes, "nothing exported"
    assert max(run.export_sizes) <= MAX_EXPORT_REQUEST_BYTES


def test_exported_self_telemetry_matches_the_counts(run: Run):
    exported = {dict(attrs)["outcome"]: v for (_, attrs), v in run.self_spans.items()}
    assert exported == {k: float(v) for k, v in run.final_counts.items()}


def test_requests_rejected_before_their_spans_could_be_counted_are_in_exported_self_telemetry(run: Run):
    exported: dict[str, float] = {}
    for (_, attrs), value in run.requests.items():
        outcome = dict(attrs)["outcome"]
        exported[outcome] = exported.get(outcome, 0) + value
    answers = [s.answer for sent in run.sent.values() for s in sent]
    invalid = sum(1 for a in answers if a.code in ("INVALID_ARGUMENT", "400"))
    assert exported.get("invalid", 0) == invalid
    assert exported.get("unsupported", 0) == sum(1 for a in answers if a.code == "415")
    assert exported.get("too_large", 0) == sum(1 for a in answers if a.code == "413")
