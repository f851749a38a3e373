"""Price tables Gensight reads from files: the user's ``GENSIGHT_PRICING_FILE`` and the bundled
corrections (``data/pricing.json``). Both sit above ``genai-prices``: a fine-tune, a negotiated
price or a model the library does not know yet is one entry away, without waiting for a release.

A file (JSON, or YAML when PyYAML is installed) maps providers to models to USD per 1M tokens::

    {"providers": {"openai": {"aliases": ["my-gateway"],
                              "models": {"ft:gpt-4o-mini-*": {"input": 0.3, "cached_input": 0.15,
                                                              "output": 1.2}}}}}

Model keys may be glob patterns; dated snapshots (``-2024-08-06``, ``-20241022``, ``-latest``,
Bedrock's ``-v2:0``) and vendor prefixes (``anthropic.``) resolve to the base name, except for
fine-tunes (``ft:``), which only an explicit entry prices. Provider names are compared the way
spans' are (``gensight.pricing.providers``), so ``azure.ai.openai`` and ``az.ai.openai`` are one.
An entry applies at every event time and service tier.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gensight.pricing.providers import compact, library_provider
from gensight.pricing.rates import TOKENS_PER_PRICE_UNIT, Rates

# gpt-4o-2024-08-06 / claude-3-5-sonnet-20241022 / ...-latest / bedrock "-v2:0" version tags
_SNAPSHOT_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-latest|-v\d+(:\d+)?)$")


class PricingError(ValueError):
    """A pricing file that cannot be used; the message names the file and the bad entry."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens. ``None`` for a cache price means: billed at the plain input price."""

    input_usd_per_1m: float
    output_usd_per_1m: float
    cached_input_usd_per_1m: float | None = None
    cache_write_usd_per_1m: float | None = None

    def rates(self) -> Rates:
        """Per-token rates (cache prices defaulting to the input price)."""
        inp = self.input_usd_per_1m
        read = inp if self.cached_input_usd_per_1m is None else self.cached_input_usd_per_1m
        write = inp if self.cache_write_usd_per_1m is None else self.cache_write_usd_per_1m
        u = TOKENS_PER_PRICE_UNIT
        return Rates(inp / u, self.output_usd_per_1m / u, read / u, write / u)


def valid_count(value: Any) -> bool:
    """A usable token count or price: a finite non-negative int/float (not a bool)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def provider_key(name: str | None) -> str:
    """One spelling per provider: the ``genai-prices`` id when it has one, else the name
    without case and punctuation. The override layers and span lookups both use it."""
    if not name:
        return ""
    mapped = library_provider(name, frozenset())
    return mapped if mapped else compact(name)


class OverrideTable:
    """Prices keyed by provider and model, with snapshot, prefix, alias and glob resolution."""

    def __init__(self) -> None:
        self._providers: dict[str, dict[str, ModelPrice]] = {}
        self._aliases: dict[str, str] = {}
        self._patterns: dict[str, list[tuple[str, ModelPrice]]] = {}
        self.sources: list[str] = []

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<mapping>") -> OverrideTable:
        table = cls()
        table.merge(data, source)
        return table

    @classmethod
    def from_file(cls, path: str | Path) -> OverrideTable:
        return cls.from_mapping(read_pricing_file(Path(path)), str(path))

    def __bool__(self) -> bool:
        return bool(self._providers)

    def merge(self, data: Mapping[str, Any], source: str) -> None:
        if not isinstance(data, Mapping) or not isinstance(data.get("providers"), Mapping):
            raise PricingError(f"{source}: expected a mapping with a 'providers' key")
        for provider, entry in data["providers"].items():
            pkey = provider_key(str(provider))
            if not isinstance(entry, Mapping):
                raise PricingError(f"{source}: providers.{provider} must be a mapping")
            models = entry.get("models", {})
            if not isinstance(models, Mapping):
                raise PricingError(f"{source}: providers.{provider}.models must be a mapping")
            target = self._providers.setdefault(pkey, {})
            for model, price in models.items():
                target[str(model)] = _parse_price(price, f"{source}: providers.{provider}.models.{model}")
            for alias in entry.get("aliases", []) or []:
                self._aliases[provider_key(str(alias))] = pkey
        self._patterns = {
            p: [(key, price) for key, price in models.items() if any(c in key for c in "*?[")]
            for p, models in self._providers.items()
        }
        self.sources.append(source)

    def lookup(self, provider: str | None, model: str) -> ModelPrice | None:
        """The entry for ``model`` at ``provider``. With no provider, or one this table does not
        name, the model alone decides, and only when every matching entry agrees."""
        pkey = provider_key(provider)
        pkey = self._aliases.get(pkey, pkey)
        if pkey in self._providers:
            return self._resolve(pkey, model)
        found = {p for name in self._providers if (p := self._resolve(name, model)) is not None}
        return found.pop() if len(found) == 1 else None

    def _resolve(self, provider: str, model: str) -> ModelPrice | None:
        models = self._providers[provider]
        for name in model_candidates(model):
            price = models.get(name)
            if price is not None:
                return price
        for pattern, price in self._patterns.get(provider, ()):  # e.g. "ft:gpt-4o-mini-*"
            if fnmatch.fnmatchcase(model, pattern):
                return price
        return None


def model_candidates(model: str) -> list[str]:
    """``model`` then its base names: dated snapshots and vendor prefixes resolve to the base."""
    names = [model]
    name = model
    if "." in name and not name.startswith("ft:"):  # bedrock: "anthropic.claude-3-5-sonnet-20241022-v2:0"
        prefix, _, rest = name.partition(".")
        if prefix.isalpha() and rest:
            name = rest
            names.append(name)
    if name.startswith("ft:"):  # fine-tunes are priced differently: only an explicit entry applies
        return names
    while True:
        stripped = _SNAPSHOT_SUFFIX.sub("", name)
        if stripped == name or not stripped:
            break
        name = stripped
        names.append(name)
    return names


def _parse_price(value: Any, where: str) -> ModelPrice:
    if not isinstance(value, Mapping):
        raise PricingError(f"{where}: expected a mapping with 'input' and 'output' (USD per 1M tokens)")
    unknown = set(value) - {"input", "output", "cached_input", "cache_write"}
    if unknown:
        raise PricingError(f"{where}: unknown key(s) {sorted(unknown)}")

    def number(key: str, required: bool) -> float | None:
        v = value.get(key)
        if v is None:
            if required:
                raise PricingError(f"{where}: '{key}' is required")
            return None
        if not valid_count(v):
            raise PricingError(f"{where}: '{key}' must be a non-negative number, got {v!r}")
        return float(v)

    return ModelPrice(
        input_usd_per_1m=number("input", True) or 0.0,
        output_usd_per_1m=number("output", False) or 0.0,
        cached_input_usd_per_1m=number("cached_input", False),
        cache_write_usd_per_1m=number("cache_write", False),
    )


def read_pricing_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PricingError(f"pricing file {path}: cannot read it ({exc.strerror or exc})") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError as exc:
            raise PricingError(f"pricing file {path}: YAML needs PyYAML (pip install pyyaml), or use JSON") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PricingError(f"pricing file {path}: invalid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PricingError(f"pricing file {path}: invalid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise PricingError(f"pricing file {path}: expected a mapping at top level")
    return data
