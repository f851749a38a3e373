"""The pricing table both halves use: override file, then bundled corrections, then genai-prices.

``PricingTable.quote(provider, model, tier)`` resolves a model once, through the layers in that
order, into a :class:`~gensight.pricing.rates.Quote`, and keeps it in a bounded LRU cache
(``MAX_QUOTES``), so hostile or endlessly varied model names cannot grow memory. An unknown
model gets *no* cost (``None``), never a guessed one — a wrong cost on a dashboard is worse than
a missing one — and one warning per model.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from gensight.pricing.overrides import ModelPrice, OverrideTable, PricingError, valid_count
from gensight.pricing.rates import Quote

logger = logging.getLogger("gensight.pricing")

PRICING_FILE_ENV = "GENSIGHT_PRICING_FILE"
MAX_QUOTES = 4096  # (provider, model, tier) resolutions kept; model names can come from hostile spans
MAX_NAME_CHARS = 256  # longer provider/model/tier names are not priced (nor cached)
MAX_WARNED_MODELS = 1000  # bound the "already warned" set for the same reason
BUNDLED_CORRECTIONS = "bundled correction"
# where a span reports the service tier it was served at: response first (what was billed)
SERVICE_TIER_KEYS = (
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "openai.request.service_tier",
    "gen_ai.openai.request.service_tier",
)
_AUTO_TIERS = frozenset(("auto", ""))  # a request for "auto" says nothing about the tier used


def service_tier(attributes: Mapping[str, Any]) -> str | None:
    """The service tier a span's attributes report, or ``None`` (standard prices)."""
    for key in SERVICE_TIER_KEYS:
        value = attributes.get(key)
        if type(value) is str and value not in _AUTO_TIERS:
            return value
    return None


class PricingTable:
    """USD cost of calls, from the layers above. Thread-safe; cheap to query repeatedly."""

    def __init__(
        self,
        overrides: OverrideTable | None = None,
        corrections: OverrideTable | None = None,
        *,
        use_library: bool = True,
        max_quotes: int = MAX_QUOTES,
    ):
        self.overrides = overrides or OverrideTable()
        self.corrections = corrections or OverrideTable()
        self._use_library = use_library
        self._library: Any = None
        self._library_lock = threading.Lock()
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()
        self._quote = functools.lru_cache(maxsize=max_quotes)(self._resolve)
        self.cache_info = self._quote.cache_info

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<mapping>", *, use_library: bool = True,
                     corrections: bool = True) -> PricingTable:
        """A table whose override layer is ``data`` (the shape of a pricing file)."""
        return cls(OverrideTable.from_mapping(data, source), _bundled_corrections() if corrections else None,
                   use_library=use_library)

    @classmethod
    def bundled(cls) -> PricingTable:
        """Bundled corrections over ``genai-prices``, no user file."""
        return cls(None, _bundled_corrections())

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> PricingTable:
        """The bundled layers under ``path`` or ``$GENSIGHT_PRICING_FILE``, when one is named."""
        env = os.environ if environ is None else environ
        override = path if path is not None else (env.get(PRICING_FILE_ENV) or None)
        user = OverrideTable.from_file(Path(override)) if override else None
        return cls(user, _bundled_corrections())

    # -- lookup ------------------------------------------------------------------------------
    def library(self) -> Any:
        """The ``genai-prices`` adapter, loaded on first use (~0.3 s); ``None`` when switched
        off or not installed (then only the file layers price)."""
        if self._library is None and self._use_library:
            with self._library_lock:
                if self._library is None and self._use_library:
                    self._library = _load_library()
                    if self._library is None:
                        self._use_library = False
        return self._library

    def quote(self, provider: str | None, model: str | None, tier: str | None = None) -> Quote | None:
        """The quote of ``model`` at ``provider`` and ``tier``, resolved once (bounded LRU).
        Names longer than any real one (``MAX_NAME_CHARS``) are not priced: a cache holding
        megabyte-long names from hostile spans would be bounded in entries but not in bytes."""
        if (model and len(model) > MAX_NAME_CHARS) or (provider and len(provider) > MAX_NAME_CHARS) \
                or (tier and len(tier) > MAX_NAME_CHARS):
            return None
        return self._quote(provider, model, tier)

    def _resolve(self, provider: str | None, model: str | None, tier: str | None = None) -> Quote | None:
        """One resolution through the layers (cached by ``quote``)."""
        if not model:
            return None
        price = self.overrides.lookup(provider, model)
        if price is not None:
            return Quote(f"override file {', '.join(self.overrides.sources)}", fixed=price.rates())
        price = self.corrections.lookup(provider, model)
        if price is not None:
            return Quote(f"{BUNDLED_CORRECTIONS} ({', '.join(self.corrections.sources)})", fixed=price.rates())
        library = self.library()
        quote = library.quote(provider, model, tier) if library is not None else None
        if quote is None:
            self._warn(provider, model)
        return quote

    def _warn(self, provider: str | None, model: str) -> None:
        with self._warn_lock:
            if model in self._warned or len(self._warned) >= MAX_WARNED_MODELS:
                return
            self._warned.add(model)
        logger.warning(
            "gensight: no price for model %r (provider %r); no cost is recorded for it. Add it to a file named by %s.",
            model, provider or "", PRICING_FILE_ENV,
        )

    def cost_usd(
        self,
        provider: str | None,
        model: str | None,
        input_tokens: Any,
        output_tokens: Any,
        cache_read_tokens: Any = 0,
        cache_write_tokens: Any = 0,
        *,
        tier: str | None = None,
        at_ns: int | None = None,
    ) -> float | None:
        """USD cost of one call made at ``at_ns`` (Unix ns; default now) at service ``tier``, or
        ``None`` when the model is unknown or a count is unusable.

        ``input_tokens`` includes cache reads and writes (GenAI semconv). Missing output (e.g.
        embeddings) counts as 0; a negative, NaN or non-numeric count makes the whole cost
        ``None`` rather than a wrong number.
        """
        if input_tokens is None:
            if output_tokens is None:
                return None
            input_tokens = 0
        if output_tokens is None:
            output_tokens = 0
        if cache_read_tokens is None:
            cache_read_tokens = 0
        if cache_write_tokens is None:
            cache_write_tokens = 0
        for count in (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens):
            if not (type(count) is int and count >= 0) and not valid_count(count):  # plain ints: the common case
                return None
        quote = self.quote(provider, model, tier)
        if quote is None:
            return None
        return quote.cost_usd(time.time_ns() if at_ns is None else at_ns, input_tokens, output_tokens,
                              cache_read_tokens, cache_write_tokens)

    def lookup(self, provider: str | None, model: str | None, *, tier: str | None = None,
               at_ns: int | None = None) -> ModelPrice | None:
        """Base prices (USD per 1M tokens, below any long-context tier) of ``model``; ``None``
        when unknown (warned once)."""
        quote = self.quote(provider, model, tier)
        if quote is None:
            return None
        rates = quote.rates_at(time.time_ns() if at_ns is None else at_ns)
        if rates is None:
            return None
        m = rates.per_million()
        return ModelPrice(m["input"], m["output"], m["cache_read"], m["cache_write"])


def _load_library() -> Any:
    try:
        from gensight.pricing.library import LibraryPrices

        return LibraryPrices()
    except ImportError as exc:  # Python 3.10, or installed without it: file layers only
        logger.warning("gensight: genai-prices is not available (%s); only pricing files price calls", exc)
        return None


@functools.lru_cache(maxsize=1)
def _bundled_corrections_data() -> str:
    return resources.files("gensight").joinpath("data/pricing.json").read_text(encoding="utf-8")


def _bundled_corrections() -> OverrideTable:
    return OverrideTable.from_mapping(json.loads(_bundled_corrections_data()), "gensight/data/pricing.json")


_default: PricingTable | None = None
_default_lock = threading.Lock()


def default_table() -> PricingTable:
    """The process-wide table (``$GENSIGHT_PRICING_FILE`` + bundled layers), made on first use.

    A broken override file is logged and the bundled layers used, because telemetry must never
    break the application it observes; the processor validates its file at start-up instead.
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                try:
                    _default = PricingTable.load()
                except PricingError as exc:
                    logger.error("gensight: %s; using the bundled prices", exc)
                    _default = PricingTable.bundled()
    return _default


def reset_default_table() -> None:
    """Forget the process-wide table (tests, or after changing ``$GENSIGHT_PRICING_FILE``)."""
    global _default
    with _default_lock:
        _default = None

