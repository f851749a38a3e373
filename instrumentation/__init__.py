"""Gensight OpenTelemetry instrumentations for LLM clients, tools and retrievals.

Loaded by ``opentelemetry-instrument`` through the ``opentelemetry_instrumentor`` entry points,
or used directly: ``OpenAIInstrumentor().instrument()``.

The public manual API is importable from here and stays import-light (no LLM SDK is imported):

* ``tool`` — decorator / context manager for tool calls (``execute_tool`` spans)
* ``retriever`` — decorator / context manager for custom retrievers (``retrieval`` spans)
* ``track_llm_call`` — record an LLM call made by a client we do not instrument
* ``configure`` — where those record (default: the global tracer/meter/logger providers)
* ``variant`` — tag every span started inside with a feature-flag variant (experiments)
* ``record_evaluation`` / ``record_feedback`` — a ``gen_ai.evaluation.result`` for a call
"""

from __future__ import annotations

from gensight._lazy import lazy_exports

__all__ = ["configure", "record_evaluation", "record_feedback", "retriever", "tool", "track_llm_call", "variant"]

_EXPORTS = {
    "tool": "gensight.instrumentation.tools",
    "retriever": "gensight.instrumentation.retrieval",
    "track_llm_call": "gensight.instrumentation.manual",
    "configure": "gensight.instrumentation.manual",
    "variant": "gensight.instrumentation.variants",
    "record_evaluation": "gensight.instrumentation.evaluation",
    "record_feedback": "gensight.instrumentation.evaluation",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
