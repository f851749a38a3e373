"""Anthropic Messages API shapes -> invocation calls: request attributes, content blocks as
semconv message parts, a complete ``Message``, and a stream of raw events.

Token accounting: Anthropic's ``usage.input_tokens`` *excludes* prompt-cache tokens, while the
GenAI semconv ``gen_ai.usage.input_tokens`` *includes* them. We report
``input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` and pass the
cache read / write counts to the pricing table separately, so each is priced at its own rate.

Objects and dicts are read alike (:func:`~gensight.instrumentation._values.field_of`): a
``with_raw_response`` body is a dict, an SDK result a pydantic model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gensight.instrumentation import attributes as A
from gensight.instrumentation._values import field_of as _get
from gensight.instrumentation._values import non_negative_int as _int
from gensight.instrumentation._values import set_tool_calls
from gensight.instrumentation.lifecycle import Invocation

logger = logging.getLogger(__name__)

_MAX_CAPTURED_CHARS = 64 * 1024  # per streamed block: content capture is bounded even for huge answers
_TOOL_USE_BLOCKS = ("tool_use", "server_tool_use")  # content block types that are tool calls


# -- request ---------------------------------------------------------------------------------------
def provider_name(client: Any) -> str:
    """``gen_ai.provider.name``: what a Bedrock / Vertex client says it is, else ``anthropic``."""
    name = getattr(client, "_gen_ai_provider_name", None)
    return name if isinstance(name, str) and name else A.PROVIDER_ANTHROPIC


def request_attributes(kwargs: Mapping[str, Any], streaming: bool) -> dict[str, Any]:
    """Span attributes (set at start) from the ``messages.create`` keyword arguments."""
    attrs: dict[str, Any] = {}
    for key, attr in (
        ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
        ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", A.GEN_AI_REQUEST_TOP_P),
        ("top_k", A.GEN_AI_REQUEST_TOP_K),
    ):
        value = kwargs.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    stop = kwargs.get("stop_sequences")
    if isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    if streaming:
        attrs[A.GEN_AI_REQUEST_STREAM] = True
    return attrs


def _block_part(block: Any) -> dict[str, Any]:
    """One Anthropic content block as a semconv message part."""
    if isinstance(block, str):
        return {"type": "text", "content": block}
    kind = _get(block, "type")
    if kind == "text":
        return {"type": "text", "content": _get(block, "text")}
    if kind in _TOOL_USE_BLOCKS:
        return {"type": "tool_call", "id": _get(block, "id"), "name": _get(block, "name"), "arguments": _get(block, "input")}
    if kind == "tool_result":
        content = _get(block, "content")
        if isinstance(content, list):
            content = [_block_part(b) for b in content]
        return {"type": "tool_call_response", "id": _get(block, "tool_use_id"), "response": content}
    if kind == "thinking":
        return {"type": "reasoning", "content": _get(block, "thinking")}
    return {"type": str(kind)}


def input_messages(messages: Any) -> list[dict[str, Any]] | None:
    if not isinstance(messages, (list, tuple)):
        return None
    out = []
    for message in messages:
        content = _get(message, "content")
        parts = [_block_part(content)] if isinstance(content, str) else [_block_part(b) for b in content or ()]
        out.append({"role": _get(message, "role"), "parts": parts})
    return out


def system_instructions(system: Any) -> list[dict[str, Any]] | None:
    if isinstance(system, str):
        return [{"type": "text", "content": system}]
    if isinstance(system, (list, tuple)):
        return [_block_part(b) for b in system]
    return None


# -- response --------------------------------------------------------------------------------------
def apply_usage(inv: Invocation, usage: Any) -> None:
    """Anthropic usage -> semconv usage: input tokens INCLUDE cache reads and writes."""
    if usage is None:
        return
    plain = _int(_get(usage, "input_tokens"))
    read = _int(_get(usage, "cache_read_input_tokens"))
    write = _int(_get(usage, "cache_creation_input_tokens"))
    output = _int(_get(usage, "output_tokens"))
    details = _get(usage, "output_tokens_details")
    reasoning = _int(_get(details, "thinking_tokens")) if details is not None else None
    inv.set_usage(
        input_tokens=None if plain is None else plain + (read or 0) + (write or 0),
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )


def record_message(inv: Invocation, message: Any) -> None:
    """A complete ``Message`` (non-streamed response)."""
    if message is None:
        return
    try:
        stop_reason = _get(message, "stop_reason")
        model = _get(message, "model")
        msg_id = _get(message, "id")
        inv.set_response(
            model=model if isinstance(model, str) else None,
            id=msg_id if isinstance(msg_id, str) else None,
            finish_reasons=[stop_reason] if isinstance(stop_reason, str) else None,
        )
        apply_usage(inv, _get(message, "usage"))
        content = _get(message, "content") or ()
        set_tool_calls(inv, [(_get(b, "name"), _get(b, "id")) for b in content if _get(b, "type") in _TOOL_USE_BLOCKS])
        if inv.capture_content.enabled:
            inv.record_content(
                output_messages=[
                    {"role": "assistant", "parts": [_block_part(b) for b in content], "finish_reason": stop_reason}
                ]
            )
    except Exception:
        logger.debug("gensight: could not read the anthropic response", exc_info=True)


class StreamState:
    """Accumulates what a stream of raw Messages events tells us; hands it over once at the end."""

    __slots__ = ("capture", "model", "id", "stop_reason", "usage", "blocks")

    def __init__(self, capture: bool):
        self.capture = capture
        self.model: str | None = None
        self.id: str | None = None
        self.stop_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}

    def _merge_usage(self, usage: Any) -> None:
        if usage is None:
            return
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = _int(_get(usage, key))
            if value is not None:  # message_delta repeats counts cumulatively; null = unchanged
                self.usage[key] = value
        details = _get(usage, "output_tokens_details")
        if details is not None:
            self.usage["output_tokens_details"] = {"thinking_tokens": _get(details, "thinking_tokens")}

    def on_chunk(self, inv: Invocation, event: Any) -> None:
        kind = _get(event, "type")
        if kind == "message_start":
            message = _get(event, "message")
            self.model = _get(message, "model")
            self.id = _get(message, "id")
            self._merge_usage(_get(message, "usage"))
        elif kind == "content_block_start":
            block = _get(event, "content_block")
            index = _get(event, "index")
            if not isinstance(index, int):
                return
            entry: dict[str, Any] = {"type": _get(block, "type"), "id": _get(block, "id"), "name": _get(block, "name")}
            if self.capture:
                entry["text"] = [_get(block, "text") or ""] if entry["type"] == "text" else []
                entry["json"] = []
                entry["size"] = 0
            self.blocks[index] = entry
        elif kind == "content_block_delta" and self.capture:
            found = self.blocks.get(_get(event, "index"))
            delta = _get(event, "delta")
            if found is None or delta is None:
                return
            entry = found
            piece = _get(delta, "text") or _get(delta, "thinking") or _get(delta, "partial_json")
            if not isinstance(piece, str) or entry["size"] >= _MAX_CAPTURED_CHARS:
                return
            piece = piece[: _MAX_CAPTURED_CHARS - entry["size"]]
            entry["size"] += len(piece)
            (entry["json"] if _get(delta, "type") == "input_json_delta" else entry["text"]).append(piece)
        elif kind == "message_delta":
            delta = _get(event, "delta")
            stop = _get(delta, "stop_reason") if delta is not None else None
            if isinstance(stop, str):
                self.stop_reason = stop
            self._merge_usage(_get(event, "usage"))

    def on_end(self, inv: Invocation) -> None:
        inv.set_response(
            model=self.model if isinstance(self.model, str) else None,
            id=self.id if isinstance(self.id, str) else None,
            finish_reasons=[self.stop_reason] if self.stop_reason else None,
        )
        if self.usage:
            apply_usage(inv, self.usage)
        ordered = [self.blocks[i] for i in sorted(self.blocks)]
        set_tool_calls(inv, [(b["name"], b["id"]) for b in ordered if b["type"] in _TOOL_USE_BLOCKS])
        if self.capture:
            parts = []
            for b in ordered:
                if b["type"] in _TOOL_USE_BLOCKS:
                    parts.append({"type": "tool_call", "id": b["id"], "name": b["name"], "arguments": "".join(b["json"])})
                elif b["type"] == "thinking":
                    parts.append({"type": "reasoning", "content": "".join(b["text"])})
                elif b["type"] == "text":
                    parts.append({"type": "text", "content": "".join(b["text"])})
                else:
                    parts.append({"type": str(b["type"])})
            inv.record_content(output_messages=[{"role": "assistant", "parts": parts, "finish_reason": self.stop_reason}])

