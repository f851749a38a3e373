"""The ``genai-prices`` adapter: a (provider, model, service tier) -> :class:`Quote`.

``genai-prices`` (Pydantic's) carries thousands of models of dozens of providers, historical
prices (``ConditionalPrice`` with start dates and times of day), cache read/write prices, long-
context tiers and request-specific variants (``service_tier``, batch). Gensight reads its bundled
snapshot only: the library's auto-update (``UpdatePrices``) is never started, so pricing makes
no network access; a newer price list arrives with a newer package. (An application that starts
``UpdatePrices`` itself gets the updated snapshot for models resolved after the update.)

What this module adds to ``calc_price``: it resolves once and hands back per-token rates, with
the same selection rules, so the per-call path does no Decimal arithmetic and no model matching;
and it avoids the library's lookup caches, which grow with every distinct model name asked for
(model names come from spans, i.e. from anyone who can send one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gensight.pricing.overrides import model_candidates
from gensight.pricing.providers import NO_LIBRARY_PROVIDER, library_provider
from gensight.pricing.rates import Quote, Rates

_UTC = dt.timezone.utc
_PRICE_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
_MTOK = Decimal(1_000_000)
_KCOUNT = Decimal(1_000)
# request-context keys the library's price variants select on; a tier name goes to service_tier
_BATCH_TIERS = frozenset(("batch",))


def price_context(tier: str | None) -> dict[str, str] | None:
    """The library's ``price_context`` for a span's service tier. ``batch`` is a processing mode
    there (``{"processing": "batch"}``); any other tier is ``{"service_tier": tier}``."""
    if not tier:
        return None
    if tier in _BATCH_TIERS:
        return {"processing": tier}
    return {"service_tier": tier}


def _datetime(at_ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=_UTC) + dt.timedelta(microseconds=at_ns // 1000)


def _per_token(value: Any, at_input: int | None) -> float | None:
    """A library price (Decimal per 1M, or ``TieredPrices``) as USD per token; for a tiered
    price, the rate paid by a call with ``at_input`` input tokens (``None``: the base rate)."""
    if value is None:
        return None
    if not isinstance(value, Decimal):  # TieredPrices: the highest tier the call crosses
        price = value.base
        if at_input is not None:
            for tier in reversed(value.tiers):
                if at_input > tier.start:
                    price = tier.price
                    break
        value = price
    return float(value / _MTOK)


def rates_of(model_price: Any) -> Rates | None:
    """Per-token rates of one library ``ModelPrice``; ``None`` when it has no token price (a
    model billed per image or per second: tokens alone cannot price it)."""
    values = [getattr(model_price, k) for k in _PRICE_KEYS]
    if values[0] is None and values[1] is None:
        return None
    starts = sorted({t.start for v in values if v is not None and not isinstance(v, Decimal) for t in v.tiers})
    per_request_k = getattr(model_price, "requests_kcount", None)
    per_request = float(per_request_k / _KCOUNT) if isinstance(per_request_k, Decimal) else 0.0

    def at(at_input: int | None) -> Rates:
        inp = _per_token(values[0], at_input) or 0.0
        out = _per_token(values[1], at_input) or 0.0
        read = _per_token(values[2], at_input)
        write = _per_token(values[3], at_input)
        return Rates(inp, out, inp if read is None else read, inp if write is None else write, per_request)

    base = at(None)
    if not starts:
        return base
    tiers = tuple((start, at(start + 1)) for start in reversed(starts))
    return Rates(base.input, base.output, base.cache_read, base.cache_write, per_request, tiers)


class LibraryPrices:
    """The installed ``genai-prices`` snapshot, read without network and without its caches."""

    def __init__(self) -> None:
        import genai_prices
        from genai_prices import data_snapshot

        self.version: str = genai_prices.__version__
        snapshot = data_snapshot.get_snapshot()  # the bundled data unless the app updated it
        self._providers: list[Any] = list(snapshot.providers)
        self._by_id: dict[str, Any] = {p.id: p for p in self._providers}
        self.provider_ids = frozenset(self._by_id)

    def quote(self, provider: str | None, model: str, tier: str | None = None) -> Quote | None:
        """The quote for ``model`` at ``provider`` (a span's provider name, any dialect), or
        ``None`` when the library has no token price for it."""
        found = self._find(provider, model)
        if found is None:
            return None
        prov, info = found
        context = price_context(tier)
        # calc_price applies request variants only to the provider's own models, not to models
        # found through a fallback provider (Azure serving OpenAI's): same rule here
        if context and not any(m is info for m in prov.models):
            context = None
        source = f"genai-prices {self.version} ({prov.id}/{info.id})"
        constraints = self._constraints(info, context)
        if not constraints:
            fixed = rates_of(info.get_prices(_datetime(0), context))
            return None if fixed is None else Quote(source, fixed=fixed)
        boundaries = sorted({
            float(t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6)
            for c in constraints if hasattr(c, "start_time")
            for t in (_utc_time(c.start_time), _utc_time(c.end_time))
        })

        def at(at_ns: int) -> Rates | None:
            return rates_of(info.get_prices(_datetime(at_ns), context))

        return Quote(source, at=at, time_of_day_boundaries_s=tuple(boundaries))

    def _find(self, provider: str | None, model: str) -> tuple[Any, Any] | None:
        """The library's provider and model entry; a dated snapshot the library does not list yet
        (``gpt-4o-2025-01-31``) is priced as its base model, as the override files do."""
        pid = library_provider(provider, self.provider_ids)
        if pid == NO_LIBRARY_PROVIDER:
            return None
        for name in model_candidates(model):
            found = self._find_exact(pid, name)
            if found is not None:
                return found
        return None

    def _find_exact(self, pid: str | None, model: str) -> tuple[Any, Any] | None:
        if pid is not None:
            prov = self._by_id.get(pid)
            if prov is None:
                return None
            info = prov.find_model(model, all_providers=self._providers)
            return None if info is None else (prov, info)
        # provider unknown: match the model name alone, only where that is unambiguous — one
        # provider claims the name (the library's model_match), or exactly one lists the model
        ref = model.lower()
        claimants = [p for p in self._providers if p.model_match is not None and p.model_match.is_match(ref)]
        if len(claimants) == 1:
            info = claimants[0].find_model(model, all_providers=self._providers)
            return None if info is None else (claimants[0], info)
        if claimants:
            return None
        listing = [(p, info) for p in self._providers if (info := p.find_model(model)) is not None]
        return listing[0] if len(listing) == 1 else None

    @staticmethod
    def _constraints(info: Any, context: Mapping[str, str] | None) -> list[Any]:
        """The time constraints that can change this model's price for this context."""
        out = [c.constraint for c in info.prices if c.constraint is not None] if isinstance(info.prices, list) else []
        if context:
            for variant in info.price_variants or ():
                if variant.constraint is not None and all(context.get(k) == v for k, v in variant.when.items()):
                    out.append(variant.constraint)
        return out


def _utc_time(t: dt.time) -> dt.time:
    if t.tzinfo is None:
        return t
    return dt.datetime.combine(dt.date(1970, 1, 1), t).astimezone(_UTC).time()

