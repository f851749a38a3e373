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

from typing import Any

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


def __getattr__(name: str) -> Any:
    """Import the manual API on first use (PEP 562), so importing an instrumentor stays cheap."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'gensight.instrumentation' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
