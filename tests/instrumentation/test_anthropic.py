"""AnthropicInstrumentor: the real anthropic SDK against the fake provider's /v1/messages."""

from __future__ import annotations

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from gensight.fakes import FakeProvider
from gensight.fakes import anthropic as fake_anthropic
from gensight.instrumentation import attributes as A
from gensight.instrumentation.anthropic import AnthropicInstrumentor
from gensight.instrumentation.config import ContentCapture

MODEL = "claude-haiku-4-5"  # $1 in / $0.1 cache read / $1.25 cache write / $5 out per 1M
TOOLS = [{"name": "search_docs", "description": "search", "input_schema": {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def fake():
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def sdk_provider(tracer_provider):
    """What the SDK's own tracing uses: the same provider as ours, so a second span would show."""
    return {"tracer_provider": tracer_provider}


def _instrument(tracer_provider, meter_provider, **kwargs):
    inst = AnthropicInstrumentor()
    inst.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **kwargs)
    return inst


@pytest.fixture
def instrumented(tracer_provider, meter_provider):
    inst = _instrument(tracer_provider, meter_provider)
    yield inst
    inst.uninstrument()


@pytest.fixture
def client(fake, sdk_provider, instrumented):
    c = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, open_telemetry=sdk_provider)
    yield c
    c.close()


@pytest.fixture
async def aclient(fake, sdk_provider, instrumented):
    c = anthropic.AsyncAnthropic(base_url=fake.url, api_key="k", max_retries=0, open_telemetry=sdk_provider)
    yield c
    await c.close()


def _only_span(span_exporter):
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def _expected_cost(inp, out, read=0, write=0):
    return ((inp - read - write) * 1.0 + read * 0.1 + write * 1.25 + out * 5.0) / 1e6


def test_instrumentation_dependencies_name_the_sdk():
    assert any(d.startswith("anthropic") for d in AnthropicInstrumentor().instrumentation_dependencies())


def test_create_records_a_chat_span_with_usage_and_cost(client, span_exporter):
    message = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    span = _only_span(span_exporter)
    attrs = span.attributes
    assert span.name == f"chat {MODEL}"
    assert attrs[A.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[A.GEN_AI_REQUEST_MODEL] == MODEL
    assert attrs[A.GEN_AI_REQUEST_MAX_TOKENS] == 100
    assert attrs[A.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[A.GEN_AI_RESPONSE_ID] == message.id
    assert attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == message.usage.input_tokens
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert attrs[A.GEN_AI_USAGE_COST] == pytest.approx(
        _expected_cost(message.usage.input_tokens, message.usage.output_tokens))


def test_cache_tokens_count_as_input_and_are_priced_separately(client, span_exporter):
    system = [{"type": "text", "text": "policy " * 1500, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model=MODEL, max_tokens=50, system=system, messages=HELLO)
    second = client.messages.create(model=MODEL, max_tokens=50, system=system, messages=HELLO)
    write_span, read_span = span_exporter.get_finished_spans()
    written = first.usage.cache_creation_input_tokens
    read = second.usage.cache_read_input_tokens
    assert written > 1000 and read == written  # the fake wrote, then read the same prefix
    assert write_span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == first.usage.input_tokens + written
    assert write_span.attributes[A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == written
    assert read_span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == second.usage.input_tokens + read
    assert read_span.attributes[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == read
    out = second.usage.output_tokens
    total = second.usage.input_tokens + read
    assert read_span.attributes[A.GEN_AI_USAGE_COST] == pytest.approx(_expected_cost(total, out, read=read))
    assert write_span.attributes[A.GEN_AI_USAGE_COST] == pytest.approx(
        _expected_cost(first.usage.input_tokens + written, first.usage.output_tokens, write=written))


def test_non_streamed_tool_use_blocks_are_recorded(client, span_exporter):
    message = client.messages.create(model=MODEL, max_tokens=100, tools=TOOLS, messages=HELLO)
    tool_use = [b for b in message.content if b.type == "tool_use"][0]
    attrs = _only_span(span_exporter).attributes
    assert attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    assert attrs[A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES] == ("search_docs",)
    assert attrs[A.GENSIGHT_RESPONSE_TOOL_CALL_IDS] == (tool_use.id,)


def test_stream_records_time_to_first_chunk_metric(client, metric_points):
    list(client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True))
    (point,) = metric_points()["gen_ai.client.operation.time_to_first_chunk"]
    assert point.count == 1 and dict(point.attributes)[A.GEN_AI_PROVIDER_NAME] == "anthropic"


def test_stream_true_records_usage_from_events_when_read_to_the_end(client, span_exporter):
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
    events = list(stream)
    assert span_exporter.get_finished_spans()[0].attributes  # finished by exhaustion, not by close
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    attrs = _only_span(span_exporter).attributes
    assert attrs[A.GEN_AI_REQUEST_STREAM] is True
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == start.message.usage.input_tokens
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == delta.usage.output_tokens
    assert attrs[A.GEN_AI_RESPONSE_ID] == start.message.id
    assert attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert A.GEN_AI_USAGE_COST in attrs


def test_streamed_tool_use_records_the_tool_call(client, span_exporter):
    with client.messages.create(model=MODEL, max_tokens=100, tools=TOOLS, messages=HELLO, stream=True) as stream:
        events = list(stream)
    block = next(e.content_block for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use")
    attrs = _only_span(span_exporter).attributes
    assert attrs[A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES] == ("search_docs",)
    assert attrs[A.GENSIGHT_RESPONSE_TOOL_CALL_IDS] == (block.id,)
    assert attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)


def test_stream_closed_early_ends_the_span_once(client, span_exporter):
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
    next(iter(stream))
    stream.close()
    span = _only_span(span_exporter)
    assert span.attributes[A.GENSIGHT_STREAM_ENDED_BY] == "close"
    assert span.status.status_code != StatusCode.ERROR


def test_messages_stream_helper_gives_one_span_with_usage(client, span_exporter):
    with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    attrs = _only_span(span_exporter).attributes
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] == final.usage.input_tokens
    assert attrs[A.GEN_AI_RESPONSE_ID] == final.id


def test_messages_stream_helper_with_tools_records_the_tool_call(client, span_exporter):
    with client.messages.stream(model=MODEL, max_tokens=100, tools=TOOLS, messages=HELLO) as stream:
        final = stream.get_final_message()
    tool_use = [b for b in final.content if b.type == "tool_use"][0]
    assert tool_use.input == {"query": "hello there"}
    assert _only_span(span_exporter).attributes[A.GENSIGHT_RESPONSE_TOOL_CALL_IDS] == (tool_use.id,)


async def test_async_create_and_stream_helper(aclient, span_exporter):
    message = await aclient.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    async with aclient.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        final = await stream.get_final_message()
    created, streamed = span_exporter.get_finished_spans()
    assert created.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert streamed.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert streamed.attributes[A.GEN_AI_REQUEST_STREAM] is True


async def test_async_stream_true_records_usage(aclient, span_exporter):
    stream = await aclient.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True)
    events = [e async for e in stream]
    delta = next(e for e in events if e.type == "message_delta")
    assert _only_span(span_exporter).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == delta.usage.output_tokens


@pytest.mark.parametrize(("status", "error"), [
    (429, anthropic.RateLimitError), (500, anthropic.InternalServerError), (529, anthropic.OverloadedError)])
def test_error_status_fails_the_span_and_reraises_the_sdk_error(client, fake, span_exporter, metric_points,
                                                                status, error):
    fake.configure({"force_status": status, "force_status_count": 1})
    with pytest.raises(error):
        client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    span = _only_span(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == error.__name__
    duration = metric_points()["gen_ai.client.operation.duration"]
    assert [dict(p.attributes)[A.ERROR_TYPE] for p in duration] == [error.__name__]


def test_retried_call_is_one_span(fake, sdk_provider, instrumented, span_exporter):
    fake.configure({"force_status": 529, "force_status_count": 1})
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=1, open_telemetry=sdk_provider) as c:
        c.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    span = _only_span(span_exporter)
    assert span.status.status_code != StatusCode.ERROR
    assert len(fake_anthropic.recent_requests(fake)) == 2


def test_error_event_mid_stream_fails_the_span(client, span_exporter):
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True,
                                    extra_headers={fake_anthropic.STREAM_ERROR_HEADER: "3"})
    with pytest.raises(anthropic.APIStatusError):
        list(stream)
    span = _only_span(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "APIStatusError"


def test_sdk_tracing_on_still_gives_one_span_and_sends_our_trace_context(client, fake, span_exporter):
    client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        stream.until_done()
    spans = span_exporter.get_finished_spans()
    assert [s.instrumentation_scope.name for s in spans] == ["gensight.instrumentation.anthropic"] * 2
    sent = [{k.lower(): v for k, v in r.headers.items()}["traceparent"] for r in fake_anthropic.recent_requests(fake)]
    assert [h.split("-")[1:3] for h in sent] == [[f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"]
                                                 for s in spans]


def test_sdk_spans_outside_our_calls_are_left_alone(client, span_exporter):
    tracer = client._tracer  # what count_tokens, batches, ... use
    assert tracer is not None and tracer.__class__.__name__ != "_PassThroughTracer"


def test_keep_mode_leaves_the_sdk_span_as_a_child_of_ours(fake, sdk_provider, tracer_provider, meter_provider,
                                                         span_exporter):
    inst = _instrument(tracer_provider, meter_provider, sdk_spans="keep")
    try:
        with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, open_telemetry=sdk_provider) as c:
            c.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    finally:
        inst.uninstrument()
    by_name = {s.name: s for s in span_exporter.get_finished_spans()}
    assert set(by_name) == {"anthropic.messages.create", f"chat {MODEL}"}
    assert by_name["anthropic.messages.create"].parent.span_id == by_name[f"chat {MODEL}"].context.span_id


def test_sdk_tracing_disabled_by_env_is_respected(fake, instrumented, span_exporter, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0) as c:
        assert c._tracer is None
        c.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert _only_span(span_exporter).name == f"chat {MODEL}"


def test_content_is_not_recorded_by_default(client, span_exporter):
    client.messages.create(model=MODEL, max_tokens=100, system="be brief", messages=HELLO)
    attrs = _only_span(span_exporter).attributes
    assert A.GEN_AI_INPUT_MESSAGES not in attrs and A.GEN_AI_OUTPUT_MESSAGES not in attrs
    assert A.GEN_AI_SYSTEM_INSTRUCTIONS not in attrs


def test_content_capture_records_messages_and_streamed_tool_arguments(fake, tracer_provider, meter_provider,
                                                                     span_exporter):
    inst = _instrument(tracer_provider, meter_provider, capture=ContentCapture.SPAN_ONLY)
    try:
        with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0) as c, \
                c.messages.stream(model=MODEL, max_tokens=100, system="be brief", tools=TOOLS, messages=HELLO) as stream:
            stream.until_done()
    finally:
        inst.uninstrument()
    attrs = _only_span(span_exporter).attributes
    assert "hello there" in attrs[A.GEN_AI_INPUT_MESSAGES]
    assert "be brief" in attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS]
    assert '"tool_call"' in attrs[A.GEN_AI_OUTPUT_MESSAGES]
    assert '\\"query\\": \\"hello there\\"' in attrs[A.GEN_AI_OUTPUT_MESSAGES]


def test_metrics_record_tokens_duration_and_cost(client, metric_points):
    message = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    points = metric_points()
    tokens = {dict(p.attributes)[A.GEN_AI_TOKEN_TYPE]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": message.usage.input_tokens, "output": message.usage.output_tokens}
    (cost,) = points["gen_ai.client.cost"]
    assert cost.value == pytest.approx(_expected_cost(message.usage.input_tokens, message.usage.output_tokens))
    (duration,) = points["gen_ai.client.operation.duration"]
    assert dict(duration.attributes)[A.GEN_AI_PROVIDER_NAME] == "anthropic"


def test_uninstrument_restores_the_sdk(fake, tracer_provider, meter_provider, span_exporter, sdk_provider):
    inst = _instrument(tracer_provider, meter_provider)
    inst.uninstrument()
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, open_telemetry=sdk_provider) as c:
        c.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert [s.name for s in span_exporter.get_finished_spans()] == ["anthropic.messages.create"]


def test_uninstrument_from_a_fresh_handle_restores_the_sdk(fake, tracer_provider, meter_provider, span_exporter, sdk_provider):
    _instrument(tracer_provider, meter_provider)
    AnthropicInstrumentor().uninstrument()
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, open_telemetry=sdk_provider) as c:
        c.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert [s.name for s in span_exporter.get_finished_spans()] == ["anthropic.messages.create"]


def test_bad_request_parameters_still_reach_the_app_unchanged(client, span_exporter):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=MODEL, max_tokens=0, messages=HELLO)
    assert _only_span(span_exporter).attributes[A.ERROR_TYPE] == "BadRequestError"


def test_with_raw_response_still_records_usage(client, span_exporter):
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=HELLO)
    message = raw.parse()
    attrs = _only_span(span_exporter).attributes
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
    assert attrs[A.GEN_AI_RESPONSE_ID] == message.id


def test_with_streaming_response_is_not_consumed_by_telemetry(client, span_exporter):
    with client.messages.with_streaming_response.create(model=MODEL, max_tokens=100, messages=HELLO) as response:
        message = response.parse()
    assert message.usage.output_tokens > 0  # the app could still read its body
    assert _only_span(span_exporter).name == f"chat {MODEL}"


async def test_async_with_raw_response_records_usage(aclient, span_exporter):
    raw = await aclient.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=HELLO)
    message = await raw.parse()
    assert _only_span(span_exporter).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens


def _sent_traceparents(fake):
    return [{k.lower(): v for k, v in r.headers.items()}.get("traceparent") for r in fake_anthropic.recent_requests(fake)]


def test_client_without_propagation_sends_no_trace_context(fake, tracer_provider, instrumented, span_exporter):
    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0,
                             open_telemetry={"tracer_provider": tracer_provider, "propagation": False}) as c:
        c.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
        with c.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            stream.until_done()
    assert _sent_traceparents(fake) == [None, None]
    assert len(span_exporter.get_finished_spans()) == 2


def test_callers_own_trace_header_wins(client, fake, span_exporter):
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, extra_headers={"traceparent": mine})
    assert _sent_traceparents(fake) == [mine]


def _mock_client(body: bytes, content_type: str = "application/json") -> anthropic.Anthropic:
    import httpx2

    def handler(request):
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    return anthropic.Anthropic(api_key="k", base_url="http://mock.local", max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def test_a_response_without_usage_gives_a_span_without_tokens_or_cost(instrumented, span_exporter):
    body = b'{"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": []}'
    with _mock_client(body) as c:
        c.messages.create(model=MODEL, max_tokens=10, messages=HELLO)
    span = _only_span(span_exporter)
    assert span.status.status_code != StatusCode.ERROR
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes and A.GEN_AI_USAGE_COST not in span.attributes
    assert span.attributes[A.SERVER_ADDRESS] == "mock.local" and span.attributes[A.SERVER_PORT] == 80


def test_a_stream_with_odd_events_and_bad_usage_is_read_without_telemetry_errors(instrumented, span_exporter):
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "msg_y", "type": "message", "role": "assistant",
                                                                 "model": MODEL, "content": [],
                                                                 "usage": {"input_tokens": -4, "output_tokens": "x"}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 7, "delta": {"type": "text_delta",
                                                                                     "text": "orphan"}}),
        ("future_event", {"type": "future_event", "payload": [1, 2]}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    import json as _json

    body = "".join(f"event: {name}\ndata: {_json.dumps(data)}\n\n" for name, data in events).encode()
    with _mock_client(body, "text/event-stream") as c:
        received = list(c.messages.create(model=MODEL, max_tokens=10, messages=HELLO, stream=True))
    assert len(received) >= 3
    attrs = _only_span(span_exporter).attributes
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in attrs  # -4 is not a token count
    assert attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_streamed_cache_tokens_come_from_message_start(client, span_exporter):
    system = [{"type": "text", "text": "policy " * 1500, "cache_control": {"type": "ephemeral"}}]
    client.messages.create(model=MODEL, max_tokens=50, system=system, messages=HELLO)  # writes the cache
    with client.messages.stream(model=MODEL, max_tokens=50, system=system, messages=HELLO) as stream:
        final = stream.get_final_message()
    streamed = span_exporter.get_finished_spans()[-1].attributes
    read = final.usage.cache_read_input_tokens
    assert read > 1000
    assert streamed[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == read
    assert streamed[A.GEN_AI_USAGE_INPUT_TOKENS] == final.usage.input_tokens + read
