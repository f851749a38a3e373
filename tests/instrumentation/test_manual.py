"""track_llm_call: the manual API gives the same span, metrics and cost as the instrumentors."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from gensight import pricing
from gensight.instrumentation import attributes as A
from gensight.instrumentation import manual, track_llm_call


@pytest.fixture
def configured(tracer_provider, meter_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    return manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _only(exporter):
    (span,) = exporter.get_finished_spans()
    return span


def test_tracked_call_is_a_chat_span_with_usage_and_table_cost(configured, span_exporter):
    with track_llm_call("openai", "gpt-4o-mini", server_address="llm.internal", server_port=8443) as call:
        call.set_usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024)
        call.set_response(model="gpt-4o-mini-2024-07-18", id="resp_1", finish_reasons=["stop"])
    span = _only(span_exporter)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == SpanKind.CLIENT
    attrs = span.attributes
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[A.SERVER_ADDRESS] == "llm.internal" and attrs[A.SERVER_PORT] == 8443
    assert attrs[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 1200
    assert attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 1024
    expected = pricing.default_table().cost_usd("openai", "gpt-4o-mini", 1200, 300, cache_read_tokens=1024)
    assert attrs[A.GEN_AI_USAGE_COST] == pytest.approx(expected)


def test_tracked_call_records_the_shared_metrics(configured, metric_points):
    with track_llm_call("anthropic", "claude-haiku-4-5", input_tokens=100, output_tokens=20):
        pass
    points = metric_points()
    tokens = {dict(p.attributes)[A.GEN_AI_TOKEN_TYPE]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": 100, "output": 20}
    assert points["gen_ai.client.cost"][0].value == pytest.approx((100 * 1.0 + 20 * 5.0) / 1e6)
    assert len(points["gen_ai.client.operation.duration"]) == 1


def test_cache_hit_is_marked_and_costs_nothing_but_keeps_its_tokens(configured, span_exporter, metric_points):
    with track_llm_call("openai", "gpt-4o-mini", cache_hit=True, input_tokens=800, output_tokens=90):
        pass
    attrs = _only(span_exporter).attributes
    assert attrs[A.GENSIGHT_CACHE_HIT] is True
    assert attrs[A.GEN_AI_USAGE_COST] == 0.0
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 800
    (duration,) = metric_points()["gen_ai.client.operation.duration"]
    assert dict(duration.attributes)[A.GENSIGHT_CACHE_HIT] is True


def test_cache_miss_is_marked_false_and_priced(configured, span_exporter):
    with track_llm_call("openai", "gpt-4o-mini", cache_hit=False, input_tokens=800, output_tokens=90):
        pass
    attrs = _only(span_exporter).attributes
    assert attrs[A.GENSIGHT_CACHE_HIT] is False
    assert attrs[A.GEN_AI_USAGE_COST] > 0


def test_no_cache_argument_sets_no_cache_attribute(configured, span_exporter):
    with track_llm_call("openai", "gpt-4o-mini", input_tokens=1, output_tokens=1):
        pass
    assert A.GENSIGHT_CACHE_HIT not in _only(span_exporter).attributes


def test_caller_cost_wins_over_the_table(configured, span_exporter):
    with track_llm_call("acme", "in-house-7b", input_tokens=10, output_tokens=10, cost_usd=0.25):
        pass
    assert _only(span_exporter).attributes[A.GEN_AI_USAGE_COST] == 0.25


def test_unknown_model_gets_tokens_but_no_cost(configured, span_exporter):
    with track_llm_call("acme", "in-house-7b", input_tokens=10, output_tokens=10):
        pass
    attrs = _only(span_exporter).attributes
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    assert A.GEN_AI_USAGE_COST not in attrs


def test_exception_fails_the_span_and_is_reraised(configured, span_exporter):
    class ProviderDown(Exception):
        pass

    with pytest.raises(ProviderDown), track_llm_call("acme", "m"):
        raise ProviderDown("503")
    span = _only(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ProviderDown"


@pytest.mark.parametrize("bad", [-5, "12", 3.5, True])
def test_bad_token_counts_are_dropped_not_raised(configured, span_exporter, bad):
    with track_llm_call("openai", "gpt-4o-mini") as call:
        call.set_usage(input_tokens=bad, output_tokens=7)
    attrs = _only(span_exporter).attributes
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 7


def test_negative_cost_is_ignored(configured, span_exporter):
    with track_llm_call("acme", "m", input_tokens=1, output_tokens=1, cost_usd=-1.0):
        pass
    assert A.GEN_AI_USAGE_COST not in _only(span_exporter).attributes


async def test_async_with_and_embeddings_operation(configured, span_exporter):
    async with track_llm_call("openai", "text-embedding-3-small", operation="embeddings", input_tokens=12):
        pass
    span = _only(span_exporter)
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "embeddings"


def test_span_is_current_inside_the_block(configured, span_exporter):
    from opentelemetry import trace

    with track_llm_call("acme", "m") as call:
        current = trace.get_current_span()
    assert current is call.invocation.span


def test_handle_used_outside_with_raises_a_clear_error(configured):
    call = track_llm_call("acme", "m")
    with pytest.raises(RuntimeError, match="must be entered"):
        call.set_usage(input_tokens=1)


def test_streamed_manual_call_records_time_to_first_chunk(configured, span_exporter, metric_points):
    with track_llm_call("acme", "m", input_tokens=3) as call:
        for _ in range(3):
            call.mark_first_chunk()
    assert _only(span_exporter).attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert metric_points()["gen_ai.client.operation.time_to_first_chunk"][0].count == 1
