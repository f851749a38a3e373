"""How every Gensight instrumentor sets up and tears down: one base class, one path.

``instrument(**kwargs)`` runs :meth:`GensightInstrumentor._instrument`, which checks the library
and builds the :class:`~gensight.instrumentation.lifecycle.Telemetry` (both in
:func:`~gensight.instrumentation.dependencies.begin_instrument`), then hands it to the subclass's
:meth:`~GensightInstrumentor._wrap_methods`; that calls :meth:`~GensightInstrumentor._wrap` for each
library method, which wraps it and remembers it. ``uninstrument()`` unwraps exactly what was
wrapped (:func:`~gensight.instrumentation.dependencies.unwrap_all`), then runs
:meth:`~GensightInstrumentor._restore` for anything else a subclass patched.

A subclass states its scope and library requirement, and what to wrap::

    class ChromaInstrumentor(GensightInstrumentor):
        scope = "gensight.instrumentation.chromadb"
        dependencies = ("chromadb >= 0.5",)

        def _wrap_methods(self, telemetry, kwargs):
            self._wrap("chromadb.api.models.Collection", "Collection", "query", wrapper)

``BaseInstrumentor`` is a per-class singleton whose ``__init__`` runs again on every
``Instrumentor()`` call, so what was wrapped is kept across those calls: a fresh handle can
still uninstrument.
"""

from __future__ import annotations

import importlib
import logging
from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from wrapt import wrap_function_wrapper

from gensight.instrumentation.dependencies import begin_instrument, unwrap_all
from gensight.instrumentation.lifecycle import Telemetry

logger = logging.getLogger(__name__)


class GensightInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base of the OpenAI, Anthropic, Chroma and LangChain instrumentors (see the module docstring).

    ``instrument(tracer_provider=..., meter_provider=..., pricing=..., capture=...)``; every
    keyword is optional (global providers, bundled pricing, content capture from
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).
    """

    scope: ClassVar[str]
    """The instrumentation scope name of this instrumentor's tracer and meter."""

    dependencies: ClassVar[tuple[str, ...]]
    """The library requirement(s), as ``instrumentation_dependencies()`` returns them."""

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(self, "_wrapped"):
            self._wrapped: list[tuple[Any, str]] = []

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.dependencies

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = begin_instrument(self, kwargs, self.scope)  # checks the library first (see .dependencies)
        self._wrap_methods(telemetry, kwargs)

    @abstractmethod
    def _wrap_methods(self, telemetry: Telemetry, kwargs: Mapping[str, Any]) -> None:
        """Wrap the library's methods (through :meth:`_wrap`), recording into ``telemetry``."""

    def _wrap(self, module_name: str, owner: str | None, method: str, wrapper: Callable[..., Any]) -> bool:
        """Wrap ``module_name.owner.method`` (``owner`` a class name, dotted for nested owners,
        or None for a module-level function) and remember it for :meth:`_uninstrument`. False,
        logged at debug level, when this version of the library does not have it."""
        try:
            target: Any = importlib.import_module(module_name)
            for part in owner.split(".") if owner else ():
                target = getattr(target, part)
            if not hasattr(target, method):
                raise AttributeError(method)
            wrap_function_wrapper(target, method, wrapper)
        except Exception:  # an older or newer library without this module, class or method
            logger.debug("gensight: %s.%s.%s not found; not instrumented", module_name, owner, method, exc_info=True)
            return False
        self._wrapped.append((target, method))
        return True

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap_all(self._wrapped)
        self._restore()

    def _restore(self) -> None:
        """Undo what :meth:`_wrap_methods` changed besides wrapped methods (nothing by default)."""
