"""Token pricing: what an LLM call cost, in USD, at the price in force when it was made.

Both the in-app instrumentation (``gen_ai.usage.cost``) and the processor's cost enrichment use
this package. Prices come from three layers, first match wins:

1. the user's file named by ``GENSIGHT_PRICING_FILE`` (fine-tunes, negotiated prices; globs);
2. Gensight's bundled corrections (``data/pricing.json``; empty while the library agrees);
3. ``genai-prices`` — thousands of models of dozens of providers, historical prices selected by
   the call's event time, cache read/write prices, service tiers. Read offline: no network.

Modules: :mod:`.table` (the layers, the bounded quote cache), :mod:`.rates` (per-token rates and
the per-call arithmetic), :mod:`.library` (the genai-prices adapter), :mod:`.overrides` (pricing
files), :mod:`.providers` (span provider names -> library provider ids).
"""

from gensight.pricing.overrides import ModelPrice, OverrideTable, PricingError
from gensight.pricing.rates import TOKENS_PER_PRICE_UNIT, Quote, Rates
from gensight.pricing.table import (
    MAX_QUOTES,
    PRICING_FILE_ENV,
    SERVICE_TIER_KEYS,
    PricingTable,
    default_table,
    reset_default_table,
    service_tier,
)

__all__ = [
    "MAX_QUOTES",
    "PRICING_FILE_ENV",
    "SERVICE_TIER_KEYS",
    "TOKENS_PER_PRICE_UNIT",
    "ModelPrice",
    "OverrideTable",
    "PricingError",
    "PricingTable",
    "Quote",
    "Rates",
    "default_table",
    "reset_default_table",
    "service_tier",
]
