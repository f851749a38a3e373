"""Custom retrievers as retrieval spans: decorator, context manager, score handling."""

from __future__ import annotations

import json
import math

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from gensight.instrumentation import attributes as A
from gensight.instrumentation import manual, retriever, track_llm_call
from gensight.instrumentation.config import ContentCapture
from gensight.instrumentation.retrieval import similarity_from_distance


@pytest.fixture
def configured(tracer_provider, meter_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    return manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)


@pytest.fixture
def capturing(tracer_provider, meter_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    return manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider,
                            capture=ContentCapture.SPAN_ONLY)


def _only(exporter):
    (span,) = exporter.get_finished_spans()
    return span


@pytest.mark.parametrize(("space", "distance", "similarity"), [
    ("cosine", 0.0, 1.0), ("cosine", 0.25, 0.75), ("cosine", 1.5, 0.0),
    ("ip", 0.1, 0.9), ("ip", -0.4, 1.0), ("ip", 2.0, 0.0),
    ("l2", 0.0, 1.0), ("l2", 1.0, 0.5), ("l2", 3.0, 0.25),
])
def test_distances_map_to_documented_similarities(space, distance, similarity):
    assert similarity_from_distance(distance, space) == pytest.approx(similarity)


@pytest.mark.parametrize("distance", [math.nan, math.inf, None, "0.1"])
def test_unusable_distances_have_no_similarity(distance):
    assert similarity_from_distance(distance, "cosine") is None


def test_unknown_space_has_no_similarity():
    assert similarity_from_distance(0.1, "hamming") is None


def test_decorated_retriever_with_scored_pairs_records_count_top_and_mean(configured, span_exporter):
    @retriever("product-docs", top_k=3)
    def search(query: str):
        return [({"id": "a"}, 0.9), ({"id": "b"}, 0.6), ({"id": "c"}, 0.3)]

    search("refund policy")
    span = _only(span_exporter)
    assert span.name == "retrieval product-docs"
    assert span.kind == SpanKind.CLIENT
    attrs = span.attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attrs[A.GEN_AI_DATA_SOURCE_ID] == "product-docs"
    assert attrs[A.GEN_AI_REQUEST_TOP_K] == 3
    assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 3
    assert isinstance(attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT], int)
    assert attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] == pytest.approx(0.9)
    assert attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == pytest.approx(0.6)


def test_scores_are_read_from_document_metadata(configured, span_exporter):
    @retriever("kb")
    def search(query: str):
        return [{"id": 1, "metadata": {"relevance_score": 0.8}}, {"id": 2, "metadata": {"similarity": 0.4}}]

    search("q")
    attrs = _only(span_exporter).attributes
    assert attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] == pytest.approx(0.8)
    assert attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == pytest.approx(0.6)


def test_scores_outside_zero_one_are_ignored_not_rescaled(configured, span_exporter):
    @retriever("bm25")
    def search(query: str):
        return [({"id": "a"}, 12.7), ({"id": "b"}, 0.5), ({"id": "c"}, -1.0)]

    search("q")
    attrs = _only(span_exporter).attributes
    assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 3
    assert attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] == 0.5
    assert attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == 0.5


def test_documents_without_scores_get_a_count_only(configured, span_exporter):
    @retriever("plain")
    def search(query: str):
        return ["doc one", "doc two"]

    search("q")
    attrs = _only(span_exporter).attributes
    assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 2
    assert A.GENSIGHT_RETRIEVAL_TOP_SCORE not in attrs


def test_empty_result_counts_zero(configured, span_exporter):
    @retriever("empty")
    def search(query: str):
        return []

    search("q")
    assert _only(span_exporter).attributes[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 0


def test_a_generator_result_is_not_consumed(configured, span_exporter):
    @retriever("lazy")
    def search(query: str):
        yield from ["a", "b"]

    assert list(search("q")) == ["a", "b"]
    assert A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT not in _only(span_exporter).attributes


def test_query_and_documents_are_content(configured, capturing, span_exporter):
    @retriever("kb")
    def search(query: str):
        return [({"id": "a"}, 0.9)]

    search("where is my parcel")
    attrs = _only(span_exporter).attributes
    assert json.loads(attrs[A.GEN_AI_RETRIEVAL_DOCUMENTS]) == [{"id": "a", "score": 0.9}]
    assert "parcel" in attrs[A.GEN_AI_RETRIEVAL_QUERY_TEXT]


def test_query_and_documents_are_not_recorded_by_default(configured, span_exporter):
    @retriever("kb")
    def search(query: str):
        return [({"id": "a"}, 0.9)]

    search("where is my parcel")
    attrs = _only(span_exporter).attributes
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in attrs and A.GEN_AI_RETRIEVAL_QUERY_TEXT not in attrs


def test_context_manager_embedding_call_is_a_child_span(configured, span_exporter):
    with retriever("vectors", top_k=2) as r:
        with track_llm_call("openai", "text-embedding-3-small", operation="embeddings", input_tokens=5):
            pass
        r.set_documents(ids=["x", "y"], scores=[0.7, 0.5])
    by_name = {s.name: s for s in span_exporter.get_finished_spans()}
    assert by_name["embeddings text-embedding-3-small"].parent.span_id == by_name["retrieval vectors"].context.span_id
    assert by_name["retrieval vectors"].attributes[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == pytest.approx(0.6)


async def test_async_decorator_and_failure(configured, span_exporter):
    @retriever("remote")
    async def search(query: str):
        raise ConnectionError("index down")

    with pytest.raises(ConnectionError):
        await search("q")
    span = _only(span_exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ConnectionError"


def test_bare_decorator_uses_the_function_name(configured, span_exporter):
    @retriever
    def faq_lookup(query: str):
        return []

    faq_lookup("q")
    assert _only(span_exporter).name == "retrieval faq_lookup"


def test_retrieval_metrics_carry_the_data_source(configured, metric_points):
    with retriever("kb"):
        pass
    (point,) = metric_points()["gen_ai.client.operation.duration"]
    assert dict(point.attributes) == {A.GEN_AI_OPERATION_NAME: "retrieval", A.GEN_AI_DATA_SOURCE_ID: "kb"}


def test_nan_and_non_numeric_scores_are_ignored(configured, span_exporter):
    with retriever("kb") as r:
        r.set_documents(ids=["a", "b", "c", "d"], scores=[math.nan, "0.9", None, 0.4])
    attrs = _only(span_exporter).attributes
    assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 4
    assert attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] == 0.4 and attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == 0.4
