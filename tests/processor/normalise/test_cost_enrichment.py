"""Cost enrichment: spans with tokens but no cost are priced at their start time and service tier,
from any provider; calls no price covers get no cost and are counted (bounded)."""

from __future__ import annotations

import datetime as dt

import pytest
from genai_prices import Usage, calc_price

from gensight.pricing import PricingTable
from gensight.processor.config import config_from_mapping
from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
from gensight.processor.normalise.unpriced import UNPRICED_CALLS, UnpricedCalls
from gensight.processor.pipeline.pipeline import Pipeline

KEY = b"test-key"
PRICING = PricingTable.bundled()
UTC = dt.timezone.utc
NOW_NS = int(dt.datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.fixture(params=[True, False], ids=["c-scanner", "protobuf-api"])
def normaliser(request):
    return Normaliser(NormaliseConfig(), PRICING, KEY, accelerate=request.param)


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000


def _cost(normaliser, otlp, spec):
    (rec,) = normaliser.normalise(otlp.request([spec])).records
    return rec.cost_usd


def test_any_providers_span_is_priced_like_calc_price(normaliser, otlp):
    at = dt.datetime(2026, 5, 1, tzinfo=UTC)
    spec = otlp.chat("gemini-2.5-flash", start=_ns(at), input_tokens=9000, output_tokens=700, **{
        "gen_ai.provider.name": "gcp.vertex_ai", "gen_ai.usage.cache_read.input_tokens": 8000})
    expected = calc_price(Usage(input_tokens=9000, output_tokens=700, cache_read_tokens=8000), "gemini-2.5-flash",
                          provider_id="google", genai_request_timestamp=at)
    assert _cost(normaliser, otlp, spec) == pytest.approx(float(expected.total_price), rel=1e-12)


def test_old_span_is_priced_at_the_price_of_its_time(normaliser, otlp):
    # o3: 10/40 per 1M tokens until 2025-06-10, 2/8 after
    def span(day):
        return otlp.chat("o3", start=_ns(dt.datetime(2025, 6, day, 12, tzinfo=UTC)),
                         input_tokens=1_000_000, output_tokens=1_000_000)

    assert _cost(normaliser, otlp, span(9)) == pytest.approx(50.0)
    assert _cost(normaliser, otlp, span(11)) == pytest.approx(10.0)


@pytest.mark.parametrize("key", ["openai.response.service_tier", "gen_ai.openai.response.service_tier",
                                 "openai.request.service_tier"])
def test_service_tier_the_span_reports_is_priced(normaliser, otlp, key):
    # (the priority tier's prices start in 2025: a 2023 span would get standard prices)
    tiered = otlp.chat("gpt-4o", start=NOW_NS, input_tokens=1_000_000, output_tokens=1_000_000, **{key: "priority"})
    assert _cost(normaliser, otlp, tiered) == pytest.approx(21.25)


def test_response_tier_wins_and_auto_is_standard(normaliser, otlp):
    both = otlp.chat("gpt-4o", start=NOW_NS, input_tokens=1_000_000, output_tokens=1_000_000, **{
        "openai.request.service_tier": "priority", "openai.response.service_tier": "default"})
    auto = otlp.chat("gpt-4o", start=NOW_NS, input_tokens=1_000_000, output_tokens=1_000_000,
                     **{"openai.request.service_tier": "auto"})
    assert _cost(normaliser, otlp, both) == pytest.approx(12.5)
    assert _cost(normaliser, otlp, auto) == pytest.approx(12.5)


def test_unknown_model_gets_no_cost_and_is_counted_per_provider_and_model(normaliser, otlp):
    specs = [otlp.chat("acme-llm-7b"), otlp.chat("acme-llm-7b"), otlp.chat("gpt-4o-mini"),
             otlp.chat("house-model", **{"gen_ai.provider.name": "ibm.watsonx.ai"})]
    records = normaliser.normalise(otlp.request(specs)).records
    assert [r.cost_usd is None for r in records] == [True, True, False, True]
    rows = {attrs: value for name, unit, attrs, value in normaliser.unpriced.rows() if name == UNPRICED_CALLS}
    assert rows == {
        (("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "acme-llm-7b")): 2.0,
        (("gen_ai.provider.name", "ibm.watsonx.ai"), ("gen_ai.request.model", "house-model")): 1.0,
    }


def test_unpriced_counter_is_bounded():
    counter = UnpricedCalls(max_series=3)
    for i in range(100):
        counter.count("openai", f"model-{i}")
    rows = counter.rows()
    assert len(rows) == 4 and counter.total() == 100
    assert (("otel.metric.overflow", True),) in [r[2] for r in rows]


def test_pipeline_exports_unpriced_calls_as_self_telemetry(otlp):
    pipeline = Pipeline(config_from_mapping({}), [], live=False)
    pipeline.submit(otlp.request([otlp.chat("acme-llm-7b")]))
    points = [p for p in pipeline.self_points(otlp.T0_NS) if p.name == UNPRICED_CALLS]
    assert [(p.attributes, p.value, p.unit) for p in points] == [
        ((("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "acme-llm-7b")), 1.0, "{call}")]


def test_spans_with_their_own_cost_are_not_counted(normaliser, otlp):
    normaliser.normalise(otlp.request([otlp.chat("acme-llm-7b", **{"gen_ai.usage.cost": 0.01})]))
    assert normaliser.unpriced.rows() == []



def test_pipeline_loads_the_price_data_at_start_up():
    # before `serve` freezes the start-up heap (tune_gc), not on the first request
    pipeline = Pipeline(config_from_mapping({}), [], live=False)
    assert pipeline.context.pricing is not None and pipeline.context.pricing._library is not None
