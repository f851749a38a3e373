"""Each instrumentor checks its own library, because the launcher does not.

``opentelemetry-instrument`` checks only a *distribution's* ``instruments`` extra and then calls
``instrument(skip_dep_check=True)``. Gensight is one distribution bundling several instrumentors
(OpenAI, Anthropic, Chroma, LangChain), so no extra can say "this one needs anthropic, that one
chromadb". Without this check an app without, say, ``chromadb`` would still run our
``_instrument`` for it. :func:`require_library` raises ``DependencyConflictError``, which the
launcher catches and logs as "skipping"; a direct ``instrument()`` never gets here with a
conflict because ``BaseInstrumentor`` checks first.

:func:`begin_instrument` and :func:`unwrap_all` hold the rest of what every Gensight
instrumentor's ``_instrument`` / ``_uninstrument`` does alike; the base class
:class:`~gensight.instrumentation.instrumentor.GensightInstrumentor` calls them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.instrumentation.dependencies import DependencyConflictError, get_dependency_conflicts
from opentelemetry.instrumentation.utils import unwrap

from gensight.instrumentation.lifecycle import Telemetry


def require_library(instrumentor: Any) -> None:
    """Raise ``DependencyConflictError`` when the instrumentor's library is absent or too old."""
    conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
    if conflict is not None:
        raise DependencyConflictError(conflict)


def begin_instrument(instrumentor: Any, kwargs: Mapping[str, Any], scope: str) -> Telemetry:
    """Start of an instrumentor's ``_instrument``: check its library (:func:`require_library`),
    then the :class:`Telemetry` it records through, from ``instrument(tracer_provider=...,
    meter_provider=..., pricing=..., capture=...)`` (each optional) under its own ``scope``."""
    require_library(instrumentor)
    return Telemetry(
        kwargs.get("tracer_provider"),
        kwargs.get("meter_provider"),
        pricing=kwargs.get("pricing"),
        capture=kwargs.get("capture"),
        scope=scope,
    )


def unwrap_all(wrapped: list[tuple[Any, str]]) -> None:
    """``_uninstrument``: undo every ``(owner, method)`` wrap an instrumentor recorded, then forget them."""
    for owner, name in wrapped:
        unwrap(owner, name)
    wrapped.clear()
