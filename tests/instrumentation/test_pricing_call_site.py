"""The instrumentation prices a call at its event time and the service tier its response reports."""

from __future__ import annotations

import datetime as dt

import pytest

from gensight.instrumentation import attributes as A
from gensight.instrumentation.lifecycle import Telemetry

UTC = dt.timezone.utc


def _ns(*ymd: int) -> int:
    return int(dt.datetime(*ymd, 12, tzinfo=UTC).timestamp()) * 1_000_000_000


def _cost(span_exporter, telemetry, model, end_ns, **attributes):
    inv = telemetry.start(A.OP_CHAT, provider="openai", request_model=model)
    inv.set_usage(input_tokens=1_000_000, output_tokens=1_000_000)
    inv.set_attributes(attributes)
    inv.stop(end_ns)
    return span_exporter.get_finished_spans()[-1].attributes[A.GEN_AI_USAGE_COST]


@pytest.fixture
def telemetry(tracer_provider, meter_provider):
    return Telemetry(tracer_provider, meter_provider)


def test_call_priced_at_its_event_time(telemetry, span_exporter):
    # o3: 10/40 per 1M tokens until 2025-06-10, 2/8 after
    assert _cost(span_exporter, telemetry, "o3", _ns(2025, 6, 9)) == pytest.approx(50.0)
    assert _cost(span_exporter, telemetry, "o3", _ns(2025, 6, 11)) == pytest.approx(10.0)


def test_call_priced_at_the_response_service_tier(telemetry, span_exporter):
    at = _ns(2026, 11, 20)
    standard = _cost(span_exporter, telemetry, "gpt-4o", at, **{A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: "default"})
    priority = _cost(span_exporter, telemetry, "gpt-4o", at, **{A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: "priority"})
    assert (standard, priority) == (pytest.approx(12.5), pytest.approx(21.25))
