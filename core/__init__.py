"""Gensight: OpenTelemetry-native observability for LLM applications.

The top-level package holds what both halves share (pricing, privacy helpers, the CLI);
``gensight.instrumentation`` runs inside the user's app and ``gensight.processor`` is the
OTLP receiver service.
"""

from gensight._version import __version__

__all__ = ["__version__"]
