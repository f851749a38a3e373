"""What a fake provider's routes and its HTTP server agree on: the request and reply shapes,
the deterministic answer plan, and the stand-ins for a tokenizer and a language model.

A route is ``def handler(fake, request) -> Reply``: ``request`` is a :class:`Request` (``.json``
is the parsed body); it returns ``Reply(body={...})`` for JSON or ``Reply(events=[(event_name_or_None,
json_text), ...])`` for SSE. The server (:mod:`gensight.fakes.transport`) applies latency,
``break_stream_after`` and chunked framing; it does not add ``data: [DONE]``, so a protocol that
wants it puts ``(None, "[DONE]")`` last. ``fake.plan(...)`` (:class:`Plan`) is the shared
deterministic token/latency/incident/error logic every route starts from.

This module imports no other part of :mod:`gensight.fakes`, so the provider route modules
(:mod:`.openai`, :mod:`.anthropic`) and the server can all depend on it without depending on
each other.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gensight.fakes.server import FakeProvider

_WORDS = ["the", "quick", "answer", "depends", "on", "context", "latency", "budget", "model", "cache", "token", "stream", "tool", "call", "retrieval", "vector", "index", "span", "metric", "trace", "cost", "dollar", "error", "rate", "window", "drift", "anomaly", "service", "level", "objective", "burn", "alert", "dashboard", "request", "response", "provider", "gateway"]


@dataclass
class Request:
    """One request as a route sees it (``json`` is the parsed body; None for GET)."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any


@dataclass
class Reply:
    """What a route answers: a JSON ``body``, or SSE ``events`` of (event name | None, data text)."""

    status: int = 200
    body: Any = None
    events: Iterable[tuple[str | None, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    output_tokens: int = 0  # for streaming latency: spread latency_per_token_s over the events


@dataclass
class Plan:
    """The deterministic shape of one answer, shared by all routes."""

    model: str
    response_model: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    finish_reason: str  # "stop" or "length"
    words: list[str]
    error: Reply | None  # an injected error (OpenAI's envelope: other protocols re-wrap its status)
    seed: int


Handler = Callable[["FakeProvider", Request], Reply]
"""A route: answers one request on one fake provider."""


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: about 4 characters per token, at least 1."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def fake_words(seed: int, n: int) -> list[str]:
    """``n`` words drawn deterministically from ``seed`` (the fake model's answer text)."""
    rng = random.Random(seed)
    return [rng.choice(_WORDS) for _ in range(n)]


def error_reply(status: int, message: str | None = None) -> Reply:
    """An error in OpenAI's envelope: the default for injected errors (see :attr:`Plan.error`)."""
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error", 404: "not_found_error"}.get(status, "server_error")
    return Reply(
        status=status,
        body={"error": {"message": message or f"fake provider: injected {status}", "type": kind, "param": None, "code": kind}},
        headers={"retry-after-ms": "10"} if status == 429 else {},
    )


def ident(prefix: str, seed: int, n: int) -> str:
    """A deterministic vendor-style id (``chatcmpl-…``, ``resp_…``) for the ``n``-th item of an answer."""
    return f"{prefix}{hashlib.sha256(f'{seed}:{n}'.encode()).hexdigest()[:24]}"

