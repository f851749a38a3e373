"""Tool calls as execute_tool spans: the public decorator and context manager."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from gensight.instrumentation import attributes as A
from gensight.instrumentation import manual, tool
from gensight.instrumentation.config import ContentCapture
from gensight.instrumentation.tools import MAX_CONTENT_CHARS


@pytest.fixture
def configured(tracer_provider, meter_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    return manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)


@pytest.fixture
def capturing(tracer_provider, meter_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    return manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider,
                            capture=ContentCapture.SPAN_ONLY)


def _spans(exporter):
    return list(exporter.get_finished_spans())


def test_bare_decorator_names_the_span_after_the_function(configured, span_exporter):
    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    assert get_weather("Oslo") == "sunny in Oslo"
    (span,) = _spans(span_exporter)
    assert span.name == "execute_tool get_weather"
    assert span.kind == SpanKind.INTERNAL
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert span.attributes[A.GEN_AI_TOOL_NAME] == "get_weather"
    assert span.attributes[A.GEN_AI_TOOL_TYPE] == "function"
    assert span.attributes[A.GEN_AI_TOOL_DESCRIPTION] == "Current weather for a city."


def test_arguments_and_results_are_not_recorded_by_default(configured, span_exporter):
    @tool("lookup")
    def lookup(secret: str) -> str:
        return secret.upper()

    lookup("my password")
    attrs = _spans(span_exporter)[0].attributes
    assert A.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs and A.GEN_AI_TOOL_CALL_RESULT not in attrs


def test_content_capture_records_arguments_and_result_as_json(capturing, span_exporter):
    @tool("lookup", call_id="call_7", tool_type="datastore")
    def lookup(key: str, limit: int = 3) -> dict:
        return {"key": key, "rows": limit}

    lookup("abc", limit=2)
    attrs = _spans(span_exporter)[0].attributes
    assert json.loads(attrs[A.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"key": "abc", "limit": 2}
    assert json.loads(attrs[A.GEN_AI_TOOL_CALL_RESULT]) == {"key": "abc", "rows": 2}
    assert attrs[A.GEN_AI_TOOL_CALL_ID] == "call_7"
    assert attrs[A.GEN_AI_TOOL_TYPE] == "datastore"


def test_captured_content_is_capped(capturing, span_exporter):
    @tool("big")
    def big() -> str:
        return "x" * (MAX_CONTENT_CHARS * 3)

    big()
    assert len(_spans(span_exporter)[0].attributes[A.GEN_AI_TOOL_CALL_RESULT]) == MAX_CONTENT_CHARS


def test_a_raising_tool_fails_its_span_and_the_same_exception_reaches_the_caller(configured, span_exporter,
                                                                                 metric_points):
    boom = ValueError("no such city")

    @tool("get_weather")
    def get_weather(city: str) -> str:
        raise boom

    with pytest.raises(ValueError) as caught:
        get_weather("Atlantis")
    assert caught.value is boom
    (span,) = _spans(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ValueError"
    (point,) = metric_points()["gen_ai.client.operation.duration"]
    assert dict(point.attributes) == {A.GEN_AI_OPERATION_NAME: "execute_tool", A.GEN_AI_TOOL_NAME: "get_weather",
                                      A.ERROR_TYPE: "ValueError"}


async def test_async_decorator_spans_the_awaited_call(configured, span_exporter):
    @tool("fetch")
    async def fetch(url: str) -> int:
        return len(url)

    assert await fetch("http://x") == 8
    (span,) = _spans(span_exporter)
    assert span.name == "execute_tool fetch"
    assert span.status.status_code != StatusCode.ERROR


def test_context_manager_spans_nest_under_the_agent_span(configured, tracer_provider, span_exporter):
    tracer = tracer_provider.get_tracer("agent")
    with tracer.start_as_current_span("invoke_agent planner") as agent:
        for call_id in ("call_1", "call_2"):
            with tool("search", call_id=call_id) as call:
                call.set_result("found")
    spans = {s.name: s for s in _spans(span_exporter)}
    tool_spans = [s for s in _spans(span_exporter) if s.name == "execute_tool search"]
    assert [s.attributes[A.GEN_AI_TOOL_CALL_ID] for s in tool_spans] == ["call_1", "call_2"]
    assert all(s.parent.span_id == agent.get_span_context().span_id for s in tool_spans)
    assert spans["invoke_agent planner"].parent is None


async def test_async_context_manager_fails_on_exception(configured, span_exporter):
    with pytest.raises(TimeoutError):
        async with tool("slow_api"):
            raise TimeoutError
    assert _spans(span_exporter)[0].attributes[A.ERROR_TYPE] == "TimeoutError"


def test_context_manager_needs_a_name(configured):
    with pytest.raises(TypeError, match="needs a name"), tool():
        pass


def test_same_tool_wrapped_twice_gives_one_span(configured, span_exporter):
    @tool("search")
    @tool("search")
    def search(q: str) -> str:
        return q

    search("a")
    assert [s.name for s in _spans(span_exporter)] == ["execute_tool search"]


def test_different_tools_nest(configured, span_exporter):
    @tool("inner")
    def inner() -> int:
        return 1

    @tool("outer")
    def outer() -> int:
        return inner() + 1

    assert outer() == 2
    by_name = {s.name: s for s in _spans(span_exporter)}
    assert by_name["execute_tool inner"].parent.span_id == by_name["execute_tool outer"].context.span_id


def test_explicit_telemetry_overrides_the_default(tracer_provider, meter_provider, span_exporter):
    from gensight.instrumentation.lifecycle import Telemetry

    telemetry = Telemetry(tracer_provider, meter_provider)

    @tool("calc", telemetry=telemetry)
    def calc() -> int:
        return 42

    calc()
    assert [s.name for s in _spans(span_exporter)] == ["execute_tool calc"]


async def test_one_spec_shared_by_concurrent_tasks_pairs_each_exit_with_its_enter(configured, span_exporter):
    import asyncio

    shared = tool("fetch")

    async def worker(call_id: str, delay_s: float) -> None:
        async with shared as call:
            call.set_call_id(call_id)
            await asyncio.sleep(delay_s)
            if call_id == "slow":
                raise TimeoutError

    # "fast" enters first and exits first, while "slow" is still open
    results = await asyncio.gather(worker("fast", 0.0), worker("slow", 0.02), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], TimeoutError)
    by_id = {s.attributes[A.GEN_AI_TOOL_CALL_ID]: s for s in _spans(span_exporter)}
    assert by_id["fast"].status.status_code != StatusCode.ERROR
    assert by_id["slow"].attributes[A.ERROR_TYPE] == "TimeoutError"


def test_arguments_json_cannot_hold_are_recorded_as_text(capturing, span_exporter):
    class Opaque:
        def __str__(self) -> str:
            return "<opaque>"

    @tool("take")
    def take(thing: object) -> object:
        return {1, 2}

    take(Opaque())
    attrs = _spans(span_exporter)[0].attributes
    assert json.loads(attrs[A.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"thing": "<opaque>"}
    assert attrs[A.GEN_AI_TOOL_CALL_RESULT] == '"{1, 2}"'
