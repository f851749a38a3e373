"""Gensight OpenTelemetry instrumentations for LLM clients, tools and retrievals.

Loaded by ``opentelemetry-instrument`` through the ``opentelemetry_instrumentor`` entry points,
or used directly: ``OpenAIInstrumentor().instrument()``.
"""
