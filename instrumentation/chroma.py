"""Chroma instrumentation: ``Collection.query`` as a ``retrieval`` span. Entry point ``gensight_chromadb``.

The span (``retrieval {collection name}``) is current while Chroma runs the query, so the
embedding function it calls for ``query_texts`` (e.g. OpenAI embeddings, instrumented by
``gensight_openai``) produces its own span as a *child* of the retrieval span.

Distances become similarities in [0, 1] by the collection's space (``hnsw:space`` metadata or
the collection configuration; Chroma's default is ``l2``), see
:func:`gensight.instrumentation.retrieval.similarity_from_distance`:

=========  ==========================  ==================================
space      Chroma distance ``d``       similarity
=========  ==========================  ==================================
``cosine`` ``1 - cos``                 ``clamp(1 - d, 0, 1)`` (= max(cos, 0))
``ip``     ``1 - dot``                 ``clamp(1 - d, 0, 1)``
``l2``     squared Euclidean           ``1 / (1 + d)``
=========  ==========================  ==================================

``document_count`` counts every returned id over all query texts; top/mean scores use every
returned distance. Queries made with ``include=[]`` (no distances) get a count but no scores.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from gensight.instrumentation.instrumentor import GensightInstrumentor
from gensight.instrumentation.lifecycle import Telemetry
from gensight.instrumentation.retrieval import RetrievalCall, similarity_from_distance, start_retrieval
from gensight.instrumentation.tools import method_wrapper

logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "gensight.instrumentation.chromadb"
DEFAULT_N_RESULTS = 10  # chromadb's default for Collection.query

_TARGETS = (
    ("chromadb.api.models.Collection", "Collection", False),
    ("chromadb.api.models.AsyncCollection", "AsyncCollection", True),
)


class ChromaInstrumentor(GensightInstrumentor):
    """Instruments ``chromadb`` collections' ``query`` (sync and async clients)."""

    scope = INSTRUMENTATION_SCOPE
    dependencies = ("chromadb >= 0.5",)

    def _wrap_methods(self, telemetry: Telemetry, kwargs: Mapping[str, Any]) -> None:
        for module_name, class_name, is_async in _TARGETS:
            wrapper = method_wrapper(functools.partial(_start, telemetry), _finish, is_async=is_async)
            self._wrap(module_name, class_name, "query", wrapper)


def collection_space(collection: Any) -> str:
    """The collection's distance function: ``l2`` (default), ``cosine`` or ``ip``."""
    try:
        metadata = getattr(collection, "metadata", None) or {}
        space = metadata.get("hnsw:space")
        if isinstance(space, str) and space:
            return space.lower()
        config = getattr(collection, "configuration_json", None) or {}
        for index in ("hnsw", "spann"):
            section = config.get(index) if isinstance(config, dict) else None
            if isinstance(section, dict) and isinstance(section.get("space"), str):
                return str(section["space"]).lower()
    except Exception:
        logger.debug("gensight: could not read the chroma collection space", exc_info=True)
    return "l2"


def _start(telemetry: Telemetry, collection: Any, args: Any, kwargs: dict[str, Any]) -> RetrievalCall:
    n_results = kwargs.get("n_results", DEFAULT_N_RESULTS)
    query = kwargs.get("query_texts")
    if isinstance(query, list) and len(query) == 1:
        query = query[0]
    name = getattr(collection, "name", None)
    return start_retrieval(
        telemetry,
        name if isinstance(name, str) else None,
        top_k=n_results if isinstance(n_results, int) else None,
        query=query,
        attributes={"db.system.name": "chroma"},
    )


def _finish(call: RetrievalCall, collection: Any, result: Any) -> None:
    """Record the query result (an unreadable one only loses the scores) and end the call."""
    try:
        ids = [i for per_query in (result.get("ids") or []) for i in per_query]
        distances = [d for per_query in (result.get("distances") or []) for d in (per_query or [])]
        space = collection_space(collection)
        scores = [similarity_from_distance(d, space) for d in distances]
        call.set_documents(ids=ids, scores=scores or None, count=len(ids))
    except Exception:
        logger.debug("gensight: could not read the chroma query result", exc_info=True)
    call.stop()
