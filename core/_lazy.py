"""Lazy package exports (PEP 562), shared by the packages' ``__init__`` modules (processor stages, ui, demo, instrumentation).

Why lazy: importing ``gensight.processor.export`` must not import gRPC, numpy or scikit-learn
until a name is used, and a stage's package must not create an import cycle with the stages it
names. Each ``__init__`` lists ``__all__`` and a name → module map, then::

    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: each name in ``exports`` is imported from
    its module on first use and then cached in the package's namespace."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the PEP 562 hook
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
