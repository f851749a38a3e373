"""Token pricing: what an LLM call cost, in USD.

The table is data (``data/pricing.json``, USD per 1M tokens), not code, so a price change is a
one-line edit and users can override or extend it with ``GENSIGHT_PRICING_FILE`` (JSON, or YAML
when PyYAML is installed) without waiting for a release. Both the in-app instrumentation and
the processor's cost enrichment use this module, so it imports nothing beyond the standard
library.

An unknown model gets *no* cost (``None``), never a guessed one: a wrong cost on a dashboard is
worse than a missing one. Each unknown model is warned about once.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PRICING_FILE_ENV = "GENSIGHT_PRICING_FILE"
TOKENS_PER_PRICE_UNIT = 1_000_000
_MAX_WARNED_MODELS = 1000  # bound the "already warned" set: model names can come from hostile spans

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

    def cost_usd(
        self,
        input_tokens: float,
        output_tokens: float,
        cache_read_tokens: float = 0,
        cache_write_tokens: float = 0,
    ) -> float:
        """Cost of one call. ``input_tokens`` *includes* cache reads and writes (GenAI semconv)."""
        cache_read = min(cache_read_tokens, input_tokens)
        cache_write = min(cache_write_tokens, input_tokens - cache_read)
        plain_input = input_tokens - cache_read - cache_write
        read_price = self.input_usd_per_1m if self.cached_input_usd_per_1m is None else self.cached_input_usd_per_1m
        write_price = self.input_usd_per_1m if self.cache_write_usd_per_1m is None else self.cache_write_usd_per_1m
        total = (
            plain_input * self.input_usd_per_1m
            + cache_read * read_price
            + cache_write * write_price
            + output_tokens * self.output_usd_per_1m
        )
        return total / TOKENS_PER_PRICE_UNIT


def _valid_count(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _normalise_provider(provider: str | None) -> str:
    return (provider or "").strip().lower()


class PricingTable:
    """Prices keyed by provider and model, with snapshot and alias resolution."""

    def __init__(self, providers: Mapping[str, Mapping[str, ModelPrice]], aliases: Mapping[str, str]):
        self._providers = {p: dict(models) for p, models in providers.items()}
        self._aliases = dict(aliases)
        self._patterns = {
            p: [(key, price) for key, price in models.items() if any(c in key for c in "*?[")]
            for p, models in self._providers.items()
        }
        self._cache: dict[tuple[str, str], ModelPrice | None] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<mapping>") -> PricingTable:
        table = cls({}, {})
        table._merge(data, source)
        return table

    @classmethod
    def bundled(cls) -> PricingTable:
        text = resources.files("gensight").joinpath("data/pricing.json").read_text(encoding="utf-8")
        return cls.from_mapping(json.loads(text), "bundled pricing.json")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> PricingTable:
        """The bundled table, extended/overridden by ``path`` or ``$GENSIGHT_PRICING_FILE``."""
        env = os.environ if environ is None else environ
        table = cls.bundled()
        override = path if path is not None else (env.get(PRICING_FILE_ENV) or None)
        if override:
            table._merge(_read_pricing_file(Path(override)), str(override))
        return table

    def _merge(self, data: Mapping[str, Any], source: str) -> None:
        if not isinstance(data, Mapping) or not isinstance(data.get("providers"), Mapping):
            raise PricingError(f"{source}: expected a mapping with a 'providers' key")
        for provider, entry in data["providers"].items():
            pkey = _normalise_provider(str(provider))
            if not isinstance(entry, Mapping):
                raise PricingError(f"{source}: providers.{provider} must be a mapping")
            models = entry.get("models", {})
            if not isinstance(models, Mapping):
                raise PricingError(f"{source}: providers.{provider}.models must be a mapping")
            target = self._providers.setdefault(pkey, {})
            for model, price in models.items():
                target[str(model)] = _parse_price(price, f"{source}: providers.{provider}.models.{model}")
            for alias in entry.get("aliases", []) or []:
                self._aliases[_normalise_provider(str(alias))] = pkey
        self._patterns = {
            p: [(key, price) for key, price in models.items() if any(c in key for c in "*?[")]
            for p, models in self._providers.items()
        }
        self._cache.clear()

    # -- lookup ------------------------------------------------------------------------------
    def lookup(self, provider: str | None, model: str | None) -> ModelPrice | None:
        """The price of ``model`` at ``provider``; ``None`` when unknown (warned once)."""
        if not model:
            return None
        key = (_normalise_provider(provider), model)
        try:
            return self._cache[key]
        except KeyError:
            pass
        price = self._resolve(key[0], model)
        with self._lock:
            if len(self._cache) < 10_000:
                self._cache[key] = price
            if price is None and model not in self._warned and len(self._warned) < _MAX_WARNED_MODELS:
                self._warned.add(model)
                logger.warning(
                    "gensight: no price for model %r (provider %r); no cost is recorded for it. "
                    "Add it to a file named by %s.",
                    model,
                    provider,
                    PRICING_FILE_ENV,
                )
        return price

    def _resolve(self, provider: str, model: str) -> ModelPrice | None:
        if provider:
            provider = self._aliases.get(provider, provider)
            candidates = [provider] if provider in self._providers else []
        else:
            candidates = list(self._providers)
        for name in _model_candidates(model):
            for p in candidates:
                price = self._providers[p].get(name)
                if price is not None:
                    return price
        for p in candidates:  # user-supplied patterns, e.g. "ft:gpt-4o-mini-*"
            for pattern, price in self._patterns.get(p, ()):
                if fnmatch.fnmatchcase(model, pattern):
                    return price
        return None

    def cost_usd(
        self,
        provider: str | None,
        model: str | None,
        input_tokens: Any,
        output_tokens: Any,
        cache_read_tokens: Any = 0,
        cache_write_tokens: Any = 0,
    ) -> float | None:
        """USD cost of one call, or ``None`` when the model is unknown or a count is unusable.

        Missing output (e.g. embeddings) counts as 0; a negative, NaN or non-numeric count
        makes the whole cost ``None`` rather than a wrong number.
        """
        if input_tokens is None and output_tokens is None:
            return None
        counts = [
            0 if input_tokens is None else input_tokens,
            0 if output_tokens is None else output_tokens,
            0 if cache_read_tokens is None else cache_read_tokens,
            0 if cache_write_tokens is None else cache_write_tokens,
        ]
        if not all(_valid_count(c) for c in counts):
            return None
        price = self.lookup(provider, model)
        if price is None:
            return None
        return price.cost_usd(*counts)

    def models(self) -> dict[str, list[str]]:
        return {p: sorted(models) for p, models in self._providers.items()}


def _model_candidates(model: str) -> list[str]:
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
        if not _valid_count(v):
            raise PricingError(f"{where}: '{key}' must be a non-negative number, got {v!r}")
        return float(v)

    return ModelPrice(
        input_usd_per_1m=number("input", True) or 0.0,
        output_usd_per_1m=number("output", False) or 0.0,
        cached_input_usd_per_1m=number("cached_input", False),
        cache_write_usd_per_1m=number("cache_write", False),
    )


def _read_pricing_file(path: Path) -> Mapping[str, Any]:
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


_default: PricingTable | None = None
_default_lock = threading.Lock()


def default_table() -> PricingTable:
    """The process-wide table (bundled + ``$GENSIGHT_PRICING_FILE``), loaded on first use.

    A broken override file is logged and the bundled table used, because telemetry must never
    break the application it observes; the processor validates its file at start-up instead.
    """
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                try:
                    _default = PricingTable.load()
                except PricingError as exc:
                    logger.error("gensight: %s; using the bundled pricing table", exc)
                    _default = PricingTable.bundled()
    return _default


def reset_default_table() -> None:
    """Forget the cached table (tests, or after changing ``$GENSIGHT_PRICING_FILE``)."""
    global _default
    with _default_lock:
        _default = None
