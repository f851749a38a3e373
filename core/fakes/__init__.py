"""Fake LLM providers for local runs, the demo and the tests: OpenAI- and Anthropic-compatible HTTP.

``python -m gensight.fakes --port 8000`` serves both APIs on one port (deterministic answers;
latency, error rate and incidents switchable at run time via ``POST /_control``).

Modules: :mod:`.server` (:class:`FakeProvider`: settings, the shared answer plan, start/stop),
:mod:`.transport` (HTTP: health and control endpoints, dispatch, SSE framing), :mod:`.protocol`
(what routes and server agree on), :mod:`.openai` and :mod:`.anthropic` (each vendor's routes,
independent of each other), :mod:`.cli` (the command). Importing this package registers both
vendors' route tables on :class:`FakeProvider`; Python imports a package before any of its
modules, so ``from gensight.fakes.server import FakeProvider`` gets the routes too.
"""

from __future__ import annotations

from gensight.fakes import anthropic, openai
from gensight.fakes.protocol import Reply, Request
from gensight.fakes.server import FakeProvider, Incident

FakeProvider.register_routes(openai.ROUTES)
FakeProvider.register_routes(anthropic.ROUTES)

__all__ = ["FakeProvider", "Incident", "Reply", "Request"]
