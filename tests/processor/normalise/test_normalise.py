"""Normaliser: every dialect's span shape becomes the same CallRecord; bad input is counted."""

from __future__ import annotations

import math

import pytest

from gensight.pricing import PricingTable
from gensight.privacy import hash_id
from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
from gensight.processor.records import CHAT, EMBEDDINGS, EXECUTE_TOOL, INVOKE_AGENT, OTHER, RETRIEVAL

KEY = b"test-key"
PRICING = PricingTable.bundled()


@pytest.fixture(params=[True, False], ids=["c-scanner", "protobuf-api"])
def normaliser(request):
    """Every dialect test runs through both span readers (see normalise.py)."""
    return Normaliser(NormaliseConfig(), PRICING, KEY, accelerate=request.param)


def one(normaliser, otlp, spec, **kw):
    res = normaliser.normalise(otlp.request([spec], **kw))
    assert len(res.records) == 1, res
    return res.records[0]


# -- dialect fixtures (attribute sets as each instrumentation emits them) ----------------------

def test_gensight_chat_span_becomes_full_record(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "chat gpt-4o-mini", "_start": otlp.T0_NS, "_end": otlp.T0_NS + 1_250_000_000,
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.cost": 0.0002,
        "gen_ai.response.finish_reasons": ["stop"], "gen_ai.response.time_to_first_chunk": 0.3,
        "gensight.cache.hit": False,
    }, service="checkout")
    assert (rec.kind, rec.service, rec.provider, rec.target) == (CHAT, "checkout", "openai", "gpt-4o-mini")
    assert (rec.input_tokens, rec.output_tokens, rec.cached_tokens) == (1000, 100, 400)
    assert rec.cost_usd == 0.0002 and rec.cost_enriched is False
    assert rec.duration_s == pytest.approx(1.25)
    assert rec.finish_reason == "stop" and rec.ttfc_s == 0.3 and rec.cache_hit is False
    assert rec.error is False and rec.error_type is None


def test_older_semconv_system_and_prompt_tokens(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "chat gpt-4", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4",
        "gen_ai.usage.prompt_tokens": 50, "gen_ai.usage.completion_tokens": 7,
    })
    assert (rec.kind, rec.provider, rec.target) == (CHAT, "openai", "gpt-4")
    assert (rec.input_tokens, rec.output_tokens) == (50, 7)


def test_openllmetry_chat_span(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "openai.chat", "llm.request.type": "chat", "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "llm.usage.total_tokens": 130, "gen_ai.usage.prompt_tokens": 100, "gen_ai.usage.completion_tokens": 30,
        "gen_ai.usage.cache_read_input_tokens": 20, "llm.is_streaming": False,
        "gen_ai.openai.api_base": "https://api.openai.com/v1/",
    })
    assert (rec.kind, rec.provider, rec.target) == (CHAT, "openai", "gpt-4o-mini")
    assert (rec.input_tokens, rec.output_tokens, rec.cached_tokens) == (100, 30, 20)


def test_openllmetry_legacy_llm_usage_attributes(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "openai.completion", "llm.request.type": "completion", "llm.vendor": "OpenAI",
        "llm.request.model": "gpt-3.5-turbo", "llm.usage.prompt_tokens": 12, "llm.usage.completion_tokens": 3,
    })
    assert (rec.kind, rec.provider, rec.target) == ("text_completion", "openai", "gpt-3.5-turbo")
    assert (rec.input_tokens, rec.output_tokens) == (12, 3)


def test_openllmetry_tool_span_uses_entity_name(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "get_weather.tool", "traceloop.span.kind": "tool", "traceloop.entity.name": "get_weather",
        "traceloop.workflow.name": "assistant",
    })
    assert (rec.kind, rec.target) == (EXECUTE_TOOL, "get_weather")


def test_openlit_chat_span_keeps_reported_cost(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "chat gpt-4o", "gen_ai.system": "openai", "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 10,
        "gen_ai.usage.total_tokens": 20, "gen_ai.usage.cost": 0.5, "server.address": "api.openai.com",
    }, resource={"telemetry.sdk.name": "openlit"})
    assert rec.cost_usd == 0.5 and rec.cost_enriched is False


def test_openinference_llm_span(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "ChatCompletion", "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.provider": "openai", "llm.system": "openai", "llm.token_count.prompt": 200,
        "llm.token_count.completion": 40, "llm.token_count.total": 240,
        "llm.token_count.prompt_details.cache_read": 100, "llm.cost.total": 0.00009,
    })
    assert (rec.kind, rec.provider, rec.target) == (CHAT, "openai", "gpt-4o-mini-2024-07-18")
    assert (rec.input_tokens, rec.output_tokens, rec.cached_tokens) == (200, 40, 100)
    assert rec.cost_usd == 0.00009


def test_openinference_retriever_takes_best_document_score(normaliser, otlp):
    rec = one(normaliser, otlp, {
        "_name": "retrieve", "openinference.span.kind": "RETRIEVER",
        "retrieval.documents.0.document.id": "a", "retrieval.documents.0.document.score": 0.61,
        "retrieval.documents.1.document.id": "b", "retrieval.documents.1.document.score": 0.87,
    })
    assert rec.kind == RETRIEVAL and rec.relevance == pytest.approx(0.87)


def test_openinference_tool_and_agent_and_embedding_kinds(normaliser, otlp):
    res = normaliser.normalise(otlp.request([
        {"openinference.span.kind": "TOOL", "tool.name": "search"},
        {"openinference.span.kind": "AGENT"},
        {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "x"},
        {"openinference.span.kind": "CHAIN"},
    ]))
    assert [(r.kind, r.target) for r in res.records] == [
        (EXECUTE_TOOL, "search"), (INVOKE_AGENT, ""), (EMBEDDINGS, ""), (OTHER, "")]


def test_gensight_tool_and_retrieval_targets(normaliser, otlp):
    res = normaliser.normalise(otlp.request([
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order"},
        {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb-orders",
         "gensight.retrieval.top_score": 0.9},
    ]))
    assert [(r.kind, r.target) for r in res.records] == [(EXECUTE_TOOL, "lookup_order"), (RETRIEVAL, "kb-orders")]
    assert res.records[1].relevance == 0.9


def test_semconv_proposal_cost_amount_in_usd(normaliser, otlp):
    rec = one(normaliser, otlp, otlp.chat(**{"gen_ai.usage.cost.amount": 0.25, "gen_ai.usage.cost.currency": "USD"}))
    assert rec.cost_usd == 0.25 and not rec.cost_enriched


def test_cost_in_another_currency_is_not_summed_but_enriched(normaliser, otlp):
    res = normaliser.normalise(otlp.request([otlp.chat(**{"gen_ai.usage.cost.amount": 3.0,
                                                          "gen_ai.usage.cost.currency": "EUR"})]))
    rec = res.records[0]
    assert rec.cost_enriched and rec.cost_usd == pytest.approx(PRICING.cost_usd("openai", "gpt-4o-mini", 100, 20))
    assert res.values_dropped == 1


# -- cost enrichment -----------------------------------------------------------------------------

def test_tokens_without_cost_are_priced_from_table(normaliser, otlp):
    rec = one(normaliser, otlp, otlp.chat("gpt-4o-mini", input_tokens=1000, output_tokens=100,
                                          **{"gen_ai.usage.cache_read.input_tokens": 500}))
    assert rec.cost_enriched is True
    assert rec.cost_usd == pytest.approx(PRICING.cost_usd("openai", "gpt-4o-mini", 1000, 100, 500))


def test_enrichment_prices_the_response_snapshot_model(normaliser, otlp):
    rec = one(normaliser, otlp, otlp.chat("gpt-4o", **{"gen_ai.response.model": "gpt-4o-mini-2024-07-18"}))
    assert rec.cost_usd == pytest.approx(PRICING.cost_usd("openai", "gpt-4o-mini", 100, 20))


def test_unknown_model_gets_no_cost(normaliser, otlp):
    rec = one(normaliser, otlp, otlp.chat("my-private-model"))
    assert rec.cost_usd is None and rec.cost_enriched is False


def test_enrichment_can_be_switched_off(otlp):
    n = Normaliser(NormaliseConfig(enrich_cost=False), PRICING, KEY)
    assert n.normalise(otlp.request([otlp.chat()])).records[0].cost_usd is None


# -- skipping, errors, tenants ------------------------------------------------------------------

def test_non_genai_spans_are_skipped_and_counted(normaliser, otlp):
    res = normaliser.normalise(otlp.request([
        {"http.request.method": "GET", "url.path": "/health", "error.type": "500", "user.id": "u1"},
        otlp.chat(),
        {"db.system": "postgresql"},
    ]))
    assert res.skipped == 2 and len(res.records) == 1 and res.rejected == 0


def test_error_status_without_type_is_error_other(normaliser, otlp):
    rec = one(normaliser, otlp, {**otlp.chat(), "_status": 2})
    assert rec.error is True and rec.error_type == "_OTHER"


def test_error_type_alone_marks_error(normaliser, otlp):
    rec = one(normaliser, otlp, otlp.chat(**{"error.type": "RateLimitError"}))
    assert rec.error is True and rec.error_type == "RateLimitError"


def test_service_defaults_when_resource_has_none(normaliser, otlp):
    assert one(normaliser, otlp, otlp.chat(), service=None).service == "unknown_service"


def test_tenant_is_hashed_never_raw(normaliser, otlp):
    rec = one(normaliser, otlp, otlp.chat(**{"enduser.id": "alice@example.com"}))
    assert rec.tenant == hash_id("alice@example.com", KEY) and "alice" not in rec.tenant


def test_tenant_attribute_name_is_configurable(otlp):
    n = Normaliser(NormaliseConfig(tenant_attributes=("app.tenant",)), PRICING, KEY)
    rec = n.normalise(otlp.request([otlp.chat(**{"app.tenant": "acme", "enduser.id": "bob"})])).records[0]
    assert rec.tenant == hash_id("acme", KEY)


def test_tenant_from_resource_attribute(otlp):
    n = Normaliser(NormaliseConfig(tenant_attributes=("tenant.id",)), PRICING, KEY)
    rec = n.normalise(otlp.request([otlp.chat()], resource={"tenant.id": "acme"})).records[0]
    assert rec.tenant == hash_id("acme", KEY)


# -- defensive ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-5, math.nan, math.inf, "lots", True])
def test_bad_token_count_is_dropped_but_span_accepted(normaliser, otlp, bad):
    res = normaliser.normalise(otlp.request([otlp.chat(input_tokens=bad)]))  # type: ignore[arg-type]
    assert len(res.records) == 1 and res.records[0].input_tokens is None
    assert res.values_dropped == 1


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "free"])
def test_bad_cost_is_dropped_then_enriched(normaliser, otlp, bad):
    res = normaliser.normalise(otlp.request([otlp.chat(**{"gen_ai.usage.cost": bad})]))
    rec = res.records[0]
    assert res.values_dropped == 1 and rec.cost_enriched and rec.cost_usd is not None and rec.cost_usd >= 0


def test_numeric_string_token_count_is_read(normaliser, otlp):
    assert one(normaliser, otlp, otlp.chat(input_tokens="42")).input_tokens == 42  # type: ignore[arg-type]


def test_end_before_start_is_rejected_with_message(normaliser, otlp):
    res = normaliser.normalise(otlp.request([
        {**otlp.chat(), "_start": otlp.T0_NS, "_end": otlp.T0_NS - 1}, otlp.chat()]))
    assert res.rejected == 1 and len(res.records) == 1
    assert "end time before start" in res.error_message


def test_missing_timestamps_are_rejected(normaliser, otlp):
    res = normaliser.normalise(otlp.request([{**otlp.chat(), "_start": 0, "_end": 0}]))
    assert res.rejected == 1 and not res.records


def test_wrong_value_types_never_crash(normaliser, otlp):
    res = normaliser.normalise(otlp.request([{
        "gen_ai.operation.name": 5, "gen_ai.provider.name": ["a", "b"], "gen_ai.request.model": 3.5,
        "gen_ai.response.finish_reasons": "stop", "gensight.cache.hit": "maybe",
        "gen_ai.response.time_to_first_chunk": "soon", "gensight.retrieval.top_score": -1,
        "openinference.span.kind": 7,
    }]))
    assert len(res.records) == 1 and res.values_dropped == 3
    assert res.records[0].finish_reason == "stop"


@pytest.mark.parametrize("value, expected", [
    ("chatcmpl-abc123", "chatcmpl-abc123"),
    ("r" * 300, "r" * 256),  # clipped like every key string
    ("", None),
    (12345, None),  # not a string: no id to join on
])
def test_response_id_is_read_for_the_evaluation_join(normaliser, otlp, value, expected):
    rec = one(normaliser, otlp, {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                                 "gen_ai.response.id": value})
    assert rec.response_id == expected
