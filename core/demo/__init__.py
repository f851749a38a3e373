"""``gensight demo``: the processor, instrumented services and a live view, in one command.

``command`` (the CLI entry), ``runner`` (orchestration), ``scenario`` (traffic and the incident),
``service`` (one instrumented service process), ``parts`` (processor and provider handles),
``view`` (what the processor's metrics say) and ``render`` (the terminal)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["configure", "run"]

_EXPORTS = {
    "configure": "gensight.demo.command",
    "run": "gensight.demo.command",
}


def __getattr__(name: str) -> Any:
    """Import on first use (PEP 562): a stage's package stays cheap to import and free of cycles."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
