"""Field checks shared by the analytics config classes (drift, anomaly, cost, alerts, SLOs, admin).

They live apart from ``gensight.processor.config`` because that module imports every pipeline
stage's config, and the analytics modules must stay importable on their own. Every error is a
``ValueError`` whose message starts with the key's full dotted path, so a bad config file points
at the line to fix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any

# a per-field rule: (value, dotted key) -> the checked value
FieldRule = Callable[[Any, str], Any]


def reject_unknown(data: Mapping[str, Any], known: Collection[str], where: str, *, sort: bool = True) -> None:
    """Fail on the first (alphabetical) key of ``data`` that is not in ``known``."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        listed = sorted(known) if sort else list(known)
        raise ValueError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(listed)})")


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key}: must be true or false, got {value!r}")
    return value


def positive_int(value: Any, key: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{key}: must be a positive integer, got {value!r}")
    return value


def positive_number(value: Any, key: str) -> float:
    """A finite number > 0 (NaN and infinity are rejected), as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < float(value) < math.inf:
        raise ValueError(f"{key}: must be a positive number, got {value!r}")
    return float(value)


def fields_from_mapping(cls: Any, data: Mapping[str, Any], where: str,
                        special: Mapping[str, FieldRule] | None = None) -> dict[str, Any]:
    """Checked keyword arguments for dataclass ``cls`` from ``data``.

    Unknown keys fail. A key with a rule in ``special`` is checked by that rule; any other key by
    the type of its field's default: bool -> true/false, int -> positive integer, float ->
    positive finite number. Keys absent from ``data`` are left to the dataclass defaults.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    reject_unknown(data, fields, where)
    special = special or {}
    kw: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{where}.{k}"
        default = fields[k].default
        if k in special:
            kw[k] = special[k](v, key)
        elif isinstance(default, bool):
            kw[k] = boolean(v, key)
        elif isinstance(default, int):
            kw[k] = positive_int(v, key)
        elif isinstance(default, float):
            kw[k] = positive_number(v, key)
        else:  # a programming error: every other field needs its own rule
            raise TypeError(f"{key}: no check for a field with default {default!r}")
    return kw
