"""The configuration system's mechanics: ``Section``, the typed builder, ``ConfigError``, field rules.

Why here and not in ``gensight.processor.config``: that module lists every section, so it imports
every stage; the stages (and the analytics modules) import this leaf module instead. Every error is
a ``ConfigError`` (a ``ValueError``) whose message starts with the key's full dotted path
(``pipeline.window_s: must be > 0, got -5``), so a bad config file points at the line to fix.

One code path for every section::

    @dataclass(frozen=True)
    class QualityConfig(Section):            # 1. a frozen dataclass subclassing Section,
        enabled: bool = False                #    defaults in ONE place (the stage uses it as is)
        max_judges: int = 8

        def validate(self, key: str) -> None:            # 2. value rules, naming the dotted key
            check(self.max_judges > 0, f"{key}.max_judges", f"must be > 0, got {self.max_judges}")

    # 3. in processor/config.py, one line in ProcessorConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)

``Section.from_mapping(data, key)`` builds it from YAML: unknown keys fail, each value is checked
against its field's type hint (``bool``, ``int``, ``float``, ``str``, ``X | None``, ``tuple[X, ...]``,
``Mapping``, a nested ``Section``), then ``validate(key)`` runs. CLI overrides
(``ProcessorConfig.with_values``) go through the same coercion. A section whose YAML shape is not
its field shape overrides ``from_mapping`` to translate it (a duration string, an alias key, a
nested ``Selector``) and then calls ``build_section``, so it still raises ``ConfigError``. A field
without a default is required (``<key>.<field>: required``; ``field(metadata={"required": hint})``
adds a hint). The analytics sections (``analytics.drift``, ``analytics.anomaly``, ...,
each ``analytics.slos[i]``, ``budgets[i]``, ``analytics.experiments[i]``) are ``Section`` s built
this way by ``AnalyticsConfig.from_dict``; the common rule "every number > 0" is
``check_positive(self, key)`` in their ``validate``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, TypeVar


class ConfigError(ValueError):
    """A bad configuration; the message starts with the dotted key at fault."""


S = TypeVar("S", bound="Section")


def check(cond: bool, key: str, message: str) -> None:
    """Raise ``ConfigError("<key>: <message>")`` unless ``cond``."""
    if not cond:
        raise ConfigError(f"{key}: {message}")


def fmt(x: Any) -> str:
    """A number as config errors print it (``-5``, ``0.5``)."""
    return f"{x:g}" if isinstance(x, float) else str(x)


class Section:
    """Base of every config section (subclasses are frozen dataclasses; see the module docstring)."""

    def validate(self, key: str) -> None:
        """Value rules across fields; raise ``ConfigError`` naming ``key.<field>``. Default: none."""
        return None

    @classmethod
    def from_mapping(cls: type[S], data: Any, key: str) -> S:
        """The section from its YAML mapping (``None`` = all defaults), checked and validated."""
        return build_section(cls, {} if data is None else data, key)


def build_section(cls: type[S], data: Any, key: str) -> S:
    """Dataclass ``cls`` from ``data``: unknown keys fail, values are coerced by the field types,
    then ``validate(key)`` runs; any ``ValueError`` comes out as a ``ConfigError`` naming ``key``."""
    check(isinstance(data, Mapping), key, f"must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs = {}
    for name, value in data.items():
        if name not in names:
            raise ConfigError(f"{key}.{name}: unknown key (expected one of: {', '.join(names)})")
        kwargs[name] = coerce(hints[name], value, f"{key}.{name}")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            hint = f.metadata.get("required")  # field(metadata={"required": "e.g. 0.995"}) explains it
            raise ConfigError(f"{key}.{f.name}: required" + (f" ({hint})" if hint else ""))
    try:
        obj = cls(**kwargs)
        obj.validate(key)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc) if str(exc).startswith(key) else f"{key}: {exc}") from None
    return obj


def coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` checked against the type hint ``tp`` (see the module docstring)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(inner[0], value, key)
    if isinstance(tp, type) and issubclass(tp, Section):
        return value if isinstance(value, tp) else tp.from_mapping(value, key)
    if tp is Any:
        return value
    if tp is bool:
        check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        check(isinstance(value, int) and not isinstance(value, bool), key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool), key, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        check(isinstance(value, (str, int, float)) and not isinstance(value, bool), key, f"must be a string, got {value!r}")
        return str(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        check(isinstance(value, (list, tuple)), key, f"must be a list, got {value!r}")
        return tuple(coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or tp is Mapping:
        check(isinstance(value, Mapping), key, f"must be a mapping, got {value!r}")
        return dict(value)
    return value


def reject_unknown(data: Mapping[str, Any], known: Collection[str], where: str, *, sort: bool = True) -> None:
    """Fail on the first (alphabetical) key of ``data`` that is not in ``known``."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        listed = sorted(known) if sort else list(known)
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(listed)})")


def check_positive(section: Any, key: str, *, skip: Collection[str] = ()) -> None:
    """Every int / float field of ``section`` (a dataclass; bools and ``None`` aside) must be > 0
    and finite: the common rule of the analytics sections, called from their ``validate(key)``."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if f.name in skip or value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            check(value > 0, f"{key}.{f.name}", f"must be a positive integer, got {value!r}")
        elif isinstance(value, float):
            check(0 < value < math.inf, f"{key}.{f.name}", f"must be a positive number, got {fmt(value)}")
