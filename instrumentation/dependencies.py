"""Each instrumentor checks its own library, because the launcher does not.

``opentelemetry-instrument`` checks only a *distribution's* ``instruments`` extra and then calls
``instrument(skip_dep_check=True)``. Gensight is one distribution bundling several instrumentors
(OpenAI, Anthropic, Chroma, LangChain), so no extra can say "this one needs anthropic, that one
chromadb". Without this check an app without, say, ``chromadb`` would still run our
``_instrument`` for it. :func:`require_library` raises ``DependencyConflictError``, which the
launcher catches and logs as "skipping"; a direct ``instrument()`` never gets here with a
conflict because ``BaseInstrumentor`` checks first.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.dependencies import DependencyConflictError, get_dependency_conflicts


def require_library(instrumentor: Any) -> None:
    """Raise ``DependencyConflictError`` when the instrumentor's library is absent or too old."""
    conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
    if conflict is not None:
        raise DependencyConflictError(conflict)
