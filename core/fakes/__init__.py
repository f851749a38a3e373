"""Fake LLM providers for local runs, the demo and the tests: OpenAI- and Anthropic-compatible HTTP.

``python -m gensight.fakes --port 8000`` serves both APIs on one port (deterministic answers;
latency, error rate and incidents switchable at run time via ``POST /_control``).
"""

from __future__ import annotations

from gensight.fakes.openai import FakeProvider, Incident, Reply, Request

__all__ = ["FakeProvider", "Incident", "Reply", "Request"]
