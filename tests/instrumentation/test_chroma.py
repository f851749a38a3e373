"""ChromaInstrumentor: a real in-memory chromadb collection with a deterministic embedding function."""

from __future__ import annotations

import hashlib
import json
import math
import uuid

import chromadb
import openai
import pytest
from chromadb.api.types import EmbeddingFunction
from chromadb.config import Settings
from opentelemetry.trace import SpanKind, StatusCode

from gensight.instrumentation import attributes as A
from gensight.instrumentation.chroma import ChromaInstrumentor, collection_space
from gensight.instrumentation.config import ContentCapture
from gensight.instrumentation.openai import OpenAIInstrumentor

DOCS = {"apple": "apple pie recipe", "banana": "banana bread recipe", "tax": "how to file taxes"}


def _vector(text: str) -> list[float]:
    """A deterministic unit vector (no model download: the network is closed)."""
    digest = hashlib.sha256(text.encode()).digest()
    vec = [b / 255 - 0.5 for b in digest[:8]]
    norm = math.sqrt(sum(v * v for v in vec))
    return [v / norm for v in vec]


class HashEmbedding(EmbeddingFunction):
    def __init__(self) -> None:
        pass

    def __call__(self, input):  # noqa: A002 - chromadb's parameter name
        return [_vector(t) for t in input]

    @staticmethod
    def name() -> str:
        return "gensight-test-hash"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config) -> HashEmbedding:
        return HashEmbedding()


class OpenAIEmbedding(HashEmbedding):
    """Embeds through the real OpenAI SDK (against the fake provider), as a RAG app would."""

    def __init__(self, client: openai.OpenAI) -> None:
        self.client = client

    def __call__(self, input):  # noqa: A002
        response = self.client.embeddings.create(model="text-embedding-3-small", input=list(input), dimensions=8)
        return [d.embedding for d in response.data]


@pytest.fixture(scope="module")
def chroma():
    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False, allow_reset=True))


@pytest.fixture
def make_collection(chroma):
    names = []

    def make(space: str = "cosine", embedding=None):
        name = f"docs-{uuid.uuid4().hex[:8]}"
        names.append(name)
        collection = chroma.create_collection(name, embedding_function=embedding or HashEmbedding(),
                                              metadata={"hnsw:space": space})
        collection.add(ids=list(DOCS), documents=list(DOCS.values()))
        return collection

    yield make
    for name in names:
        chroma.delete_collection(name)


def _instrument(tracer_provider, meter_provider, **kwargs):
    inst = ChromaInstrumentor()
    inst.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, **kwargs)
    return inst


@pytest.fixture
def instrumented(tracer_provider, meter_provider):
    inst = _instrument(tracer_provider, meter_provider)
    yield inst
    inst.uninstrument()


def _retrieval_spans(exporter):
    return [s for s in exporter.get_finished_spans() if s.attributes.get(A.GEN_AI_OPERATION_NAME) == "retrieval"]


def test_instrumentation_dependencies_name_chromadb():
    assert any(d.startswith("chromadb") for d in ChromaInstrumentor().instrumentation_dependencies())


def test_query_is_a_retrieval_span_with_count_and_scores(make_collection, instrumented, span_exporter):
    collection = make_collection("cosine")
    result = collection.query(query_texts=["apple pie recipe"], n_results=2)
    (span,) = _retrieval_spans(span_exporter)
    assert span.name == f"retrieval {collection.name}"
    assert span.kind == SpanKind.CLIENT
    attrs = span.attributes
    assert attrs[A.GEN_AI_DATA_SOURCE_ID] == collection.name
    assert attrs[A.GEN_AI_REQUEST_TOP_K] == 2
    assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 2
    distances = result["distances"][0]
    assert attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] == pytest.approx(1.0, abs=1e-6)  # exact text match
    expected = [max(0.0, 1 - d) for d in distances]
    assert attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == pytest.approx(sum(expected) / 2)


@pytest.mark.parametrize("space", ["l2", "cosine", "ip"])
def test_scores_follow_the_collections_space(make_collection, instrumented, span_exporter, space):
    collection = make_collection(space)
    assert collection_space(collection) == space
    result = collection.query(query_texts=["banana"], n_results=3)
    distances = result["distances"][0]
    if space == "l2":
        expected = [1 / (1 + d) for d in distances]
    else:
        expected = [min(1.0, max(0.0, 1 - d)) for d in distances]
    attrs = _retrieval_spans(span_exporter)[0].attributes
    assert attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] == pytest.approx(max(expected))
    assert attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] == pytest.approx(sum(expected) / 3)
    assert 0.0 <= attrs[A.GENSIGHT_RETRIEVAL_MEAN_SCORE] <= attrs[A.GENSIGHT_RETRIEVAL_TOP_SCORE] <= 1.0


def test_default_space_is_l2(chroma):
    collection = chroma.create_collection(f"plain-{uuid.uuid4().hex[:8]}", embedding_function=HashEmbedding())
    try:
        assert collection_space(collection) == "l2"
    finally:
        chroma.delete_collection(collection.name)


def test_several_query_texts_count_every_returned_document(make_collection, instrumented, span_exporter):
    collection = make_collection()
    collection.query(query_texts=["apple", "taxes"], n_results=2)
    assert _retrieval_spans(span_exporter)[0].attributes[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 4


def test_query_without_distances_gets_a_count_but_no_scores(make_collection, instrumented, span_exporter):
    collection = make_collection()
    collection.query(query_texts=["apple"], n_results=2, include=["documents"])
    attrs = _retrieval_spans(span_exporter)[0].attributes
    assert attrs[A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT] == 2
    assert A.GENSIGHT_RETRIEVAL_TOP_SCORE not in attrs


def test_query_embedding_call_is_a_child_span_of_the_retrieval(make_collection, instrumented, fake, tracer_provider,
                                                               meter_provider, span_exporter):
    oai = OpenAIInstrumentor()
    oai.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
            collection = make_collection("cosine", OpenAIEmbedding(client))  # add() embeds too: own spans
            span_exporter.clear()
            collection.query(query_texts=["apple pie"], n_results=1)
    finally:
        oai.uninstrument()
    spans = span_exporter.get_finished_spans()
    (retrieval,) = _retrieval_spans(span_exporter)
    (embedding,) = [s for s in spans if s.attributes.get(A.GEN_AI_OPERATION_NAME) == "embeddings"]
    assert embedding.parent.span_id == retrieval.context.span_id
    assert embedding.context.trace_id == retrieval.context.trace_id
    assert embedding.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] > 0


def test_query_text_and_documents_only_with_content_capture(make_collection, tracer_provider, meter_provider,
                                                            span_exporter):
    inst = _instrument(tracer_provider, meter_provider, capture=ContentCapture.SPAN_ONLY)
    try:
        make_collection().query(query_texts=["apple pie recipe"], n_results=2)
    finally:
        inst.uninstrument()
    attrs = _retrieval_spans(span_exporter)[0].attributes
    assert attrs[A.GEN_AI_RETRIEVAL_QUERY_TEXT] == "apple pie recipe"
    docs = json.loads(attrs[A.GEN_AI_RETRIEVAL_DOCUMENTS])
    assert docs[0]["id"] == "apple" and docs[0]["score"] == pytest.approx(1.0, abs=1e-6)


def test_no_content_by_default(make_collection, instrumented, span_exporter):
    make_collection().query(query_texts=["apple pie recipe"], n_results=2)
    attrs = _retrieval_spans(span_exporter)[0].attributes
    assert A.GEN_AI_RETRIEVAL_QUERY_TEXT not in attrs and A.GEN_AI_RETRIEVAL_DOCUMENTS not in attrs


def test_a_failing_query_fails_the_span_and_reraises(make_collection, instrumented, span_exporter):
    collection = make_collection()
    with pytest.raises(Exception) as caught:
        collection.query(query_texts=["apple"], n_results=2, where={"$bogus": 1})
    span = _retrieval_spans(span_exporter)[0]
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == type(caught.value).__name__


def test_uninstrument_stops_spans(make_collection, tracer_provider, meter_provider, span_exporter):
    _instrument(tracer_provider, meter_provider).uninstrument()
    make_collection().query(query_texts=["apple"], n_results=1)
    assert _retrieval_spans(span_exporter) == []


def test_uninstrument_from_a_fresh_handle_stops_spans(make_collection, tracer_provider, meter_provider, span_exporter):
    _instrument(tracer_provider, meter_provider)
    ChromaInstrumentor().uninstrument()
    make_collection().query(query_texts=["apple"], n_results=1)
    assert _retrieval_spans(span_exporter) == []


def test_query_metrics_carry_the_collection(make_collection, instrumented, metric_points):
    collection = make_collection()
    collection.query(query_texts=["apple"], n_results=1)
    (point,) = metric_points()["gen_ai.client.operation.duration"]
    assert dict(point.attributes)[A.GEN_AI_DATA_SOURCE_ID] == collection.name
