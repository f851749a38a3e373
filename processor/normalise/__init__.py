"""Normalise: spans of any GenAI dialect become ``CallRecord`` s.

``Normaliser`` reads either the request bytes (the optional C scanner ``_spanscan``) or the parsed
message (the pure-Python fallback); ``dialects`` lists every attribute name it reads, ``values``
decodes attribute values the same way for both readers."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["NormaliseConfig", "NormaliseResult", "Normaliser", "normalise_records"]

_EXPORTS = {
    "NormaliseConfig": "gensight.processor.normalise.normaliser",
    "NormaliseResult": "gensight.processor.normalise.normaliser",
    "Normaliser": "gensight.processor.normalise.normaliser",
    "normalise_records": "gensight.processor.normalise.normaliser",
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
