"""OpenAI response side: what a finished call or a stream tells the invocation.

``on_*_response(inv, result)`` read a complete (non-streamed) result; the stream states
accumulate what chunks / events tell and hand it over once at the end (``on_end``), as
:mod:`gensight.instrumentation.stream` expects. Usage: ``prompt_tokens`` already include cached
tokens (semconv input), ``cached_tokens`` / ``cache_write_tokens`` / ``reasoning_tokens`` are
passed as their own counts. Message content is read only when capture is on.
"""

from __future__ import annotations

from typing import Any

from gensight.instrumentation import attributes as A
from gensight.instrumentation._openai_request import parts_of
from gensight.instrumentation._values import non_negative_int as _int
from gensight.instrumentation._values import set_tool_calls
from gensight.instrumentation.lifecycle import Invocation

# the usage object's field names: (input, output, input details, output details)
_CHAT_USAGE = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
_RESPONSES_USAGE = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def apply_usage(inv: Invocation, usage: Any, names: tuple[str, str, str, str] = _CHAT_USAGE) -> None:
    """Token counts of a chat / completions (default) or Responses API ``usage`` object."""
    if usage is None:
        return
    input_name, output_name, input_details_name, output_details_name = names
    in_details = getattr(usage, input_details_name, None)
    out_details = getattr(usage, output_details_name, None)
    inv.set_usage(
        input_tokens=_int(getattr(usage, input_name, None)),
        output_tokens=_int(getattr(usage, output_name, None)),
        cache_read_tokens=_int(getattr(in_details, "cached_tokens", None)) if in_details else None,
        cache_write_tokens=_int(getattr(in_details, "cache_write_tokens", None)) if in_details else None,
        reasoning_tokens=_int(getattr(out_details, "reasoning_tokens", None)) if out_details else None,
    )


def on_chat_response(inv: Invocation, result: Any) -> None:
    choices = getattr(result, "choices", None)
    if choices is None:  # e.g. a with_raw_response wrapper: nothing we can read cheaply
        return
    finish_reasons = []
    calls: list[tuple[str | None, str | None]] = []
    for choice in choices:
        finish_reasons.append(choice.finish_reason or "")
        for tc in getattr(choice.message, "tool_calls", None) or ():
            calls.append((getattr(getattr(tc, "function", None), "name", None), tc.id))
    inv.set_response(model=result.model, id=result.id, finish_reasons=finish_reasons)
    apply_usage(inv, getattr(result, "usage", None))
    set_tool_calls(inv, calls)
    inv.set_attribute(A.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT, getattr(result, "system_fingerprint", None))
    inv.set_attribute(A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, getattr(result, "service_tier", None))
    if inv.capture_content.enabled:
        out = []
        for choice in choices:
            msg = choice.message
            parts = parts_of(msg.content)
            for tc in getattr(msg, "tool_calls", None) or ():
                fn = getattr(tc, "function", None)
                parts.append({"type": "tool_call", "id": tc.id, "name": getattr(fn, "name", None),
                              "arguments": getattr(fn, "arguments", None)})
            out.append({"role": msg.role or "assistant", "parts": parts, "finish_reason": choice.finish_reason})
        inv.record_content(output_messages=out)


def on_completion_response(inv: Invocation, result: Any) -> None:
    choices = getattr(result, "choices", None)
    if choices is None:
        return
    inv.set_response(model=result.model, id=result.id, finish_reasons=[c.finish_reason or "" for c in choices])
    apply_usage(inv, getattr(result, "usage", None))
    if inv.capture_content.enabled:
        inv.record_content(output_messages=[
            {"role": "assistant", "parts": [{"type": "text", "content": c.text}], "finish_reason": c.finish_reason}
            for c in choices
        ])


def _responses_finish_reason(response: Any) -> str:
    status = getattr(response, "status", None)
    if status == "incomplete":
        details = getattr(response, "incomplete_details", None)
        return getattr(details, "reason", None) or "incomplete"
    if status == "failed":
        return "error"
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", None) == "function_call":
            return "tool_calls"
    return "stop"


def on_responses_response(inv: Invocation, response: Any) -> None:
    if getattr(response, "output", None) is None:
        return
    inv.set_response(model=response.model, id=response.id, finish_reasons=[_responses_finish_reason(response)])
    apply_usage(inv, getattr(response, "usage", None), _RESPONSES_USAGE)
    calls: list[tuple[str | None, str | None]] = []
    parts: list[dict[str, Any]] = []
    for item in response.output:
        kind = getattr(item, "type", None)
        if kind == "function_call":
            calls.append((item.name, item.call_id))
            parts.append({"type": "tool_call", "id": item.call_id, "name": item.name, "arguments": item.arguments})
        elif kind == "message" and inv.capture_content.enabled:
            for c in item.content or ():
                if getattr(c, "type", None) == "output_text":
                    parts.append({"type": "text", "content": c.text})
    set_tool_calls(inv, calls)
    inv.set_attribute(A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, getattr(response, "service_tier", None))
    if inv.capture_content.enabled:
        inv.record_content(output_messages=[{"role": "assistant", "parts": parts,
                                             "finish_reason": _responses_finish_reason(response)}])


def on_embeddings_response(inv: Invocation, result: Any) -> None:
    usage = getattr(result, "usage", None)
    inv.set_response(model=getattr(result, "model", None))
    if usage is not None:
        inv.set_usage(input_tokens=_int(getattr(usage, "prompt_tokens", None)))
    data = getattr(result, "data", None)
    if data:
        emb = getattr(data[0], "embedding", None)
        if isinstance(emb, list):
            inv.set_attribute(A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, len(emb))


# -- streams ----------------------------------------------------------------------------------
class _ChoicesStreamState:
    """What the choice-based streams (chat, legacy completions) accumulate alike: the response
    id/model from the first chunk, usage from the chunk that carries it, per choice index the
    finish reason and (capture on) the text. Subclasses read the rest of each choice."""

    __slots__ = ("finish_reasons", "text", "capture")

    def __init__(self, capture: bool):
        self.finish_reasons: dict[int, str] = {}
        self.text: dict[int, list[str]] = {}
        self.capture = capture

    def on_chunk(self, inv: Invocation, chunk: Any) -> None:
        if inv.response_id is None:
            inv.set_response(model=getattr(chunk, "model", None), id=getattr(chunk, "id", None))
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            apply_usage(inv, usage)
        for choice in getattr(chunk, "choices", None) or ():
            if choice.finish_reason:
                self.finish_reasons[choice.index] = choice.finish_reason
            self._on_choice(choice)

    def _on_choice(self, choice: Any) -> None:
        raise NotImplementedError

    def _add_text(self, index: int, piece: str | None) -> None:
        if self.capture and piece:
            self.text.setdefault(index, []).append(piece)

    def _set_finish_reasons(self, inv: Invocation) -> None:
        if self.finish_reasons:
            inv.set_response(finish_reasons=[self.finish_reasons[k] for k in sorted(self.finish_reasons)])


class ChatStreamState(_ChoicesStreamState):
    """Accumulates a chat-completions stream: also the tool calls, whose id and name come in the
    first delta of each call and whose arguments arrive in pieces."""

    __slots__ = ("tool_calls",)

    def __init__(self, capture: bool):
        super().__init__(capture)
        self.tool_calls: dict[tuple[int, int], list[Any]] = {}  # (choice, index) -> [id, name, args]

    def _on_choice(self, choice: Any) -> None:
        delta = choice.delta
        if delta is None:
            return
        idx = choice.index
        for tc in delta.tool_calls or ():
            slot = self.tool_calls.get((idx, tc.index))
            if slot is None:
                slot = self.tool_calls[(idx, tc.index)] = [None, None, []]
            if tc.id:
                slot[0] = tc.id
            fn = tc.function
            if fn is not None:
                if fn.name:
                    slot[1] = fn.name
                if self.capture and fn.arguments:
                    slot[2].append(fn.arguments)
        self._add_text(idx, delta.content)

    def on_end(self, inv: Invocation) -> None:
        self._set_finish_reasons(inv)
        set_tool_calls(inv, [(name, call_id) for call_id, name, _ in (self.tool_calls[k] for k in sorted(self.tool_calls))])
        if self.capture:
            choices = sorted(set(self.text) | set(self.finish_reasons) | {k[0] for k in self.tool_calls})
            out = []
            for idx in choices:
                parts: list[dict[str, Any]] = []
                if idx in self.text:
                    parts.append({"type": "text", "content": "".join(self.text[idx])})
                for (c, _), (cid, name, args) in sorted(self.tool_calls.items()):
                    if c == idx:
                        parts.append({"type": "tool_call", "id": cid, "name": name, "arguments": "".join(args)})
                out.append({"role": "assistant", "parts": parts, "finish_reason": self.finish_reasons.get(idx)})
            inv.record_content(output_messages=out)


class CompletionStreamState(_ChoicesStreamState):
    """Accumulates a legacy completions stream (text only, no tool calls)."""

    __slots__ = ()

    def _on_choice(self, choice: Any) -> None:
        self._add_text(choice.index, choice.text)

    def on_end(self, inv: Invocation) -> None:
        self._set_finish_reasons(inv)
        if self.capture:
            inv.record_content(output_messages=[
                {"role": "assistant", "parts": [{"type": "text", "content": "".join(self.text.get(i, []))}],
                 "finish_reason": self.finish_reasons.get(i)}
                for i in sorted(set(self.text) | set(self.finish_reasons))
            ])


_RESPONSE_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def on_responses_event(inv: Invocation, event: Any) -> None:
    kind = getattr(event, "type", None)
    if kind in _RESPONSE_FINAL_EVENTS:
        on_responses_response(inv, event.response)
    elif kind == "response.created" and inv.response_id is None:
        response = event.response
        inv.set_response(model=getattr(response, "model", None), id=getattr(response, "id", None))

