"""The demo service's event-time exporter: real SDK spans, re-stamped before export."""

import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gensight.demo.scenario import NS_PER_S, EventClock
from gensight.demo.service import EventTimeSpanExporter, _DeferredClock, read_start


def provider_with(clock):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EventTimeSpanExporter(memory, clock)))
    return provider, memory


def test_spans_are_restamped_in_compressed_event_time():
    wall_base = time.time_ns()
    clock = EventClock(wall_base, event_base_ns=1_000 * NS_PER_S, speed=20.0)
    provider, memory = provider_with(clock)
    tracer = provider.get_tracer("t")
    start = wall_base + 1 * NS_PER_S
    with tracer.start_as_current_span("chat gpt-4o-mini", start_time=start, end_on_exit=False) as span:
        span.set_attribute("gen_ai.response.time_to_first_chunk", 0.05)
        span.add_event("first chunk", timestamp=start + NS_PER_S // 10)
        span.end(end_time=start + NS_PER_S // 2)
    (got,) = memory.get_finished_spans()
    assert got.start_time == 1_020 * NS_PER_S
    assert got.end_time == 1_030 * NS_PER_S  # 0.5 s of wall clock = 10 s of event time
    assert got.events[0].timestamp == 1_022 * NS_PER_S
    assert got.attributes["gen_ai.response.time_to_first_chunk"] == 1.0
    assert got.name == "chat gpt-4o-mini"


def test_spans_before_the_clock_starts_are_dropped():
    clock = _DeferredClock()
    provider, memory = provider_with(clock)
    with provider.get_tracer("t").start_as_current_span("warm up"):
        pass
    assert memory.get_finished_spans() == ()
    clock.set(EventClock(0, 0, 1.0))
    with provider.get_tracer("t").start_as_current_span("measured"):
        pass
    assert [s.name for s in memory.get_finished_spans()] == ["measured"]


def test_start_line_gives_the_shared_clock_and_end():
    clock, end = read_start('{"wall_base_ns": 5, "event_base_ns": 7, "speed": 20, "end_wall_ns": 99}')
    assert clock == EventClock(5, 7, 20.0) and end == 99


def test_start_line_with_a_non_positive_speed_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="speed must be > 0"):
        read_start('{"wall_base_ns": 5, "event_base_ns": 7, "speed": 0, "end_wall_ns": 99}')


def test_evaluation_log_records_are_restamped_in_event_time():
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from gensight.demo.service import EventTimeLogExporter

    wall_base = time.time_ns()
    clock = EventClock(wall_base, event_base_ns=1_000 * NS_PER_S, speed=20.0)
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(EventTimeLogExporter(memory, clock)))
    provider.get_logger("t").emit(timestamp=wall_base + NS_PER_S, event_name="gen_ai.evaluation.result",
                                  attributes={"gen_ai.evaluation.name": "concision"})
    (got,) = memory.get_finished_logs()
    assert got.log_record.timestamp == 1_020 * NS_PER_S
    assert got.log_record.attributes["gen_ai.evaluation.name"] == "concision"


def test_concision_judge_is_deterministic_and_fails_the_incidents_long_answers():
    from gensight.demo.service import judge_concision

    assert judge_concision(40) == judge_concision(40) == (0.933, "pass")
    healthy = [judge_concision(t)[0] for t in range(16, 64)]
    incident = [judge_concision(t * 8)[0] for t in range(16, 64)]
    assert min(healthy) > 0.89 and sum(incident) / len(incident) < 0.6
    assert judge_concision(5000) == (0.0, "fail")
