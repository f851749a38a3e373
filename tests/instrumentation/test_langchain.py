"""LangChainInstrumentor: real langchain_core tools and a BaseRetriever subclass."""

from __future__ import annotations

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools import tool as lc_tool
from opentelemetry.trace import SpanKind, StatusCode

from gensight.instrumentation import attributes as A
from gensight.instrumentation import manual
from gensight.instrumentation import tool as gensight_tool
from gensight.instrumentation.config import ContentCapture
from gensight.instrumentation.langchain import LangChainInstrumentor


def _instrument(tracer_provider, meter_provider, **kwargs):
    inst = LangChainInstrumentor()
    inst.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **kwargs)
    return inst


@pytest.fixture
def instrumented(tracer_provider, meter_provider):
    inst = _instrument(tracer_provider, meter_provider)
    yield inst
    inst.uninstrument()


@lc_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@lc_tool
def broken_lookup(key: str) -> str:
    """Always fails."""
    raise KeyError(key)


@lc_tool
def flaky(key: str) -> str:
    """Raises a ToolException that LangChain hands back to the agent as text."""
    raise ToolException("backend said no")


flaky.handle_tool_error = True


class Calculator(BaseTool):
    name: str = "calculator"
    description: str = "adds two numbers"

    def _run(self, a: int, b: int) -> int:
        return a + b


class ScoredRetriever(BaseRetriever):
    """Returns fixed documents carrying scores in metadata, like many vector-store retrievers."""

    k: int = 3

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [
            Document(page_content="a", metadata={"id": "d1", "score": 0.9}),
            Document(page_content="b", metadata={"id": "d2", "relevance_score": 0.5}),
            Document(page_content="c", metadata={"id": "d3"}),
        ][: self.k]


def _tool_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.attributes.get(A.GEN_AI_OPERATION_NAME) == "execute_tool"]


def test_instrumentation_dependencies_name_langchain_core():
    assert any(d.startswith("langchain-core") for d in LangChainInstrumentor().instrumentation_dependencies())


def test_invoke_with_a_tool_call_records_name_id_and_type(instrumented, span_exporter):
    result = get_weather.invoke({"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_42",
                                 "type": "tool_call"})
    assert isinstance(result, ToolMessage) and result.content == "sunny in Oslo"
    (span,) = _tool_spans(span_exporter)
    assert span.name == "execute_tool get_weather"
    assert span.kind == SpanKind.INTERNAL
    attrs = span.attributes
    assert attrs[A.GEN_AI_TOOL_NAME] == "get_weather"
    assert attrs[A.GEN_AI_TOOL_CALL_ID] == "call_42"
    assert attrs[A.GEN_AI_TOOL_TYPE] == "function"
    assert attrs[A.GEN_AI_TOOL_DESCRIPTION] == "Current weather for a city."
    assert A.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs and A.GEN_AI_TOOL_CALL_RESULT not in attrs


def test_tool_spans_are_children_of_the_agent_span(instrumented, tracer_provider, span_exporter):
    with tracer_provider.get_tracer("agent").start_as_current_span("invoke_agent helper") as agent:
        get_weather.invoke({"city": "Oslo"})
        Calculator().run({"a": 1, "b": 2})
    spans = _tool_spans(span_exporter)
    assert [s.name for s in spans] == ["execute_tool get_weather", "execute_tool calculator"]
    assert all(s.parent.span_id == agent.get_span_context().span_id for s in spans)


async def test_ainvoke_is_one_span(instrumented, span_exporter):
    assert await get_weather.ainvoke({"city": "Rome"}) == "sunny in Rome"
    assert [s.name for s in _tool_spans(span_exporter)] == ["execute_tool get_weather"]


def test_a_raising_tool_fails_the_span_and_the_error_reaches_the_caller(instrumented, span_exporter):
    with pytest.raises(KeyError):
        broken_lookup.invoke({"key": "x"})
    (span,) = _tool_spans(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "KeyError"


def test_a_handled_tool_error_returns_text_but_fails_the_span(instrumented, span_exporter, metric_points):
    assert flaky.invoke({"key": "x"}) == "backend said no"
    (span,) = _tool_spans(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ToolException"
    (point,) = metric_points()["gen_ai.client.operation.duration"]
    assert dict(point.attributes)[A.ERROR_TYPE] == "ToolException"


def test_content_capture_records_tool_arguments_and_result(tracer_provider, meter_provider, span_exporter):
    inst = _instrument(tracer_provider, meter_provider, capture=ContentCapture.SPAN_ONLY)
    try:
        get_weather.invoke({"city": "Oslo"})
    finally:
        inst.uninstrument()
    attrs = _tool_spans(span_exporter)[0].attributes
    assert "Oslo" in attrs[A.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert attrs[A.GEN_AI_TOOL_CALL_RESULT] == "sunny in Oslo"


def test_gensight_decorated_function_inside_a_langchain_tool_gives_one_span(instrumented, tracer_provider,
                                                                           meter_provider, span_exporter,
                                                                           monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)

    @lc_tool
    @gensight_tool("search")
    def search(query: str) -> str:
        """Search."""
        return query

    search.invoke({"query": "q"})
    assert [s.name for s in _tool_spans(span_exporter)] == ["execute_tool search"]


def test_retriever_invoke_records_count_and_metadata_scores(instrumented, span_exporter):
    docs = ScoredRetriever().invoke("refunds")
    assert len(docs) == 3
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "retrieval ScoredRetriever"
    attrs = span.attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attrs[A.GEN_AI_DATA_SOURCE_ID] == "ScoredRetriever"
    assert attrs[A.GEN_AI_REQUEST_TOP_K] == 3
    assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 3
    assert attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] == pytest.approx(0.9)
    assert attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == pytest.approx(0.7)  # the unscored document is left out


async def test_retriever_ainvoke_is_one_span(instrumented, span_exporter):
    docs = await ScoredRetriever(k=1).ainvoke("refunds")
    assert len(docs) == 1
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 1
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == 1


def test_retriever_failure_fails_the_span(instrumented, span_exporter):
    class Broken(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):
            raise ConnectionError("index down")

    with pytest.raises(ConnectionError):
        Broken().invoke("q")
    (span,) = span_exporter.get_finished_spans()
    assert span.attributes[A.ERROR_TYPE] == "ConnectionError"


def test_uninstrument_restores_langchain(tracer_provider, meter_provider, span_exporter):
    _instrument(tracer_provider, meter_provider).uninstrument()
    get_weather.invoke({"city": "Oslo"})
    ScoredRetriever().invoke("q")
    assert span_exporter.get_finished_spans() == ()


def test_uninstrument_from_a_fresh_handle_restores_langchain(tracer_provider, meter_provider, span_exporter):
    _instrument(tracer_provider, meter_provider)
    LangChainInstrumentor().uninstrument()
    get_weather.invoke({"city": "Oslo"})
    ScoredRetriever().invoke("q")
    assert span_exporter.get_finished_spans() == ()


def test_retriever_name_sets_the_data_source_id(instrumented, span_exporter):
    ScoredRetriever(name="product-docs").invoke("q")
    (span,) = span_exporter.get_finished_spans()
    assert span.name == "retrieval product-docs"
    assert span.attributes[A.GEN_AI_DATA_SOURCE_ID] == "product-docs"


def test_a_handled_validation_error_fails_the_span(instrumented, span_exporter):
    @lc_tool
    def double(x: int) -> int:
        """Doubles x."""
        return 2 * x

    double.handle_validation_error = True
    assert double.invoke({"x": "not a number"}) == "Tool input validation error"
    (span,) = _tool_spans(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ValidationError"


def test_embedding_call_inside_a_retriever_is_its_child(instrumented, fake, tracer_provider, meter_provider,
                                                        span_exporter):
    import openai

    from gensight.instrumentation.openai import OpenAIInstrumentor

    class EmbeddingRetriever(BaseRetriever):
        client: object

        def _get_relevant_documents(self, query, *, run_manager):
            self.client.embeddings.create(model="text-embedding-3-small", input=[query])
            return [Document(page_content="a", metadata={"similarity": 0.8})]

    oai = OpenAIInstrumentor()
    oai.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
            EmbeddingRetriever(client=client, name="kb").invoke("refunds")
    finally:
        oai.uninstrument()
    by_name = {s.name: s for s in span_exporter.get_finished_spans()}
    assert by_name["embeddings text-embedding-3-small"].parent.span_id == by_name["retrieval kb"].context.span_id
