"""Attribute value decoding shared by the two span readers (the protobuf walk and the C scanner).

Why a module of its own: these are the slow paths every number, token count and provider name
takes when the scanner's fast cases do not apply; they are the normaliser's rules for "what is a
usable value" (finite, non-negative, not absurd), kept in one place so both readers and every
field agree. The underscore names are package-internal: ``gensight.processor.normalise`` does not
export them.
"""

from __future__ import annotations

from typing import Any

from gensight.processor.normalise.dialects import MAX_NUMBER, MAX_TENANT_CACHE, PROVIDER_ALIASES, clip_key


class _Unusable:
    """A present attribute whose value is a kvlist, bytes or unset: not a number, not a name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNUSABLE"


UNUSABLE: Any = _Unusable()


def _value(v: Any) -> Any:
    """Slot value of an OTLP ``AnyValue`` (the C scanner decodes the same way)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [_element(x) for x in v.array_value.values]
    return UNUSABLE


def _element(v: Any) -> Any:
    x = _value(v)
    return None if x is UNUSABLE else x


def _str(x: Any) -> str | None:
    """A scalar as text (``str(7)``, ``str(True)``); None for absent, arrays and non-scalars."""
    if x is None or x is UNUSABLE or type(x) is list:
        return None
    return x if type(x) is str else str(x)


def _number(x: Any) -> float | bool:
    """A finite non-negative number from a present value, ``False`` when unusable."""
    t = type(x)
    if t is int or t is float:
        v = x
    elif t is str:
        try:
            v = float(x)
        except ValueError:
            return False
    else:  # bool, list, UNUSABLE
        return False
    if v != v or v < 0 or v > MAX_NUMBER:  # NaN, negative, inf and absurd values
        return False
    return v


def _count(x: Any) -> int | None:
    """A present token count as an int; None when unusable (the caller counts a bad value)."""
    v = _number(x)
    return None if v is False else int(v)


def _measure(x: Any) -> float | None:
    """A present score or duration as a float; None when unusable (the caller counts it)."""
    v = _number(x)
    return None if v is False else float(v)


_provider_cache: dict[str, str] = {}


def _provider(raw: str) -> str:
    p = _provider_cache.get(raw)
    if p is None:
        p = raw.strip().lower()
        p = clip_key(PROVIDER_ALIASES.get(p, p))
        if len(_provider_cache) < MAX_TENANT_CACHE:
            _provider_cache[raw] = p
    return p
