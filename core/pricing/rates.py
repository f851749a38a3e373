"""Per-token rates and the arithmetic of one call's cost: the only pricing code on a per-span path.

A :class:`Quote` is what one (provider, model, service tier) costs, resolved once (from an
override file, a bundled correction or ``genai-prices``) and then cached: either one fixed
:class:`Rates`, or a schedule that picks rates by the call's event time (a price that changed on
some date, an off-peak discount) and caches them per price period. Pricing a call is then a dict
lookup and a few multiplications; the library's ``calc_price`` (~70 µs, Decimal arithmetic) runs
once per (model, tier, period), never per call.

Token convention (GenAI semconv, and ``genai-prices``' ``Usage``): ``input_tokens`` *includes*
cache reads and cache writes, which are billed at their own rates.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are quoted in USD per 1M tokens
NS_PER_DAY = 86_400 * 1_000_000_000
MAX_PERIODS = 400  # price periods cached per quote (a replay spanning a year of days fits)


@dataclass(frozen=True)
class Rates:
    """USD per token (not per 1M). A cache rate equal to ``input`` means: no separate cache price.

    ``tiers``: ``(start, rates)`` pairs, highest ``start`` first; a call with more than ``start``
    input tokens pays that tier's rates on all its tokens (the "cliff" model of long-context
    prices, as in ``genai-prices``)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    per_request: float = 0.0
    tiers: tuple[tuple[int, Rates], ...] = ()

    def per_million(self) -> dict[str, float]:
        """Base rates in USD per 1M tokens (what ``pricing show`` prints)."""
        return {
            "input": self.input * TOKENS_PER_PRICE_UNIT,
            "cache_read": self.cache_read * TOKENS_PER_PRICE_UNIT,
            "cache_write": self.cache_write * TOKENS_PER_PRICE_UNIT,
            "output": self.output * TOKENS_PER_PRICE_UNIT,
        }


class Quote:
    """The price of one (provider, model, tier): where it came from and its rates over time."""

    __slots__ = ("source", "fixed", "_at", "_periods", "_boundaries_s")

    def __init__(
        self,
        source: str,
        fixed: Rates | None = None,
        at: Callable[[int], Rates | None] | None = None,
        time_of_day_boundaries_s: tuple[float, ...] = (),
    ):
        if (fixed is None) == (at is None):
            raise ValueError("a quote has either fixed rates or a schedule")
        self.source = source
        self.fixed = fixed
        self._at = at
        self._periods: dict[object, Rates | None] = {}
        self._boundaries_s = time_of_day_boundaries_s

    def rates_at(self, at_ns: int) -> Rates | None:
        """The rates in force at ``at_ns`` (Unix ns, UTC). Prices change on UTC dates (and, for
        off-peak prices, at times of day), so the period is the UTC day (and the time-of-day
        segment between the schedule's boundaries): resolved once, then a dict lookup."""
        if self.fixed is not None:
            return self.fixed
        day = at_ns // NS_PER_DAY
        key: object = day
        if self._boundaries_s:
            key = (day, bisect_right(self._boundaries_s, (at_ns - day * NS_PER_DAY) / 1e9))
        try:
            return self._periods[key]
        except KeyError:
            pass
        assert self._at is not None
        rates = self._at(at_ns)
        if len(self._periods) >= MAX_PERIODS:
            self._periods.clear()
        self._periods[key] = rates
        return rates

    def cost_usd(self, at_ns: int, input_tokens: float, output_tokens: float,
                 cache_read_tokens: float = 0, cache_write_tokens: float = 0) -> float | None:
        """USD cost of one call with valid (finite, non-negative) counts. ``None`` only when the
        schedule has no token price for the period."""
        r = self.fixed
        if r is None:
            r = self.rates_at(at_ns)
            if r is None:
                return None
        i = input_tokens
        if r.tiers:
            for start, tier in r.tiers:
                if i > start:
                    r = tier
                    break
        if cache_read_tokens or cache_write_tokens:
            cr = cache_read_tokens if cache_read_tokens < i else i
            cw = cache_write_tokens if cache_write_tokens < i - cr else i - cr
            return (i - cr - cw) * r.input + cr * r.cache_read + cw * r.cache_write \
                + output_tokens * r.output + r.per_request
        return i * r.input + output_tokens * r.output + r.per_request
