"""UI: the built-in, read-only status page (``gensight serve --ui-endpoint HOST:PORT``).

``state`` keeps what the page shows, fed as one more sink of the pipeline's metric and alert-log
requests (so it shows exactly what was exported); ``charts`` draws SVG charts server-side with
matplotlib (no CDN, works offline); ``pages`` writes the HTML; ``server`` serves it over aiohttp.
"""

from __future__ import annotations

from gensight._lazy import lazy_exports

__all__ = ["StatusPage", "StatusState", "UIConfig"]

_EXPORTS = {
    "UIConfig": "gensight.processor.ui.config",
    "StatusState": "gensight.processor.ui.state",
    "StatusPage": "gensight.processor.ui.server",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
