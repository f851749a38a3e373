"""The OpenAI instrumentor driven through the real ``openai`` SDK against the fake provider.

Version-neutral on purpose: these tests pass with openai 3.x (httpx2, the test extra) and 1.x
(httpx; checked with openai 1.68 in a separate venv: ``pip install -e . 'openai==1.68.*' pytest
pytest-asyncio httpx2`` then ``pytest tests/instrumentation/test_openai.py``).
"""

import gc
import json
import logging

import openai
import pytest
import wrapt
from opentelemetry.trace import SpanKind, StatusCode

from gensight import pricing
from gensight.instrumentation import attributes as A
from gensight.instrumentation.openai import OpenAIInstrumentor

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "secret question about Paris"}]


@pytest.fixture
def instrument(tracer_provider, meter_provider):
    """Instrument with the test's providers; returns a function so a test can set env vars first."""
    inst = OpenAIInstrumentor()

    def _go():
        inst.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    yield _go
    inst.uninstrument()


@pytest.fixture
def client(instrument, fake):
    instrument()
    c = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
    yield c
    c.close()


@pytest.fixture
async def aclient(instrument, fake):
    instrument()
    c = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
    yield c
    await c.close()


def _span(span_exporter):
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


# -- chat completions -----------------------------------------------------------------------
def test_chat_span_has_semconv_name_kind_and_request_attributes(client, fake, span_exporter):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, top_p=0.9,
                                   max_tokens=200, seed=7, stop=["END"])
    span = _span(span_exporter)
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    a = span.attributes
    assert a[A.GEN_AI_OPERATION_NAME] == "chat" and a[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[A.GEN_AI_REQUEST_TEMPERATURE] == 0.2 and a[A.GEN_AI_REQUEST_TOP_P] == 0.9
    assert a[A.GEN_AI_REQUEST_MAX_TOKENS] == 200 and a[A.GEN_AI_REQUEST_SEED] == 7
    assert list(a[A.GEN_AI_REQUEST_STOP_SEQUENCES]) == ["END"]
    assert a[A.SERVER_ADDRESS] == "127.0.0.1" and a[A.SERVER_PORT] == fake.port


def test_chat_response_usage_and_cost(client, span_exporter):
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[A.GEN_AI_RESPONSE_ID] == resp.id
    assert list(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == resp.usage.prompt_tokens
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == resp.usage.completion_tokens
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0
    expected = (resp.usage.prompt_tokens * 0.15 + resp.usage.completion_tokens * 0.6) / 1e6
    assert a[A.GEN_AI_USAGE_COST] == pytest.approx(expected)


def test_cached_prompt_tokens_are_recorded_and_priced_at_cache_rate(client, span_exporter):
    long_prompt = [{"role": "user", "content": "context " * 1200}]
    client.chat.completions.create(model="gpt-4o-mini", messages=long_prompt)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=long_prompt)  # second time: cached
    a = span_exporter.get_finished_spans()[-1].attributes
    cached = resp.usage.prompt_tokens_details.cached_tokens
    assert cached > 0 and a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == cached
    u = resp.usage
    expected = ((u.prompt_tokens - cached) * 0.15 + cached * 0.075 + u.completion_tokens * 0.6) / 1e6
    assert a[A.GEN_AI_USAGE_COST] == pytest.approx(expected)


def test_usage_without_token_details_still_has_tokens_and_cost(client, fake, span_exporter):
    fake.configure({"usage_details": False})
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] > 0 and A.GEN_AI_USAGE_COST in a
    assert A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in a
    assert A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS not in a


def test_reasoning_tokens_are_recorded(client, span_exporter):
    resp = client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == resp.usage.completion_tokens_details.reasoning_tokens > 0


def test_tool_calls_requested_by_the_model_are_on_the_span(client, span_exporter):
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    a = _span(span_exporter).attributes
    assert list(a[A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES]) == ["get_weather"]
    assert list(a[A.GENSIGHT_RESPONSE_TOOL_CALL_IDS]) == [resp.choices[0].message.tool_calls[0].id]
    assert list(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ["tool_calls"]


def test_metrics_recorded_for_a_chat_call(client, metric_points):
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    points = metric_points()
    tokens = {p.attributes[A.GEN_AI_TOKEN_TYPE]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": resp.usage.prompt_tokens, "output": resp.usage.completion_tokens}
    assert points["gen_ai.client.operation.duration"][0].count == 1
    assert points["gen_ai.client.cost"][0].value > 0
    assert all(A.GEN_AI_RESPONSE_ID not in p.attributes for pl in points.values() for p in pl)


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("status, exc_type", [(429, openai.RateLimitError), (500, openai.InternalServerError)])
def test_http_error_sets_error_type_and_reraises_original(client, fake, span_exporter, status, exc_type):
    fake.configure({"force_status": status, "force_status_count": 1})
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(info.value) is exc_type and info.value.status_code == status
    span = _span(span_exporter)
    assert span.attributes[A.ERROR_TYPE] == exc_type.__name__
    assert span.status.status_code is StatusCode.ERROR


def test_error_is_counted_in_duration_metric_with_error_type(client, fake, metric_points):
    fake.configure({"force_status": 429, "force_status_count": 1})
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (point,) = metric_points()["gen_ai.client.operation.duration"]
    assert point.attributes[A.ERROR_TYPE] == "RateLimitError"


# -- streaming ------------------------------------------------------------------------------
def _stream(client, **kw):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **kw)


def test_stream_with_usage_chunk_records_tokens_cost_and_first_chunk(client, span_exporter, metric_points):
    chunks = list(_stream(client, stream_options={"include_usage": True}))
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
    assert a[A.GEN_AI_USAGE_COST] > 0
    assert a[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert list(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
    assert a[A.GEN_AI_REQUEST_STREAM] is True
    assert metric_points()["gen_ai.client.operation.time_to_first_chunk"][0].count == 1


def test_stream_without_usage_chunk_has_no_tokens_and_no_cost(client, span_exporter):
    list(_stream(client))
    a = _span(span_exporter).attributes
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in a and A.GEN_AI_USAGE_COST not in a
    assert a[A.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")


def test_streamed_tool_calls_are_on_the_span(client, span_exporter):
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, stream=True))
    a = _span(span_exporter).attributes
    assert list(a[A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES]) == ["get_weather"]
    assert a[A.GENSIGHT_RESPONSE_TOOL_CALL_IDS][0].startswith("call_")


def test_stream_span_ends_only_when_stream_is_consumed(client, span_exporter):
    stream = _stream(client)
    next(iter(stream))
    assert span_exporter.get_finished_spans() == ()
    list(stream)
    assert len(span_exporter.get_finished_spans()) == 1


def test_stream_broken_midway_fails_span_and_reraises(client, fake, span_exporter):
    fake.configure({"break_stream_after": 3})
    # openai 3.x wraps the transport error in APIConnectionError, 1.x lets httpx's error through
    with pytest.raises(Exception) as info:  # noqa: B017 - the SDK version decides the type
        list(_stream(client))
    span = _span(span_exporter)
    assert span.attributes[A.ERROR_TYPE] == type(info.value).__name__
    assert span.status.status_code is StatusCode.ERROR


def test_stream_closed_early_ends_span_once(client, span_exporter):
    stream = _stream(client)
    next(iter(stream))
    stream.close()
    span = _span(span_exporter)
    assert span.attributes[A.GENSIGHT_STREAM_ENDED_BY] == "close"
    assert span.status.status_code is StatusCode.UNSET


def test_stream_used_as_context_manager_ends_span(client, span_exporter):
    with _stream(client) as stream:
        next(iter(stream))
    assert len(span_exporter.get_finished_spans()) == 1


def test_abandoned_stream_span_ends_on_garbage_collection(client, span_exporter):
    stream = _stream(client)
    next(iter(stream))
    del stream
    gc.collect()
    assert _span(span_exporter).attributes[A.GENSIGHT_STREAM_ENDED_BY] == "gc"


# -- responses and embeddings ---------------------------------------------------------------
def test_responses_create_records_usage_and_cost(client, span_exporter):
    resp = client.responses.create(model="gpt-4o-mini", input="hello", max_output_tokens=500)
    span = _span(span_exporter)
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert a[A.GEN_AI_RESPONSE_ID] == resp.id and a[A.GEN_AI_REQUEST_MAX_TOKENS] == 500
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == resp.usage.input_tokens
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == resp.usage.output_tokens
    assert a[A.GEN_AI_USAGE_COST] > 0


def test_responses_function_call_is_on_the_span(client, span_exporter):
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {}}}}]
    resp = client.responses.create(model="gpt-4o-mini", input="find it", tools=tools)
    a = _span(span_exporter).attributes
    assert list(a[A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES]) == ["lookup"]
    assert list(a[A.GENSIGHT_RESPONSE_TOOL_CALL_IDS]) == [resp.output[0].call_id]


def test_responses_stream_takes_usage_from_completed_event(client, span_exporter):
    events = list(client.responses.create(model="gpt-4o-mini", input="hello", stream=True))
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == events[-1].response.usage.output_tokens
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a and a[A.GEN_AI_USAGE_COST] > 0


def test_embeddings_span_has_input_tokens_dimensions_and_cost(client, span_exporter):
    resp = client.embeddings.create(model="text-embedding-3-small", input=["a b c", "d e"], encoding_format="float")
    span = _span(span_exporter)
    assert span.name == "embeddings text-embedding-3-small"
    a = span.attributes
    assert a[A.GEN_AI_OPERATION_NAME] == "embeddings"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == resp.usage.prompt_tokens
    assert a[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(resp.data[0].embedding)
    assert list(a[A.GEN_AI_REQUEST_ENCODING_FORMATS]) == ["float"]
    assert a[A.GEN_AI_USAGE_COST] == pytest.approx(resp.usage.prompt_tokens * 0.02 / 1e6)


# -- async ----------------------------------------------------------------------------------
async def test_async_chat_records_usage(aclient, span_exporter):
    resp = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert _span(span_exporter).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == resp.usage.completion_tokens


async def test_async_stream_records_usage_from_final_chunk(aclient, span_exporter):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                   stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a


async def test_async_error_reraised_with_error_type(aclient, fake, span_exporter):
    fake.configure({"force_status": 500, "force_status_count": 1})
    with pytest.raises(openai.InternalServerError):
        await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert _span(span_exporter).attributes[A.ERROR_TYPE] == "InternalServerError"


async def test_async_stream_broken_midway_fails_span(aclient, fake, span_exporter):
    fake.configure({"break_stream_after": 2})
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(Exception) as info:  # noqa: B017 - the SDK version decides the type
        async for _ in stream:
            pass
    assert _span(span_exporter).attributes[A.ERROR_TYPE] == type(info.value).__name__


async def test_async_stream_closed_early_ends_span(aclient, span_exporter):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    assert _span(span_exporter).attributes[A.GENSIGHT_STREAM_ENDED_BY] == "close"


async def test_async_responses_and_embeddings_are_traced(aclient, span_exporter):
    await aclient.responses.create(model="gpt-4o-mini", input="hi")
    await aclient.embeddings.create(model="text-embedding-3-small", input="hi")
    assert sorted(s.name for s in span_exporter.get_finished_spans()) == [
        "chat gpt-4o-mini", "embeddings text-embedding-3-small"]


# -- content capture ------------------------------------------------------------------------
def test_content_is_not_captured_by_default(client, span_exporter):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = _span(span_exporter)
    assert A.GEN_AI_INPUT_MESSAGES not in span.attributes and A.GEN_AI_OUTPUT_MESSAGES not in span.attributes
    assert "Paris" not in repr(dict(span.attributes))


def test_content_captured_when_env_var_enables_it(instrument, fake, span_exporter, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    instrument()
    with openai.OpenAI(base_url=fake.base_url, api_key="t", max_retries=0) as c:
        resp = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = _span(span_exporter).attributes
    inputs = json.loads(a[A.GEN_AI_INPUT_MESSAGES])
    assert inputs[1] == {"role": "user", "parts": [{"type": "text", "content": "secret question about Paris"}]}
    outputs = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])
    assert outputs[0]["parts"][0]["content"] == resp.choices[0].message.content
    assert outputs[0]["finish_reason"] == "stop"


def test_streamed_content_captured_when_enabled(instrument, fake, span_exporter, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    instrument()
    with openai.OpenAI(base_url=fake.base_url, api_key="t", max_retries=0) as c:
        text = "".join(ch.choices[0].delta.content or "" for ch in _stream(c) if ch.choices)
    outputs = json.loads(_span(span_exporter).attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert outputs[0]["parts"][0]["content"] == text


# -- pricing --------------------------------------------------------------------------------
def test_unknown_model_has_no_cost_and_warns_once(client, span_exporter, caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        client.chat.completions.create(model="acme-llm-7b", messages=MESSAGES)
    assert all(A.GEN_AI_USAGE_COST not in s.attributes for s in span_exporter.get_finished_spans())
    assert all(A.GEN_AI_USAGE_INPUT_TOKENS in s.attributes for s in span_exporter.get_finished_spans())
    assert sum("acme-llm-7b" in r.getMessage() for r in caplog.records) == 1


def test_pricing_file_override_is_used(client, span_exporter, tmp_path, monkeypatch):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"providers": {"openai": {"models": {"acme-llm-7b": {"input": 1.0, "output": 2.0}}}}}))
    monkeypatch.setenv("GENSIGHT_PRICING_FILE", str(f))
    pricing.reset_default_table()
    resp = client.chat.completions.create(model="acme-llm-7b", messages=MESSAGES)
    expected = (resp.usage.prompt_tokens * 1.0 + resp.usage.completion_tokens * 2.0) / 1e6
    assert _span(span_exporter).attributes[A.GEN_AI_USAGE_COST] == pytest.approx(expected)


# -- instrumentor lifecycle -----------------------------------------------------------------
def test_uninstrument_restores_original_methods(tracer_provider, meter_provider):
    from openai.resources import completions as legacy
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.embeddings import AsyncEmbeddings, Embeddings
    from openai.resources.responses import AsyncResponses, Responses

    classes = (Completions, AsyncCompletions, Responses, AsyncResponses, Embeddings, AsyncEmbeddings,
               legacy.Completions, legacy.AsyncCompletions)
    originals = {cls: cls.__dict__["create"] for cls in classes}
    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    assert all(isinstance(cls.__dict__["create"], wrapt.FunctionWrapper) for cls in classes)
    OpenAIInstrumentor().uninstrument()  # a fresh handle (the singleton) must still undo it
    assert all(cls.__dict__["create"] is originals[cls] for cls in classes)


def test_uninstrumented_calls_make_no_spans(instrument, fake, span_exporter):
    instrument()
    OpenAIInstrumentor().uninstrument()
    with openai.OpenAI(base_url=fake.base_url, api_key="t", max_retries=0) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert span_exporter.get_finished_spans() == ()


def test_instrumentation_dependencies_name_openai():
    assert tuple(OpenAIInstrumentor().instrumentation_dependencies()) == ("openai >= 1.0",)


def test_entry_point_is_registered():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "gensight_openai"]
    assert ep.load() is OpenAIInstrumentor


def test_with_raw_response_call_still_records_usage(client, span_exporter):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    parsed = raw.parse()
    assert _span(span_exporter).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == parsed.usage.completion_tokens


def test_with_raw_response_stream_is_left_unread_and_span_ended(client, span_exporter):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert len(span_exporter.get_finished_spans()) == 1
    assert len(list(raw.parse())) > 1  # the app can still read the whole stream


def test_legacy_text_completion_is_traced_with_usage(client, span_exporter):
    resp = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=50)
    span = _span(span_exporter)
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "text_completion"
    assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == resp.usage.completion_tokens


def test_legacy_text_completion_stream_takes_usage_from_final_chunk(client, span_exporter):
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True,
                                            stream_options={"include_usage": True}))
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
    assert list(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]


def test_azure_endpoint_sets_provider_and_default_https_port(instrument, span_exporter):
    from openai import _base_client  # the HTTP library this SDK version uses: httpx2 (3.x) or httpx (1.x)

    http = getattr(_base_client, "httpx2", None) or _base_client.httpx
    body = {"id": "chatcmpl-az", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    transport = http.MockTransport(lambda request: http.Response(200, json=body))
    instrument()
    with openai.OpenAI(base_url="https://acme.openai.azure.com/openai/v1", api_key="k", max_retries=0,
                       http_client=http.Client(transport=transport)) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = _span(span_exporter).attributes
    assert a[A.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert a[A.SERVER_ADDRESS] == "acme.openai.azure.com" and a[A.SERVER_PORT] == 443
    assert a[A.GEN_AI_USAGE_COST] == pytest.approx((5 * 0.15 + 1 * 0.6) / 1e6)  # azure alias priced


def test_event_only_capture_puts_messages_on_an_event_not_the_span(instrument, fake, span_exporter, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "event_only")
    instrument()
    with openai.OpenAI(base_url=fake.base_url, api_key="t", max_retries=0) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = _span(span_exporter)
    assert A.GEN_AI_INPUT_MESSAGES not in span.attributes
    (event,) = span.events
    assert event.name == "gen_ai.client.inference.operation.details"
    assert "Paris" in event.attributes[A.GEN_AI_INPUT_MESSAGES]
    assert A.GEN_AI_OUTPUT_MESSAGES in event.attributes
