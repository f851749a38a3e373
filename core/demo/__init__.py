"""``gensight demo``: the processor, instrumented services and a live view, in one command.

``command`` (the CLI entry), ``runner`` (orchestration), ``scenario`` (traffic and the incident),
``service`` (one instrumented service process), ``parts`` (processor and provider handles),
``view`` (what the processor's metrics say) and ``render`` (the terminal)."""

from __future__ import annotations

from gensight._lazy import lazy_exports

__all__ = ["configure", "run"]

_EXPORTS = {
    "configure": "gensight.demo.command",
    "run": "gensight.demo.command",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
