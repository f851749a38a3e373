"""OpenAI request side: span attributes from the call's arguments, and input messages as content.

The attributes are set when the span starts (samplers see them); messages are read only when
content capture is on. Pure functions of the SDK call's keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gensight.instrumentation import attributes as A


def _given(value: Any) -> bool:
    """True for a real argument value (not None and not the SDK's NOT_GIVEN / omit sentinels)."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


# -- request side ------------------------------------------------------------------------------
_CHAT_PARAMS = (
    ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", A.GEN_AI_REQUEST_TOP_P),
    ("frequency_penalty", A.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", A.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("seed", A.GEN_AI_REQUEST_SEED),
    ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("max_completion_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("max_output_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("service_tier", A.GEN_AI_OPENAI_REQUEST_SERVICE_TIER),
)


def request_attributes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for param, key in _CHAT_PARAMS:
        value = kwargs.get(param)
        if value is not None and _given(value) and isinstance(value, (int, float, str)):
            attrs[key] = value
    n = kwargs.get("n")
    if isinstance(n, int) and n != 1:
        attrs[A.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, (list, tuple)) and stop:
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]
    if kwargs.get("stream") is True:
        attrs[A.GEN_AI_REQUEST_STREAM] = True
    fmt = kwargs.get("response_format")
    fmt_type = fmt.get("type") if isinstance(fmt, Mapping) else None
    if fmt_type:
        attrs[A.GEN_AI_OUTPUT_TYPE] = "text" if fmt_type == "text" else "json"
    return attrs


def embedding_request_attributes(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    fmt = kwargs.get("encoding_format")
    if isinstance(fmt, str):
        attrs[A.GEN_AI_REQUEST_ENCODING_FORMATS] = [fmt]
    dims = kwargs.get("dimensions")
    if isinstance(dims, int) and not isinstance(dims, bool):
        attrs[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dims
    return attrs


def provider_for(host: str | None) -> str:
    """``gen_ai.provider.name``: Azure OpenAI by its host name, else OpenAI."""
    if host and host.endswith(".openai.azure.com"):
        return A.PROVIDER_AZURE_OPENAI
    return A.PROVIDER_OPENAI


# -- content (only when capture is on) ---------------------------------------------------------
def parts_of(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, (list, tuple)):
        for p in content:
            if isinstance(p, Mapping) and p.get("type") in ("text", "input_text", "output_text"):
                parts.append({"type": "text", "content": p.get("text")})
            elif isinstance(p, Mapping):
                parts.append({"type": str(p.get("type", "unknown"))})
    return parts


def chat_input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for m in messages or ():
        if not isinstance(m, Mapping):
            continue
        role = m.get("role")
        parts = parts_of(m.get("content"))
        for tc in m.get("tool_calls") or ():
            fn = tc.get("function") or {}
            parts.append({"type": "tool_call", "id": tc.get("id"), "name": fn.get("name"),
                          "arguments": fn.get("arguments")})
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": m.get("tool_call_id"), "response": m.get("content")}]
        out.append({"role": role, "parts": parts})
    return out


def responses_input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "parts": [{"type": "text", "content": value}]}]
    out = []
    for item in value or ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "function_call_output":
            out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": item.get("call_id"),
                                                   "response": item.get("output")}]})
        elif kind == "function_call":
            out.append({"role": "assistant", "parts": [{"type": "tool_call", "id": item.get("call_id"),
                                                        "name": item.get("name"), "arguments": item.get("arguments")}]})
        else:
            out.append({"role": item.get("role", "user"), "parts": parts_of(item.get("content"))})
    return out
