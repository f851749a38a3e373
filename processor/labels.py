"""Series keys as the analytics modules show them: data point attributes, stable ids, selectors.

The analytics analysers (SLO, drift, anomaly, cost, alerts) name a series in three places: data
point attributes on exported metrics, alert records and webhooks, and the state file. One module
holds the mapping so the three agree.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gensight.processor.export.metric_builder import series_attributes as _mb_series_attributes
from gensight.processor.records import EXECUTE_TOOL, RETRIEVAL, CallRecord, SeriesKey

SEP = "|"

# Series beyond an analyser's cardinality cap fold into the overflow series.
DEFAULT_MAX_SERIES = 2000


# Data point attributes identifying a series: the metric builder's, so SLI and analytics points agree.
series_attributes = _mb_series_attributes


def series_id(key: SeriesKey) -> str:
    """``service|kind|provider|target``: the id used in alerts, the state file and the admin API."""
    return SEP.join(key)


def parse_series_id(text: str) -> SeriesKey:
    parts = text.split(SEP)
    if len(parts) != 4:
        raise ValueError(f"series id {text!r} must have the form service|kind|provider|target")
    return SeriesKey(*parts)


def matches_patterns(sid: str, patterns: Iterable[str] | None) -> bool:
    """True when ``sid`` matches one of the glob ``patterns`` (all series when none are given)."""
    pats = list(patterns or ())
    return not pats or any(fnmatch.fnmatchcase(sid, p) for p in pats)


SELECTOR_KEYS = ("service", "kind", "provider", "model", "tool", "data_source")


@dataclass(frozen=True)
class Selector:
    """Which calls an SLO or budget counts: every given field must match (globs allowed)."""

    service: str | None = None
    kind: str | None = None
    provider: str | None = None
    model: str | None = None
    tool: str | None = None
    data_source: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None, where: str) -> Selector:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: must be a mapping of {', '.join(SELECTOR_KEYS)}")
        unknown = set(data) - set(SELECTOR_KEYS)
        if unknown:
            raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown selector key (known: {', '.join(SELECTOR_KEYS)})")
        for k, v in data.items():
            if not isinstance(v, str) or not v:
                raise ValueError(f"{where}.{k}: must be a non-empty string")
        return cls(**{k: str(v) for k, v in data.items()})

    def matches(self, rec: CallRecord) -> bool:
        if self.service is not None and not _m(rec.service, self.service):
            return False
        if self.kind is not None and not _m(rec.kind, self.kind):
            return False
        if self.provider is not None and not _m(rec.provider, self.provider):
            return False
        if self.model is not None and (rec.kind in (EXECUTE_TOOL, RETRIEVAL) or not _m(rec.target, self.model)):
            return False
        if self.tool is not None and (rec.kind != EXECUTE_TOOL or not _m(rec.target, self.tool)):
            return False
        return not (self.data_source is not None and (rec.kind != RETRIEVAL or not _m(rec.target, self.data_source)))

    def resource_service(self) -> str:
        """``service.name`` for points about the selection: the service when it names exactly one."""
        if self.service and not any(c in self.service for c in "*?["):
            return self.service
        return "gensight"


def with_selector(data: Any, key: str) -> Any:
    """A config entry with its ``selector`` mapping parsed into a ``Selector`` (named
    ``<key>.selector``), ready for ``config_fields.build_section``; other shapes pass unchanged."""
    if isinstance(data, Mapping) and "selector" in data:
        return {**data, "selector": Selector.from_dict(data["selector"], f"{key}.selector")}
    return data


def _m(value: str, pattern: str) -> bool:
    return value == pattern or fnmatch.fnmatchcase(value, pattern)
