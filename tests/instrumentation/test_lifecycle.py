import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from gensight.instrumentation import attributes as A
from gensight.instrumentation.config import ContentCapture
from gensight.instrumentation.lifecycle import Telemetry
from gensight.pricing import PricingTable


@pytest.fixture
def telemetry(tracer_provider, meter_provider):
    return Telemetry(tracer_provider, meter_provider)


def _only_span(span_exporter):
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 1
    return spans[0]


def test_chat_span_has_name_kind_and_start_attributes(telemetry, span_exporter):
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o-mini",
                          server_address="api.openai.com", server_port=443)
    inv.stop()
    span = _only_span(span_exporter)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "chat"
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert span.attributes[A.SERVER_ADDRESS] == "api.openai.com"
    assert span.attributes[A.SERVER_PORT] == 443


def test_start_attributes_are_visible_to_the_sampler(span_exporter, meter_provider):
    seen = {}

    class Recorder:
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
            seen.update(attributes or {})
            return ALWAYS_OFF.should_sample(parent_context, trace_id, name, kind, attributes, links)

        def get_description(self):
            return "recorder"

    telemetry = Telemetry(TracerProvider(sampler=Recorder()), meter_provider)
    telemetry.start(A.OP_CHAT, provider="openai", request_model="m", server_address="h", server_port=1).stop()
    assert seen[A.GEN_AI_REQUEST_MODEL] == "m" and seen[A.SERVER_ADDRESS] == "h"


def test_tool_span_is_internal_and_named_for_the_tool(telemetry, span_exporter):
    telemetry.start(A.OP_EXECUTE_TOOL, name="get_weather").stop()
    span = _only_span(span_exporter)
    assert span.name == "execute_tool get_weather"
    assert span.kind is SpanKind.INTERNAL
    assert span.attributes[A.GEN_AI_TOOL_NAME] == "get_weather"


def test_retrieval_span_is_client_and_named_for_the_source(telemetry, span_exporter):
    telemetry.start(A.OP_RETRIEVAL, provider="chroma", name="docs").stop()
    span = _only_span(span_exporter)
    assert span.name == "retrieval docs" and span.kind is SpanKind.CLIENT
    assert span.attributes[A.GEN_AI_DATA_SOURCE_ID] == "docs"


def test_usage_and_cost_are_set_at_stop(telemetry, span_exporter):
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o")
    inv.set_response(model="gpt-4o-2024-08-06", id="chatcmpl-1", finish_reasons=["stop"])
    inv.set_usage(input_tokens=1000, output_tokens=100, cache_read_tokens=400, reasoning_tokens=20)
    inv.stop()
    attrs = _only_span(span_exporter).attributes
    assert attrs[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert attrs[A.GEN_AI_RESPONSE_ID] == "chatcmpl-1"
    assert list(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == 1000
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 100
    assert attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 400
    assert attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 20
    assert attrs[A.GEN_AI_USAGE_COST] == pytest.approx((600 * 2.5 + 400 * 1.25 + 100 * 10.0) / 1e6)


def test_unknown_model_gets_no_cost_and_one_warning(telemetry, span_exporter, caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="mystery-model-x")
        inv.set_usage(input_tokens=10, output_tokens=5)
        inv.stop()
    assert all(A.GEN_AI_USAGE_COST not in s.attributes for s in span_exporter.get_finished_spans())
    assert sum("mystery-model-x" in r.getMessage() for r in caplog.records) == 1


def test_given_pricing_table_is_used(tracer_provider, meter_provider, span_exporter):
    table = PricingTable.from_mapping({"providers": {"openai": {"models": {"house": {"input": 1, "output": 2}}}}})
    telemetry = Telemetry(tracer_provider, meter_provider, pricing=table)
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="house")
    inv.set_usage(input_tokens=1_000_000, output_tokens=1_000_000)
    inv.stop()
    assert _only_span(span_exporter).attributes[A.GEN_AI_USAGE_COST] == pytest.approx(3.0)


def test_fail_sets_error_type_status_and_metric_attribute(telemetry, span_exporter, metric_points):
    class RateLimitError(Exception):
        pass

    telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o").fail(RateLimitError("slow down"))
    span = _only_span(span_exporter)
    assert span.attributes[A.ERROR_TYPE] == "RateLimitError"
    assert span.status.status_code is StatusCode.ERROR
    (point,) = metric_points()["gen_ai.client.operation.duration"]
    assert point.attributes[A.ERROR_TYPE] == "RateLimitError"


def test_fail_without_type_falls_back_to_other(telemetry, span_exporter):
    telemetry.start(A.OP_CHAT, request_model="m").fail("")
    assert _only_span(span_exporter).attributes[A.ERROR_TYPE] == "_OTHER"


def test_invocation_finishes_exactly_once(telemetry, span_exporter, metric_points):
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o")
    inv.stop()
    inv.stop()
    inv.fail(ValueError("late"))
    span = _only_span(span_exporter)
    assert span.status.status_code is StatusCode.UNSET
    (point,) = metric_points()["gen_ai.client.operation.duration"]
    assert point.count == 1


def test_context_manager_makes_span_current_and_stops(telemetry, span_exporter):
    with telemetry.start(A.OP_EXECUTE_TOOL, name="t") as inv:
        assert trace.get_current_span() is inv.span
    assert inv.finished and _only_span(span_exporter).status.status_code is StatusCode.UNSET


def test_context_manager_fails_and_reraises_the_original_exception(telemetry, span_exporter):
    err = KeyError("k")
    with pytest.raises(KeyError) as info, telemetry.start(A.OP_EXECUTE_TOOL, name="t"):
        raise err
    assert info.value is err
    assert _only_span(span_exporter).attributes[A.ERROR_TYPE] == "KeyError"


def test_activate_makes_current_without_finishing(telemetry):
    inv = telemetry.start(A.OP_CHAT, request_model="m")
    with inv.activate():
        assert trace.get_current_span() is inv.span
    assert not inv.finished
    assert trace.get_current_span() is not inv.span
    inv.stop()


def test_metrics_carry_low_cardinality_attributes_only(telemetry, metric_points):
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o-mini",
                          server_address="h", server_port=8080)
    inv.set_response(model="gpt-4o-mini", id="chatcmpl-unique-123")
    inv.set_usage(input_tokens=10, output_tokens=5)
    inv.stop()
    points = metric_points()
    tokens = {p.attributes[A.GEN_AI_TOKEN_TYPE]: p for p in points["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == 10 and tokens["output"].sum == 5
    (cost,) = points["gen_ai.client.cost"]
    assert cost.value == pytest.approx((10 * 0.15 + 5 * 0.6) / 1e6)
    for plist in points.values():
        for p in plist:
            assert set(p.attributes) <= {
                A.GEN_AI_OPERATION_NAME, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_REQUEST_MODEL,
                A.GEN_AI_RESPONSE_MODEL, A.SERVER_ADDRESS, A.SERVER_PORT, A.GEN_AI_TOKEN_TYPE,
            }


def test_metrics_recorded_even_when_span_not_sampled(meter_provider, metric_points):
    telemetry = Telemetry(TracerProvider(sampler=ALWAYS_OFF), meter_provider)
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o-mini")
    inv.set_usage(input_tokens=3, output_tokens=4)
    inv.stop()
    assert "gen_ai.client.token.usage" in metric_points()


def test_time_to_first_chunk_recorded_once(telemetry, span_exporter, metric_points):
    inv = telemetry.start(A.OP_CHAT, request_model="m")
    inv.mark_first_chunk()
    first = inv.time_to_first_chunk_s
    inv.mark_first_chunk()
    inv.stop()
    assert inv.time_to_first_chunk_s == first
    assert _only_span(span_exporter).attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == first
    assert metric_points()["gen_ai.client.operation.time_to_first_chunk"][0].count == 1


def test_content_not_recorded_when_capture_off(telemetry, span_exporter):
    inv = telemetry.start(A.OP_CHAT, request_model="m")
    inv.record_content(input_messages=[{"role": "user", "parts": [{"type": "text", "content": "secret"}]}])
    inv.stop()
    span = _only_span(span_exporter)
    assert A.GEN_AI_INPUT_MESSAGES not in span.attributes and not span.events


def test_content_recorded_as_json_on_span_when_enabled(tracer_provider, meter_provider, span_exporter):
    telemetry = Telemetry(tracer_provider, meter_provider, capture=ContentCapture.SPAN_AND_EVENT)
    msgs = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    inv = telemetry.start(A.OP_CHAT, request_model="m")
    inv.record_content(input_messages=msgs)
    inv.stop()
    span = _only_span(span_exporter)
    assert json.loads(span.attributes[A.GEN_AI_INPUT_MESSAGES]) == msgs
    assert span.events[0].attributes[A.GEN_AI_INPUT_MESSAGES] == span.attributes[A.GEN_AI_INPUT_MESSAGES]


def test_telemetry_errors_never_reach_the_app(telemetry, span_exporter):
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model="gpt-4o")
    inv.set_usage(input_tokens=object(), output_tokens="many")  # garbage from a broken SDK
    inv.stop()  # must not raise
    assert inv.finished
