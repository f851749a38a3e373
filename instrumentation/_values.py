"""Small value readers the provider instrumentors share, so each reads SDK values the same way.

SDK response objects are pydantic models, dicts (raw JSON bodies) or something unexpected: these
helpers never raise and turn anything unusable into ``None`` (the attribute is then not set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gensight.instrumentation import attributes as A

if TYPE_CHECKING:
    from gensight.instrumentation.lifecycle import Invocation


def non_negative_int(value: Any) -> int | None:
    """A token count: an ``int`` (not a ``bool``) >= 0, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def field_of(obj: Any, name: str) -> Any:
    """``obj[name]`` of a mapping, ``obj.name`` of anything else; None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def set_tool_calls(inv: Invocation, calls: Sequence[tuple[str | None, str | None]]) -> None:
    """Record the tool calls the model asked for, as ``(name, id)`` pairs in the model's order.

    ``gensight.response.tool_call.names`` and ``.ids`` are kept in step: the same length, with
    ``""`` for a missing name or id, so the i-th name belongs to the i-th id. Nothing is set
    when there are no calls.
    """
    if not calls:  # the common case: return before building anything
        return
    inv.set_attribute(A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES, [name or "" for name, _ in calls])
    inv.set_attribute(A.GENSIGHT_RESPONSE_TOOL_CALL_IDS, [call_id or "" for _, call_id in calls])


def server_of(client: Any) -> tuple[str | None, int | None]:
    """``server.address`` / ``server.port`` from an SDK client's ``base_url`` (an ``httpx.URL``:
    no string parsing); the scheme's default port when the URL has none. (None, None) when the
    client has no readable ``base_url``."""
    try:
        url = client.base_url
        port = url.port or (443 if url.scheme == "https" else 80 if url.scheme == "http" else None)
        return url.host or None, port
    except Exception:
        return None, None
