"""RAG retrievals as ``retrieval`` spans with relevance scores: decorator, context manager, and
the helpers the Chroma and LangChain instrumentors share.

::

    from gensight.instrumentation import retriever

    @retriever("product-docs", top_k=5)          # span "retrieval product-docs"
    def search(query: str) -> list[tuple[Doc, float]]: ...   # (doc, similarity) pairs, dicts
                                                             # with "score", or objects with .score
    with retriever("product-docs", top_k=5) as r:
        hits = index.search(embed(query), k=5)   # embedding calls here are child spans
        r.set_documents(ids=[h.id for h in hits], scores=[h.similarity for h in hits])

Span attributes: ``gen_ai.operation.name=retrieval``, ``gen_ai.data_source.id``,
``gen_ai.request.top_k``, and Gensight's ``gensight.retrieval.document_count`` (int),
``gensight.retrieval.top_score`` / ``gensight.retrieval.mean_score`` (double, similarity in
[0, 1], higher = more relevant; absent when no document had a usable score). Scores outside
[0, 1] (BM25, raw inner products, ...) are not similarities: they are ignored, not rescaled —
convert them first (Chroma distances are converted by :func:`similarity_from_distance`).
The query text (``gen_ai.retrieval.query.text``) and the per-document list
(``gen_ai.retrieval.documents`` = JSON ``[{"id", "score"}]``) are content: recorded only when
content capture is on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from gensight.instrumentation import attributes as A
from gensight.instrumentation._values import field_of as _get
from gensight.instrumentation.lifecycle import Invocation, Telemetry
from gensight.instrumentation.tools import MAX_CONTENT_CHARS, SpanBlock, content_json, wrap_in_span

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

SCORE_METADATA_KEYS = ("score", "relevance_score", "similarity")
"""Where a document's similarity is looked for (its metadata, or the item itself), in order."""

MAX_DOCUMENTS_RECORDED = 100
"""Cap on the per-document list (content capture only); counts and scores use every document."""


# -- distances -> similarity -------------------------------------------------------------------
def similarity_from_distance(distance: float, space: str) -> float | None:
    """A vector-store distance as a similarity in [0, 1] (higher = more relevant).

    ``cosine``: Chroma's distance is ``1 - cos``; similarity = clamp(1 - d, 0, 1) = max(cos, 0).
    ``ip``: Chroma's distance is ``1 - dot``; same formula (= cosine for unit-length embeddings;
    larger dot products clamp to 1).
    ``l2``: Chroma's distance is the *squared* Euclidean distance, unbounded; similarity =
    1 / (1 + d) (1 for identical vectors, 0.5 at d = 1, 1/3 for orthogonal unit vectors).
    ``None`` for a non-finite distance or an unknown space.
    """
    if not isinstance(distance, (int, float)) or isinstance(distance, bool) or not math.isfinite(distance):
        return None
    space = (space or "l2").lower()
    if space in ("cosine", "ip"):
        return min(1.0, max(0.0, 1.0 - float(distance)))
    if space == "l2":
        return 1.0 / (1.0 + max(0.0, float(distance)))
    return None


def valid_score(value: Any) -> float | None:
    """``value`` when it is a finite number in [0, 1], else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def document_score(doc: Any) -> Any:
    """The score an item carries: ``.score`` / ``["score"]`` (or the other SCORE_METADATA_KEYS),
    directly or in its ``metadata``. ``None`` when it has none."""
    for source in (doc, _get(doc, "metadata")):
        if source is None:
            continue
        for key in SCORE_METADATA_KEYS:
            value = _get(source, key)
            if value is not None and not callable(value):
                return value
    return None


def document_id(doc: Any) -> Any:
    for source in (doc, _get(doc, "metadata")):
        if source is None:
            continue
        value = _get(source, "id")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return value
    return None


def split_results(result: Any) -> tuple[int, list[Any], list[Any]] | None:
    """(count, ids, raw scores) of a retriever's return value: a sequence of documents, of
    ``(document, score)`` pairs, of dicts or of objects. ``None`` when it is not a sequence."""
    if result is None or isinstance(result, (str, bytes, Mapping)) or not isinstance(result, Iterable):
        return None
    if not isinstance(result, Sequence):
        return None  # a generator would be consumed by us: leave it alone
    ids: list[Any] = []
    scores: list[Any] = []
    for item in result:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (int, float)):
            doc, score = item
        else:
            doc, score = item, document_score(item)
        ids.append(document_id(doc))
        scores.append(score)
    return len(result), ids, scores


# -- the call handle ---------------------------------------------------------------------------
class RetrievalCall:
    """One retrieval in flight: what ``with retriever(...)`` gives, and what instrumentors use."""

    __slots__ = ("invocation",)

    def __init__(self, invocation: Invocation):
        self.invocation = invocation

    def set_query(self, query: Any) -> None:
        """The query text (content: recorded only when capture is on)."""
        if query is not None and self.invocation.capture_content.enabled:
            self.invocation.set_attribute(A.GEN_AI_RETRIEVAL_QUERY_TEXT, content_json(query))

    def set_documents(
        self,
        documents: Sequence[Any] | None = None,
        *,
        scores: Sequence[Any] | None = None,
        ids: Sequence[Any] | None = None,
        count: int | None = None,
    ) -> None:
        """Record what came back. ``scores`` are similarities in [0, 1] (others are ignored);
        without them, scores are read from ``documents`` (see :func:`split_results`)."""
        try:
            if documents is not None and (scores is None or ids is None):
                split = split_results(documents)
                if split is None and ids is None and scores is None and count is None:
                    return  # not a sequence we can read without consuming it
                if split is not None:
                    n, doc_ids, doc_scores = split
                    count = n if count is None else count
                    ids = doc_ids if ids is None else ids
                    scores = doc_scores if scores is None else scores
            if count is None:
                count = len(ids) if ids is not None else len(scores) if scores is not None else 0
            self._record(count, list(ids or ()), list(scores or ()))
        except Exception:
            logger.debug("gensight: could not record retrieval documents", exc_info=True)

    def _record(self, count: int, ids: list[Any], raw_scores: list[Any]) -> None:
        inv = self.invocation
        inv.set_attribute(A.GENSIGHT_RETRIEVAL_DOCUMENT_COUNT, int(count))
        scores = [valid_score(s) for s in raw_scores]
        usable = [s for s in scores if s is not None]
        if usable:
            inv.set_attribute(A.GENSIGHT_RETRIEVAL_TOP_SCORE, max(usable))
            inv.set_attribute(A.GENSIGHT_RETRIEVAL_MEAN_SCORE, sum(usable) / len(usable))
        if inv.capture_content.enabled and (ids or scores):
            n = min(MAX_DOCUMENTS_RECORDED, max(len(ids), len(scores)))
            docs = []
            for i in range(n):
                entry: dict[str, Any] = {"id": ids[i] if i < len(ids) else None}
                if i < len(scores) and scores[i] is not None:
                    entry["score"] = scores[i]
                docs.append(entry)
            text = json.dumps(docs, default=str)
            inv.set_attribute(A.GEN_AI_RETRIEVAL_DOCUMENTS, text[:MAX_CONTENT_CHARS])

    def set_attribute(self, key: str, value: Any) -> None:
        self.invocation.set_attribute(key, value)

    def stop(self) -> None:
        self.invocation.stop()

    def fail(self, error: BaseException | str) -> None:
        self.invocation.fail(error)


def start_retrieval(
    telemetry: Telemetry,
    data_source_id: str | None,
    *,
    top_k: int | None = None,
    query: Any = None,
    provider: str | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> RetrievalCall:
    """Open a ``retrieval`` span (not made current: use ``with call.invocation.activate()``)."""
    attrs: dict[str, Any] = dict(attributes or {})
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        attrs[A.GEN_AI_REQUEST_TOP_K] = top_k
    invocation = telemetry.start(
        A.OP_RETRIEVAL,
        provider=provider,
        name=data_source_id or None,
        server_address=server_address,
        server_port=server_port,
        attributes=attrs,
    )
    call = RetrievalCall(invocation)
    call.set_query(query)
    return call


# -- decorator / context manager ---------------------------------------------------------------
class _RetrievalSpec(SpanBlock[RetrievalCall]):
    def __init__(self, data_source_id: str | None, top_k: int | None, telemetry: Telemetry | None):
        self.data_source_id = data_source_id
        self.top_k = top_k
        self._telemetry = telemetry

    def _start(self, data_source_id: str | None, query: Any = None) -> RetrievalCall:
        from gensight.instrumentation.manual import default_telemetry

        return start_retrieval(self._telemetry or default_telemetry(), data_source_id, top_k=self.top_k, query=query)

    def __call__(self, fn: F) -> F:
        source = self.data_source_id or getattr(fn, "__name__", None)
        spec = self

        def first_text(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            for value in (*args, *kwargs.values()):
                if isinstance(value, str):
                    return value
            return None

        return wrap_in_span(fn, lambda args, kwargs: spec._start(source, first_text(args, kwargs)),
                            finish_with_documents)  # type: ignore[return-value]

    def _open(self) -> RetrievalCall:
        return self._start(self.data_source_id)


def finish_with_documents(call: RetrievalCall, result: Any) -> None:
    """Record a retriever's return value as the documents (see :meth:`RetrievalCall.set_documents`)
    and end the call."""
    call.set_documents(result)
    call.stop()


def retriever(
    data_source_id: Any = None,
    /,
    *,
    top_k: int | None = None,
    telemetry: Telemetry | None = None,
) -> Any:
    """Trace a retrieval: ``@retriever``, ``@retriever("index", top_k=5)``, or
    ``with retriever("index") as r: ...; r.set_documents(...)``.

    (Named ``retriever``, not ``retrieval``: ``gensight.instrumentation.retrieval`` is this module.)"""
    if callable(data_source_id):
        return _RetrievalSpec(None, top_k, telemetry)(data_source_id)
    return _RetrievalSpec(data_source_id, top_k, telemetry)
