"""An OpenAI-compatible fake LLM provider over real HTTP, for tests, the demo and the compose stack.

Real SDK clients talk to it exactly as to the vendor (``base_url=provider.base_url``), so the
instrumentation is exercised through the SDK's real HTTP, SSE and error paths. Everything is
deterministic: token counts follow from the input size, texts and vectors from a hash of the
request, random errors from a seeded RNG.

Use::

    from gensight.fakes.openai import FakeProvider, Incident
    with FakeProvider() as fake:                       # 127.0.0.1, ephemeral port, no latency
        client = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
    fake = FakeProvider(port=8000, latency_s=0.4, latency_per_token_s=0.01).start(); ...; fake.stop()

    python -m gensight.fakes --port 8000 --latency-s 0.4 --error-rate 0.02

Routes: ``POST /v1/messages`` (Anthropic: :mod:`gensight.fakes.anthropic`), ``POST /v1/chat/completions`` (JSON or SSE with ``stream``; usage chunk when
``stream_options.include_usage``; a tool call when ``tools`` are given and the last message is
not a tool result), ``POST /v1/responses`` (JSON or SSE events), ``POST /v1/embeddings`` (float
or base64 vectors), ``POST /v1/completions`` (legacy text completions, JSON or SSE), ``POST /_control`` and ``GET /_control`` (runtime settings), ``GET /healthz``.

Behaviour knobs (constructor arguments, and keys of the ``/_control`` JSON body):
``latency_s`` (before the first byte), ``latency_per_token_s`` (per output token; streams
spread it over chunks), ``error_rate`` (0..1; half 429, half 500), ``force_status`` +
``force_status_count`` (answer the next N requests, or all when the count is null, with that
status), ``break_stream_after`` (streams: drop the connection after N events, mid-body),
``usage_details`` (include ``prompt_tokens_details`` / ``completion_tokens_details``), and
``incident`` = ``{"model": "gpt-4o-mini" | null, "latency_factor": k, "output_factor": k,
"error_rate": r}`` (null clears it). Prompts seen before get cached-token counts (multiples of
128 once a prompt reaches 1024 tokens), like the vendor's prompt caching.

Adding routes (e.g. Anthropic ``/v1/messages``): write ``def handler(fake, request) -> Reply``
where ``request`` is a :class:`Request` (``.json`` is the parsed body) and return
``Reply(body={...})`` for JSON or ``Reply(events=[(event_name_or_None, json_text), ...])`` for
SSE (the server applies latency, ``break_stream_after`` and chunked framing; it does not add
``data: [DONE]``, so put ``(None, "[DONE]")`` last if the protocol wants it). Register it with
``FakeProvider.register_route("POST", "/v1/messages", handler)`` (for every instance) or
``fake.add_route(...)`` (one instance). Use :meth:`FakeProvider.plan` for the shared
deterministic token/latency/incident/error logic, and :func:`count_tokens` / :func:`fake_words`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import random
import signal
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_HOST = "127.0.0.1"
CACHE_MIN_TOKENS = 1024
CACHE_BLOCK_TOKENS = 128
_MAX_REMEMBERED_PROMPTS = 4096
_MAX_BODY_BYTES = 16 * 1024 * 1024
_WORDS = ["the", "quick", "answer", "depends", "on", "context", "latency", "budget", "model", "cache", "token", "stream", "tool", "call", "retrieval", "vector", "index", "span", "metric", "trace", "cost", "dollar", "error", "rate", "window", "drift", "anomaly", "service", "level", "objective", "burn", "alert", "dashboard", "request", "response", "provider", "gateway"]
_SNAPSHOTS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06"}


# -- data types --------------------------------------------------------------------------------
@dataclass
class Incident:
    """A switchable degradation for one model (``model=None``: every model)."""

    model: str | None = None
    latency_factor: float = 1.0
    output_factor: float = 1.0
    error_rate: float | None = None

    def applies_to(self, model: str) -> bool:
        return self.model is None or self.model == model

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Incident:
        unknown = set(data) - {"model", "latency_factor", "output_factor", "error_rate"}
        if unknown:
            raise ValueError(f"incident: unknown key(s) {sorted(unknown)}")
        inc = cls(
            model=data.get("model"),
            latency_factor=float(data.get("latency_factor", 1.0)),
            output_factor=float(data.get("output_factor", 1.0)),
            error_rate=None if data.get("error_rate") is None else float(data["error_rate"]),
        )
        if inc.latency_factor < 0 or inc.output_factor < 0:
            raise ValueError("incident: factors must be >= 0")
        if inc.error_rate is not None and not 0 <= inc.error_rate <= 1:
            raise ValueError("incident: error_rate must be within [0, 1]")
        return inc

    def to_mapping(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "latency_factor": self.latency_factor,
            "output_factor": self.output_factor,
            "error_rate": self.error_rate,
        }


@dataclass
class Request:
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
    error: Reply | None
    seed: int


Handler = Callable[["FakeProvider", Request], Reply]


# -- helpers ----------------------------------------------------------------------------------
def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: about 4 characters per token, at least 1."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def fake_words(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_WORDS) for _ in range(n)]


def _text_of(content: Any) -> str:
    """Concatenated text of an OpenAI message content (str, or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(p.get("text") or p.get("content")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _error_reply(status: int, message: str | None = None) -> Reply:
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error", 404: "not_found_error"}.get(status, "server_error")
    return Reply(
        status=status,
        body={"error": {"message": message or f"fake provider: injected {status}", "type": kind, "param": None, "code": kind}},
        headers={"retry-after-ms": "10"} if status == 429 else {},
    )


def _ident(prefix: str, seed: int, n: int) -> str:
    return f"{prefix}{hashlib.sha256(f'{seed}:{n}'.encode()).hexdigest()[:24]}"


# -- routes: OpenAI ---------------------------------------------------------------------------
def _chat_completions(fake: FakeProvider, req: Request) -> Reply:
    body = req.json
    messages = body.get("messages")
    if not isinstance(body.get("model"), str) or not isinstance(messages, list):
        return _error_reply(400, "'model' (string) and 'messages' (list) are required")
    prompt = "\n".join(f"{m.get('role')}:{_text_of(m.get('content'))}" for m in messages if isinstance(m, dict))
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    plan = fake.plan(body["model"], prompt, count_tokens(prompt) + 3 * len(messages) + 3, max_tokens)
    if plan.error is not None:
        return plan.error
    tools = body.get("tools") or []
    last_role = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
    tool_call: dict[str, Any] | None = None
    if tools and body.get("tool_choice") != "none" and last_role != "tool":
        fn = tools[0].get("function", {}) if isinstance(tools[0], dict) else {}
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            fn = choice.get("function", fn)
        params = (fn.get("parameters") or {}).get("properties") or {}
        args = json.dumps({k: plan.words[i % len(plan.words)] for i, k in enumerate(params)})
        tool_call = {"id": _ident("call_", plan.seed, 1), "type": "function",
                     "function": {"name": fn.get("name", "tool"), "arguments": args}}
    finish = "tool_calls" if tool_call else plan.finish_reason
    text = None if tool_call else " ".join(plan.words)
    completion_id = _ident("chatcmpl-", plan.seed, 0)
    created = int(time.time())
    usage: dict[str, Any] = {
        "prompt_tokens": plan.input_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": plan.input_tokens + plan.output_tokens,
    }
    if fake.usage_details:
        usage["prompt_tokens_details"] = {"cached_tokens": plan.cached_tokens, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": plan.reasoning_tokens, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if tool_call:
            message["tool_calls"] = [tool_call]
        return Reply(body={
            "id": completion_id, "object": "chat.completion", "created": created, "model": plan.response_model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage, "system_fingerprint": "fp_fake", "service_tier": "default",
        }, output_tokens=plan.output_tokens)

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> tuple[None, str]:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": plan.response_model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
        data.update(extra)
        return (None, json.dumps(data))

    def events() -> Iterable[tuple[str | None, str]]:
        yield chunk({"role": "assistant", "content": "" if not tool_call else None})
        if tool_call:
            fn = tool_call["function"]
            yield chunk({"tool_calls": [{"index": 0, "id": tool_call["id"], "type": "function",
                                         "function": {"name": fn["name"], "arguments": ""}}]})
            args = fn["arguments"]
            for i in range(0, len(args), 8):
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i:i + 8]}}]})
        else:
            for i, word in enumerate(plan.words):
                yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, finish)
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            yield (None, json.dumps({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                     "model": plan.response_model, "choices": [], "usage": usage}))
        yield (None, "[DONE]")

    return Reply(events=events(), output_tokens=plan.output_tokens)


def _completions(fake: FakeProvider, req: Request) -> Reply:
    """Legacy text completions (``/v1/completions``)."""
    body = req.json
    prompt = body.get("prompt")
    if not isinstance(body.get("model"), str) or prompt is None:
        return _error_reply(400, "'model' and 'prompt' are required")
    text_in = prompt if isinstance(prompt, str) else "\n".join(map(str, prompt))
    plan = fake.plan(body["model"], text_in, count_tokens(text_in), body.get("max_tokens"))
    if plan.error is not None:
        return plan.error
    cid, created = _ident("cmpl-", plan.seed, 0), int(time.time())
    usage = {"prompt_tokens": plan.input_tokens, "completion_tokens": plan.output_tokens,
             "total_tokens": plan.input_tokens + plan.output_tokens}

    def doc(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"id": cid, "object": "text_completion", "created": created, "model": plan.response_model,
                "choices": choices, **extra}

    if not body.get("stream"):
        choice = {"index": 0, "text": " ".join(plan.words), "logprobs": None, "finish_reason": plan.finish_reason}
        return Reply(body=doc([choice], usage=usage), output_tokens=plan.output_tokens)

    def events() -> Iterable[tuple[str | None, str]]:
        for i, word in enumerate(plan.words):
            last = i == len(plan.words) - 1
            yield (None, json.dumps(doc([{"index": 0, "text": word if i == 0 else " " + word, "logprobs": None,
                                          "finish_reason": plan.finish_reason if last else None}])))
        if (body.get("stream_options") or {}).get("include_usage"):
            yield (None, json.dumps(doc([], usage=usage)))
        yield (None, "[DONE]")

    return Reply(events=events(), output_tokens=plan.output_tokens)


def _responses_input_text(body: Mapping[str, Any]) -> tuple[str, int, str | None]:
    """(prompt text, item count, role of the last item) of a Responses API request."""
    items = body.get("input")
    parts = [str(body.get("instructions") or "")]
    if isinstance(items, str):
        return "\n".join(parts + [items]), 1, "user"
    last = None
    for item in items or []:
        if isinstance(item, dict):
            last = item.get("type") or item.get("role")
            parts.append(_text_of(item.get("content")) or str(item.get("output") or ""))
    return "\n".join(parts), len(items or []), last


def _responses(fake: FakeProvider, req: Request) -> Reply:
    body = req.json
    if not isinstance(body.get("model"), str) or body.get("input") is None:
        return _error_reply(400, "'model' and 'input' are required")
    prompt, n_items, last = _responses_input_text(body)
    plan = fake.plan(body["model"], prompt, count_tokens(prompt) + 3 * n_items, body.get("max_output_tokens"))
    if plan.error is not None:
        return plan.error
    seed = plan.seed
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    output: list[dict[str, Any]] = []
    text = " ".join(plan.words)
    if tools and last != "function_call_output" and body.get("tool_choice") != "none":
        props = (tools[0].get("parameters") or {}).get("properties") or {}
        output.append({"type": "function_call", "id": _ident("fc_", seed, 1), "call_id": _ident("call_", seed, 1),
                       "name": tools[0].get("name", "tool"), "status": "completed",
                       "arguments": json.dumps({k: plan.words[i % len(plan.words)] for i, k in enumerate(props)})})
    else:
        output.append({"type": "message", "id": _ident("msg_", seed, 2), "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]})
    incomplete = plan.finish_reason == "length"
    usage = {"input_tokens": plan.input_tokens, "output_tokens": plan.output_tokens,
             "total_tokens": plan.input_tokens + plan.output_tokens,
             "input_tokens_details": {"cached_tokens": plan.cached_tokens},
             "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens}}
    response = {
        "id": _ident("resp_", seed, 0), "object": "response", "created_at": int(time.time()),
        "model": plan.response_model, "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "error": None, "instructions": body.get("instructions"), "metadata": {}, "output": output,
        "parallel_tool_calls": True, "temperature": body.get("temperature", 1.0), "top_p": body.get("top_p", 1.0),
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [], "usage": usage,
    }
    if not body.get("stream"):
        return Reply(body=response, output_tokens=plan.output_tokens)

    def events() -> Iterable[tuple[str | None, str]]:
        seq = 0

        def ev(kind: str, **data: Any) -> tuple[str, str]:
            nonlocal seq
            seq += 1
            return (kind, json.dumps({"type": kind, "sequence_number": seq, **data}))

        started = {**response, "status": "in_progress", "output": [], "usage": None}
        yield ev("response.created", response=started)
        item = output[0]
        if item["type"] == "message":
            yield ev("response.output_item.added", output_index=0, item={**item, "content": [], "status": "in_progress"})
            for i, word in enumerate(plan.words):
                yield ev("response.output_text.delta", item_id=item["id"], output_index=0, content_index=0,
                         delta=word if i == 0 else " " + word, logprobs=[])
            yield ev("response.output_text.done", item_id=item["id"], output_index=0, content_index=0, text=text, logprobs=[])
        else:
            yield ev("response.output_item.added", output_index=0, item={**item, "arguments": ""})
            yield ev("response.function_call_arguments.done", item_id=item["id"], output_index=0,
                     arguments=item["arguments"])
        yield ev("response.output_item.done", output_index=0, item=item)
        yield ev("response.incomplete" if incomplete else "response.completed", response=response)

    return Reply(events=events(), output_tokens=plan.output_tokens)


def _embeddings(fake: FakeProvider, req: Request) -> Reply:
    body = req.json
    inputs = body.get("input")
    if not isinstance(body.get("model"), str) or inputs is None:
        return _error_reply(400, "'model' and 'input' are required")
    if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
    tokens = sum(count_tokens(t) for t in texts)
    plan = fake.plan(body["model"], "\n".join(texts), tokens, 0)
    if plan.error is not None:
        return plan.error
    dims = body.get("dimensions") or 16
    if not isinstance(dims, int) or not 1 <= dims <= 4096:
        return _error_reply(400, "'dimensions' must be an integer in [1, 4096]")
    data = []
    for i, text in enumerate(texts):
        vec = embedding_vector(text, dims)
        value: Any = vec
        if body.get("encoding_format") == "base64":
            value = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return Reply(body={"object": "list", "data": data, "model": plan.response_model,
                       "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def embedding_vector(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    rng = random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))
    vec = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


_DEFAULT_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/v1/chat/completions"): _chat_completions,
    ("POST", "/v1/responses"): _responses,
    ("POST", "/v1/embeddings"): _embeddings,
    ("POST", "/v1/completions"): _completions,
}


# -- the server -------------------------------------------------------------------------------
class FakeProvider:
    """The fake provider: a threaded stdlib HTTP server plus its behaviour settings."""

    _routes: dict[tuple[str, str], Handler] = dict(_DEFAULT_ROUTES)

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        latency_s: float = 0.0,
        latency_per_token_s: float = 0.0,
        error_rate: float = 0.0,
        force_status: int | None = None,
        force_status_count: int | None = None,
        break_stream_after: int | None = None,
        usage_details: bool = True,
        incident: Incident | None = None,
        seed: int = 0,
    ):
        self.host = host
        self.port = port
        self._routes = dict(type(self)._routes)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._seen_prompts: OrderedDict[str, None] = OrderedDict()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.latency_s = latency_s
        self.latency_per_token_s = latency_per_token_s
        self.error_rate = error_rate
        self.force_status = force_status
        self.force_status_count = force_status_count
        self.break_stream_after = break_stream_after
        self.usage_details = usage_details
        self.incident = incident
        self.requests_served = 0
        self._validate()

    # -- routes -----------------------------------------------------------------------------
    @classmethod
    def register_route(cls, method: str, path: str, handler: Handler) -> None:
        """Add a route for every FakeProvider created afterwards (e.g. from a provider module)."""
        cls._routes[(method.upper(), path)] = handler

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    # -- settings ---------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.latency_s < 0 or self.latency_per_token_s < 0:
            raise ValueError("latency_s and latency_per_token_s must be >= 0")
        if not 0 <= self.error_rate <= 1:
            raise ValueError("error_rate must be within [0, 1]")
        if self.force_status is not None and not 400 <= self.force_status <= 599:
            raise ValueError("force_status must be an HTTP error status (400-599)")
        if self.break_stream_after is not None and self.break_stream_after < 0:
            raise ValueError("break_stream_after must be >= 0")

    _SETTINGS = ("latency_s", "latency_per_token_s", "error_rate", "force_status", "force_status_count",
                 "break_stream_after", "usage_details", "incident")

    def configure(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Change settings at runtime (what ``POST /_control`` does). Unknown keys are an error."""
        unknown = set(settings) - set(self._SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {list(self._SETTINGS)}")
        with self._lock:
            old = {k: getattr(self, k) for k in self._SETTINGS}
            try:
                for key, value in settings.items():
                    if key == "incident":
                        value = None if value is None else Incident.from_mapping(value)
                    elif key in ("latency_s", "latency_per_token_s", "error_rate"):
                        value = float(value)
                    elif key in ("force_status", "force_status_count", "break_stream_after"):
                        value = None if value is None else int(value)
                    elif key == "usage_details":
                        value = bool(value)
                    setattr(self, key, value)
                self._validate()
            except (TypeError, ValueError):
                for k, v in old.items():
                    setattr(self, k, v)
                raise
        return self.settings()

    def settings(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._SETTINGS}
        out["incident"] = self.incident.to_mapping() if self.incident else None
        out["requests_served"] = self.requests_served
        return out

    # -- shared answer logic ----------------------------------------------------------------
    def plan(self, model: str, prompt: str, input_tokens: int, max_output_tokens: Any = None) -> Plan:
        """Tokens, words, finish reason, cache and injected errors for one request."""
        seed = int.from_bytes(hashlib.sha256(f"{model}\x00{prompt}".encode()).digest()[:8], "big")
        incident = self.incident if self.incident and self.incident.applies_to(model) else None
        with self._lock:
            self.requests_served += 1
            error = None
            if self.force_status is not None and (self.force_status_count is None or self.force_status_count > 0):
                error = _error_reply(self.force_status)
                if self.force_status_count is not None:
                    self.force_status_count -= 1
                    if self.force_status_count == 0:
                        self.force_status = self.force_status_count = None
            else:
                rate = incident.error_rate if incident and incident.error_rate is not None else self.error_rate
                if rate > 0 and self._rng.random() < rate:
                    error = _error_reply(429 if self._rng.random() < 0.5 else 500)
            key = hashlib.sha256(prompt.encode()).hexdigest()
            seen = key in self._seen_prompts
            self._seen_prompts[key] = None
            self._seen_prompts.move_to_end(key)
            while len(self._seen_prompts) > _MAX_REMEMBERED_PROMPTS:
                self._seen_prompts.popitem(last=False)
        cached = 0
        if seen and input_tokens >= CACHE_MIN_TOKENS:
            cached = (input_tokens // CACHE_BLOCK_TOKENS) * CACHE_BLOCK_TOKENS
        output = 16 + seed % 48
        if incident:
            output = max(1, round(output * incident.output_factor))
        finish = "stop"
        if isinstance(max_output_tokens, int) and 0 < max_output_tokens < output:
            output, finish = max_output_tokens, "length"
        reasoning = output // 2 if model.startswith(("o1", "o3", "o4", "gpt-5")) else 0
        return Plan(
            model=model,
            response_model=_SNAPSHOTS.get(model, model),
            input_tokens=input_tokens,
            cached_tokens=cached,
            output_tokens=output,
            reasoning_tokens=reasoning,
            finish_reason=finish,
            words=fake_words(seed, max(1, output - reasoning)),
            error=error,
            seed=seed,
        )

    def latency_factor(self, model: str | None) -> float:
        inc = self.incident
        return inc.latency_factor if inc and model is not None and inc.applies_to(model) else 1.0

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give an OpenAI client as ``base_url``."""
        return f"{self.url}/v1"

    def start(self) -> FakeProvider:
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _make_handler(self))
        server.daemon_threads = False
        server.block_on_close = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-provider:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # wake keep-alive handler threads so server_close can join them
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run until SIGINT/SIGTERM (the ``python -m gensight.fakes`` entry)."""
        self.start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        print(f"fake provider listening on {self.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that hang up (closed streams, killed tests) are normal for an LLM provider
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _make_handler(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "gensight-fake-provider"
        timeout = 30  # idle keep-alive connections are closed after this

        def setup(self) -> None:
            super().setup()
            # headers and body go out in separate writes: without TCP_NODELAY, Nagle + the
            # client's delayed ACK add ~40 ms to every response
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with fake._lock:
                fake._connections.add(self.connection)

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:  # the client went away, or we dropped the connection on purpose
                pass
            finally:
                with fake._lock:
                    fake._connections.discard(self.connection)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send_json(200, {"status": "ok"})
            elif path == "/_control":
                self._send_json(200, fake.settings())
            else:
                self._dispatch("GET", path, None)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("content-length") or 0)
            if length > _MAX_BODY_BYTES:
                self.close_connection = True
                self._send_json(413, {"error": {"message": "request body too large", "type": "invalid_request_error"}})
                return
            raw = self.rfile.read(length) if length else b""
            try:
                payload = json.loads(raw) if raw else {}
                if not isinstance(payload, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as exc:
                self._send_json(400, {"error": {"message": f"invalid JSON body: {exc}", "type": "invalid_request_error"}})
                return
            if path == "/_control":
                try:
                    self._send_json(200, fake.configure(payload))
                except (TypeError, ValueError) as exc:
                    self._send_json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
                return
            self._dispatch("POST", path, payload)

        def _dispatch(self, method: str, path: str, payload: Any) -> None:
            handler = fake._routes.get((method, path))
            if handler is None:
                self._send_json(404, {"error": {"message": f"no route {method} {path}", "type": "not_found_error"}})
                return
            request = Request(method, path, dict(self.headers.items()), payload)
            try:
                reply = handler(fake, request)
            except Exception as exc:  # a route bug is a 500, never a dead server
                self._send_json(500, {"error": {"message": f"fake provider route failed: {exc!r}", "type": "server_error"}})
                return
            model = payload.get("model") if isinstance(payload, dict) else None
            factor = fake.latency_factor(model if isinstance(model, str) else None)
            if reply.events is None:
                delay = (fake.latency_s + fake.latency_per_token_s * reply.output_tokens) * factor
                if reply.status == 200 and delay > 0:
                    time.sleep(delay)
                self._send_json(reply.status, reply.body, reply.headers)
            else:
                self._send_sse(reply, factor)

        def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _send_sse(self, reply: Reply, factor: float) -> None:
            if fake.latency_s > 0:
                time.sleep(fake.latency_s * factor)
            self.send_response(reply.status)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            events = list(reply.events or ())
            per_event_s = 0.0
            if fake.latency_per_token_s > 0 and events:
                per_event_s = fake.latency_per_token_s * reply.output_tokens * factor / len(events)
            break_after = fake.break_stream_after
            for i, (name, data) in enumerate(events):
                if break_after is not None and i >= break_after:
                    # drop the connection mid-body: no terminating chunk, the client sees a broken stream
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
                chunk = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                if per_event_s > 0:
                    time.sleep(per_event_s)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return _Handler


# Other providers' routes live in their own modules and register themselves here.
from gensight.fakes import anthropic as _fake_anthropic  # noqa: E402

_fake_anthropic.register(FakeProvider)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gensight.fakes",
                                     description="OpenAI-compatible fake LLM provider (deterministic).")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--latency-per-token-s", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        fake = FakeProvider(args.host, args.port, latency_s=args.latency_s,
                            latency_per_token_s=args.latency_per_token_s, error_rate=args.error_rate, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    fake.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
