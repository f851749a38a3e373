"""UI: the built-in, read-only status page (``gensight serve --ui-endpoint HOST:PORT``).

``state`` keeps what the page shows, fed as one more sink of the pipeline's metric and alert-log
requests (so it shows exactly what was exported); ``charts`` draws SVG charts server-side with
matplotlib (no CDN, works offline); ``pages`` writes the HTML; ``server`` serves it over aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["StatusPage", "StatusState", "UIConfig"]

_EXPORTS = {
    "UIConfig": "gensight.processor.ui.config",
    "StatusState": "gensight.processor.ui.state",
    "StatusPage": "gensight.processor.ui.server",
}


def __getattr__(name: str) -> Any:
    """Import on first use (PEP 562): matplotlib and aiohttp load only when the page is on."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
