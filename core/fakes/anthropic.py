"""Anthropic Messages API routes for the fake provider (``POST /v1/messages``).

:data:`ROUTES` is registered on :class:`~gensight.fakes.server.FakeProvider` by the
:mod:`gensight.fakes` package, so ``anthropic.Anthropic(base_url=fake.url, api_key="x")`` talks to
the same server as the OpenAI client; this module depends only on the shared route protocol
(:mod:`gensight.fakes.protocol`), not on the OpenAI routes. Behaviour mirrors the vendor where the instrumentation
cares:

* JSON, or SSE with ``stream: true``: ``message_start`` (usage with input and cache counts),
  ``content_block_start`` / ``ping`` / ``content_block_delta`` (``text_delta``,
  ``input_json_delta``) / ``content_block_stop``, ``message_delta`` (``stop_reason``, cumulative
  ``output_tokens``), ``message_stop``.
* ``tools`` given and the last user turn is not a ``tool_result``: a short text block, then a
  ``tool_use`` block for the first tool (or the one ``tool_choice`` names), ``stop_reason=tool_use``.
* Prompt caching: the prefix up to the last block carrying ``cache_control`` (system, tools or
  messages) is a cache entry once it reaches 1024 tokens. The first request *writes* it
  (``cache_creation_input_tokens``), later ones *read* it (``cache_read_input_tokens``);
  ``input_tokens`` counts only the uncached rest — exactly the vendor's split.
* Errors in Anthropic's envelope (``{"type": "error", "error": {"type": ...}}``) for injected
  statuses (the fake's ``force_status`` / ``error_rate`` / incidents): 429 ``rate_limit_error``,
  500 ``api_error``, 529 ``overloaded_error``, ... A request header
  ``x-fake-stream-error-after: N`` makes a stream send an ``error`` event
  (``overloaded_error``) after N events, as the vendor does when it overloads mid-answer.

Every request's headers are remembered (bounded) in :func:`recent_requests` so tests can check
what the client sent (e.g. the trace context).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from gensight.fakes.protocol import Handler, Reply, Request, count_tokens

if TYPE_CHECKING:
    from gensight.fakes.server import FakeProvider

MESSAGES_PATH = "/v1/messages"
CACHE_MIN_TOKENS = 1024  # the vendor's minimum cacheable prefix (Sonnet/Opus)
STREAM_ERROR_HEADER = "x-fake-stream-error-after"
_MAX_REMEMBERED_REQUESTS = 64
_MAX_CACHE_ENTRIES = 1024

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class _State:
    """Per-fake-provider memory: cached prompt prefixes and the last requests' headers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cache: OrderedDict[str, None] = OrderedDict()
        self.requests: deque[Request] = deque(maxlen=_MAX_REMEMBERED_REQUESTS)


_states: weakref.WeakKeyDictionary[FakeProvider, _State] = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def _state(fake: FakeProvider) -> _State:
    with _states_lock:
        state = _states.get(fake)
        if state is None:
            state = _states[fake] = _State()
        return state


def recent_requests(fake: FakeProvider) -> list[Request]:
    """The last requests ``/v1/messages`` received on ``fake`` (oldest first, at most 64)."""
    state = _state(fake)
    with state.lock:
        return list(state.requests)


def error_reply(status: int, message: str | None = None) -> Reply:
    kind = _ERROR_TYPES.get(status, "api_error")
    headers = {"request-id": f"req_fake_{status}"}
    if status in (429, 529):
        headers["retry-after-ms"] = "10"
    return Reply(
        status=status,
        body={"type": "error", "error": {"type": kind, "message": message or f"fake provider: injected {status}"}},
        headers=headers,
    )


def _text(content: Any) -> str:
    """All text of a content value (str or a list of blocks), tool inputs and results included."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(b) for b in content)
    if isinstance(content, dict):
        kind = content.get("type")
        if kind == "text":
            return str(content.get("text") or "")
        if kind == "tool_use":
            return json.dumps(content.get("input"))
        if kind == "tool_result":
            return _text(content.get("content"))
        return ""
    return str(content)


def _segments(body: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The prompt in cache order (tools, system, messages) as (text, has cache_control) pieces."""
    out: list[tuple[str, bool]] = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            out.append((json.dumps(tool, sort_keys=True), "cache_control" in tool))
    system = body.get("system")
    if isinstance(system, str):
        out.append((system, False))
    elif isinstance(system, list):
        out.extend((_text(b), isinstance(b, dict) and "cache_control" in b) for b in system)
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        role = str(message.get("role"))
        if isinstance(content, list):
            out.extend((f"{role}:{_text(b)}", isinstance(b, dict) and "cache_control" in b) for b in content)
        else:
            out.append((f"{role}:{_text(content)}", False))
    return out


def _cache_split(fake: FakeProvider, segments: list[tuple[str, bool]], total_tokens: int) -> tuple[int, int]:
    """(cache read tokens, cache write tokens) for this prompt, updating the fake's cache."""
    last = max((i for i, (_, marked) in enumerate(segments) if marked), default=-1)
    if last < 0:
        return 0, 0
    prefix = "\n".join(text for text, _ in segments[: last + 1])
    prefix_tokens = min(count_tokens(prefix), total_tokens)
    if prefix_tokens < CACHE_MIN_TOKENS:
        return 0, 0
    key = hashlib.sha256(prefix.encode()).hexdigest()
    state = _state(fake)
    with state.lock:
        hit = key in state.cache
        state.cache[key] = None
        state.cache.move_to_end(key)
        while len(state.cache) > _MAX_CACHE_ENTRIES:
            state.cache.popitem(last=False)
    return (prefix_tokens, 0) if hit else (0, prefix_tokens)


def _wants_tool(body: Mapping[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    raw_choice = body.get("tool_choice")
    choice: dict[str, Any] = raw_choice if isinstance(raw_choice, dict) else {}
    if not tools or choice.get("type") == "none":
        return None
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    content = last.get("content")
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    if choice.get("type") == "tool":
        for tool in tools:
            if tool.get("name") == choice.get("name"):
                return tool
    return tools[0]


def _tool_input(tool: Mapping[str, Any], words: list[str], question: str) -> dict[str, Any]:
    props = (tool.get("input_schema") or {}).get("properties") or {}
    out: dict[str, Any] = {}
    for i, (name, schema) in enumerate(props.items()):
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind in ("integer", "number"):
            out[name] = 3
        elif kind == "boolean":
            out[name] = True
        else:
            out[name] = question[:80] if i == 0 and question else words[i % len(words)]
    return out


def messages_route(fake: FakeProvider, req: Request) -> Reply:
    """``POST /v1/messages``."""
    body = req.json
    state = _state(fake)
    with state.lock:
        state.requests.append(req)
    messages = body.get("messages")
    if not isinstance(body.get("model"), str) or not isinstance(messages, list) or not messages:
        return error_reply(400, "'model' (string) and 'messages' (non-empty list) are required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return error_reply(400, "'max_tokens' must be a positive integer")
    segments = _segments(body)
    prompt = "\n".join(text for text, _ in segments)
    total_input = count_tokens(prompt) + 3 * len(messages)
    plan = fake.plan(body["model"], prompt, total_input, body.get("max_tokens"))
    if plan.error is not None:
        return error_reply(plan.error.status)
    cache_read, cache_write = _cache_split(fake, segments, total_input)
    usage_in = {
        "input_tokens": total_input - cache_read - cache_write,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }
    last_content = messages[-1].get("content") if isinstance(messages[-1], dict) else None
    question = _text(last_content)
    tool = _wants_tool(body)
    text = " ".join(plan.words)
    blocks: list[dict[str, Any]] = []
    if tool is not None:
        blocks.append({"type": "text", "text": "Let me look that up."})
        blocks.append({
            "type": "tool_use",
            "id": "toolu_" + hashlib.sha256(f"{plan.seed}:tool".encode()).hexdigest()[:24],
            "name": tool["name"],
            "input": _tool_input(tool, plan.words, question),
        })
        stop_reason = "tool_use"
    else:
        blocks.append({"type": "text", "text": text})
        stop_reason = "max_tokens" if plan.finish_reason == "length" else "end_turn"
    output_tokens = plan.output_tokens
    message_id = "msg_" + hashlib.sha256(f"{plan.seed}:msg".encode()).hexdigest()[:24]
    headers = {"request-id": "req_" + message_id[4:]}
    if not body.get("stream"):
        return Reply(
            body={
                "id": message_id, "type": "message", "role": "assistant", "model": plan.response_model,
                "content": blocks, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {**usage_in, "output_tokens": output_tokens, "service_tier": "standard"},
            },
            headers=headers,
            output_tokens=output_tokens,
        )
    error_after = _int_header(req.headers, STREAM_ERROR_HEADER)
    events = _stream_events(message_id, plan.response_model, blocks, stop_reason, usage_in, output_tokens)
    if error_after is not None:
        events = _with_error(events, error_after)
    return Reply(events=events, headers=headers, output_tokens=output_tokens)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    for key, value in headers.items():
        if key.lower() == name:
            try:
                return max(0, int(value))
            except ValueError:
                return None
    return None


def _event(kind: str, **data: Any) -> tuple[str, str]:
    return kind, json.dumps({"type": kind, **data})


def _stream_events(
    message_id: str,
    model: str,
    blocks: list[dict[str, Any]],
    stop_reason: str,
    usage_in: Mapping[str, int],
    output_tokens: int,
) -> Iterable[tuple[str | None, str]]:
    yield _event("message_start", message={
        "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {**usage_in, "output_tokens": 1},
    })
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield _event("content_block_start", index=index, content_block={"type": "text", "text": ""})
            if index == 0:
                yield _event("ping")
            words = block["text"].split(" ")
            for i, word in enumerate(words):
                yield _event("content_block_delta", index=index,
                             delta={"type": "text_delta", "text": word if i == 0 else " " + word})
        else:
            yield _event("content_block_start", index=index,
                         content_block={"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}})
            args = json.dumps(block["input"])
            for i in range(0, len(args), 10):
                yield _event("content_block_delta", index=index,
                             delta={"type": "input_json_delta", "partial_json": args[i:i + 10]})
        yield _event("content_block_stop", index=index)
    yield _event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": None},
                 usage={"output_tokens": output_tokens})
    yield _event("message_stop")


def _with_error(events: Iterable[tuple[str | None, str]], after: int) -> Iterable[tuple[str | None, str]]:
    for i, event in enumerate(events):
        if i >= after:
            break
        yield event
    yield _event("error", error={"type": "overloaded_error", "message": "fake provider: overloaded mid-stream"})


ROUTES: dict[tuple[str, str], Handler] = {("POST", MESSAGES_PATH): messages_route}
