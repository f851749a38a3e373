"""Self-telemetry of cost enrichment: calls that carried tokens but that no price covers.

Why: an unknown model gets no cost (never a guessed one), so its spend is missing from every
cost metric; this count, per provider and model, tells the user which models need an entry in
their ``GENSIGHT_PRICING_FILE``. Bounded: model names come from spans, so after
``MAX_UNPRICED_SERIES`` distinct (provider, model) pairs the rest are counted in one overflow
point carrying ``otel.metric.overflow=true``, as the series registry does.
"""

from __future__ import annotations

import threading
from typing import Any

from gensight.processor.normalise.dialects import MAX_KEY_CHARS

UNPRICED_CALLS = "gensight.processor.unpriced_calls"
MAX_UNPRICED_SERIES = 200
_OVERFLOW = ("", "\0overflow")  # no real (provider, model) pair: a model name is never "\0..."


class UnpricedCalls:
    """Cumulative count of unpriced calls per (provider, model). Thread-safe."""

    def __init__(self, max_series: int = MAX_UNPRICED_SERIES):
        self._max_series = max_series
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def count(self, provider: str, model: str) -> None:
        key = (provider[:MAX_KEY_CHARS], model[:MAX_KEY_CHARS])
        with self._lock:
            counts = self._counts
            if key not in counts and len(counts) >= self._max_series:
                key = _OVERFLOW
            counts[key] = counts.get(key, 0) + 1

    def rows(self) -> list[tuple[str, str, tuple[tuple[str, Any], ...], float]]:
        """``(metric, unit, attributes, value)`` rows: a pipeline self-telemetry source."""
        with self._lock:
            items = sorted(self._counts.items())
        rows: list[tuple[str, str, tuple[tuple[str, Any], ...], float]] = []
        for (provider, model), n in items:
            if (provider, model) == _OVERFLOW:
                attrs: tuple[tuple[str, Any], ...] = (("otel.metric.overflow", True),)
            else:
                attrs = (("gen_ai.provider.name", provider), ("gen_ai.request.model", model))
            rows.append((UNPRICED_CALLS, "{call}", attrs, float(n)))
        return rows

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
