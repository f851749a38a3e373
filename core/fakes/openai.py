"""OpenAI API routes for the fake provider.

``POST /v1/chat/completions`` (JSON or SSE with ``stream``; usage chunk when
``stream_options.include_usage``; a tool call when ``tools`` are given and the last message is
not a tool result), ``POST /v1/responses`` (JSON or SSE events), ``POST /v1/embeddings`` (float
or base64 vectors), ``POST /v1/completions`` (legacy text completions, JSON or SSE). Errors use
OpenAI's envelope (:func:`gensight.fakes.protocol.error_reply`).

:data:`ROUTES` is registered on :class:`~gensight.fakes.server.FakeProvider` by the
:mod:`gensight.fakes` package; this module depends only on the shared route protocol.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import struct
import time
from collections.abc import Iterable, Mapping
from typing import Any

from gensight.fakes.protocol import Handler, Reply, Request, count_tokens, error_reply, ident

# FakeProvider and Incident also stay importable from here, where they lived before the split
from gensight.fakes.server import FakeProvider, Incident  # noqa: F401


def _text_of(content: Any) -> str:
    """Concatenated text of an OpenAI message content (str, or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text_of(p.get("text") or p.get("content")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _chat_completions(fake: FakeProvider, req: Request) -> Reply:
    body = req.json
    messages = body.get("messages")
    if not isinstance(body.get("model"), str) or not isinstance(messages, list):
        return error_reply(400, "'model' (string) and 'messages' (list) are required")
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
        tool_call = {"id": ident("call_", plan.seed, 1), "type": "function",
                     "function": {"name": fn.get("name", "tool"), "arguments": args}}
    finish = "tool_calls" if tool_call else plan.finish_reason
    text = None if tool_call else " ".join(plan.words)
    completion_id = ident("chatcmpl-", plan.seed, 0)
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
        return error_reply(400, "'model' and 'prompt' are required")
    text_in = prompt if isinstance(prompt, str) else "\n".join(map(str, prompt))
    plan = fake.plan(body["model"], text_in, count_tokens(text_in), body.get("max_tokens"))
    if plan.error is not None:
        return plan.error
    cid, created = ident("cmpl-", plan.seed, 0), int(time.time())
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
        return error_reply(400, "'model' and 'input' are required")
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
        output.append({"type": "function_call", "id": ident("fc_", seed, 1), "call_id": ident("call_", seed, 1),
                       "name": tools[0].get("name", "tool"), "status": "completed",
                       "arguments": json.dumps({k: plan.words[i % len(plan.words)] for i, k in enumerate(props)})})
    else:
        output.append({"type": "message", "id": ident("msg_", seed, 2), "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]})
    incomplete = plan.finish_reason == "length"
    usage = {"input_tokens": plan.input_tokens, "output_tokens": plan.output_tokens,
             "total_tokens": plan.input_tokens + plan.output_tokens,
             "input_tokens_details": {"cached_tokens": plan.cached_tokens},
             "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens}}
    response = {
        "id": ident("resp_", seed, 0), "object": "response", "created_at": int(time.time()),
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
        return error_reply(400, "'model' and 'input' are required")
    if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
    tokens = sum(count_tokens(t) for t in texts)
    plan = fake.plan(body["model"], "\n".join(texts), tokens, 0)
    if plan.error is not None:
        return plan.error
    dims = body.get("dimensions") or 16
    if not isinstance(dims, int) or not 1 <= dims <= 4096:
        return error_reply(400, "'dimensions' must be an integer in [1, 4096]")
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


ROUTES: dict[tuple[str, str], Handler] = {  # (method, path) -> handler
    ("POST", "/v1/chat/completions"): _chat_completions,
    ("POST", "/v1/responses"): _responses,
    ("POST", "/v1/embeddings"): _embeddings,
    ("POST", "/v1/completions"): _completions,
}
