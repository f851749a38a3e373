"""Series registry: the cardinality cap and idle-series expiry.

Why: a model name, tool name or service is data from the wire; a buggy or hostile client can
mint a new one per call. Every analyser keeps per-series state, so the number of series must be
bounded *before* records reach them. The first ``max_series`` distinct series keep their own
identity; records of any further series are rewritten onto ``OVERFLOW_KEY`` (exported with
``otel.metric.overflow=true``, as the Collector's spanmetrics connector does). A series that has
seen no call for ``idle_expiry_s`` of *event* time is forgotten, freeing its slot, and the
analysers are told so they drop its state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress, repeat
from math import isfinite
from operator import is_not, itemgetter
from typing import Any, NamedTuple

from gensight.processor.config_fields import Section, check, fmt
from gensight.processor.records import (
    F_END_NS,
    F_KIND,
    F_PROVIDER,
    F_SERVICE,
    F_TARGET,
    OVERFLOW,
    OVERFLOW_KEY,
    CallRecord,
    SeriesKey,
)

NS_PER_S = 1_000_000_000
RECORD_WIDTH = len(CallRecord._fields)
# the series key is the record's first four fields, sliced without building a SeriesKey
if (F_KIND, F_SERVICE, F_PROVIDER, F_TARGET) != (0, 1, 2, 3):
    raise RuntimeError("CallRecord's series key fields moved: update SeriesRegistry's key slice")


@dataclass(frozen=True)
class SeriesConfig(Section):
    """The ``series`` section: the cardinality cap and idle expiry of the series registry."""

    max_series: int = 2000
    idle_expiry_s: float = 3600.0

    def validate(self, key: str = "series") -> None:
        check(self.max_series > 0, f"{key}.max_series", f"must be > 0, got {fmt(self.max_series)}")
        check(self.idle_expiry_s >= 0, f"{key}.idle_expiry_s", f"must be >= 0, got {fmt(self.idle_expiry_s)}")


class SeriesRegistry:
    def __init__(self, config: SeriesConfig):
        self.max_series = config.max_series
        self.idle_ns = int(config.idle_expiry_s * NS_PER_S)
        # internal key = the record's first four fields (kind, service, provider, target): a
        # tuple slice, so no SeriesKey is built per record
        self._last_seen: dict[tuple, int] = {}
        self.overflowed = 0  # records folded into the overflow series

    def __len__(self) -> int:
        return len(self._last_seen)

    def admit(self, records: Sequence[CallRecord]) -> list[CallRecord]:
        """``records`` with over-cap series rewritten onto the overflow series."""
        seen = self._last_seen
        cap = self.max_series
        out: list[CallRecord] | None = None
        get = seen.get
        for i, r in enumerate(records):
            k = r[:4]
            end = r[F_END_NS]
            last = get(k)
            if last is not None:
                if end > last:
                    seen[k] = end
                continue
            if len(seen) < cap:
                seen[k] = end
                continue
            if r.kind == OVERFLOW:
                continue
            if out is None:
                out = list(records)
            out[i] = r._replace(kind=OVERFLOW, service=OVERFLOW, provider=OVERFLOW, target=OVERFLOW)
            self.overflowed += 1
        return list(records) if out is None else out

    def expire(self, watermark_ns: int) -> list[SeriesKey]:
        """Forget series idle for longer than ``idle_expiry_s`` before ``watermark_ns``."""
        if self.idle_ns <= 0:
            return []
        cutoff = watermark_ns - self.idle_ns
        gone = [k for k, last in self._last_seen.items() if last < cutoff]
        for k in gone:
            del self._last_seen[k]
        return [SeriesKey(k[1], k[0], k[2], k[3]) for k in gone]

    def keys(self) -> list[SeriesKey]:
        return [SeriesKey(k[1], k[0], k[2], k[3]) for k in self._last_seen]


def is_overflow(key: SeriesKey) -> bool:
    return key == OVERFLOW_KEY


# -- grouping a window's records by series, shared by the analysers ------------------------------
#
# Why: the SLI, drift and anomaly analysers all aggregate per series and all get the same window's
# records. Grouping is a dict lookup per record and by far their largest per-record cost, so it is
# done once per record list and the analysers read whole columns of each group with C-level
# builtins (sum, min, max, list.extend) instead of touching every record in Python.


# The CallRecord fields ``series_groups`` hands out as columns (the analysers' inputs); the key
# fields are in ``SeriesGroup.key``, the rest are not extracted (an empty tuple in their place).
COLUMN_FIELDS = ("end_ns", "duration_s", "input_tokens", "output_tokens", "cost_usd", "error", "error_type",
                 "finish_reason", "relevance", "cache_hit", "ttfc_s", "trace_id", "span_id")
# numeric fields whose ``present`` (not None) and ``finite`` (not None, inf or NaN) views are
# computed once per group: several analysers read the same view
PRESENT_FIELDS = ("input_tokens", "output_tokens", "cost_usd", "relevance", "cache_hit", "ttfc_s")
FINITE_FIELDS = ("duration_s", "cost_usd", "relevance")
_COLUMN_POSITIONS = tuple(CallRecord._fields.index(f) for f in COLUMN_FIELDS)
_PRESENT_POSITIONS = tuple(CallRecord._fields.index(f) for f in PRESENT_FIELDS)
_FINITE_POSITIONS = tuple(CallRecord._fields.index(f) for f in FINITE_FIELDS)
View = tuple[Sequence[Any], Any]  # (values, their sum)


class SeriesGroup(NamedTuple):
    """The records of one series within one record list, as columns."""

    key: tuple[str, str, str, str]  # (kind, service, provider, target): the records' first four fields
    series: SeriesKey  # the same, as a SeriesKey
    # columns[i][j]: CallRecord field i (one of COLUMN_FIELDS) of the group's j-th record
    columns: tuple[Sequence[Any], ...]
    # present[i] = present(columns[i]) for the PRESENT_FIELDS, finite[i] = finite(columns[i]) for the
    # FINITE_FIELDS; ((), 0) for every other field
    present: tuple[View, ...]
    finite: tuple[View, ...]


class RecordBatch(list):  # type: ignore[type-arg]  # a list[CallRecord]
    """A list of records that remembers its grouping by series (``WindowClock.assign`` returns
    these). The memo is checked against a snapshot of the contents, so a list changed after it was
    grouped is grouped again, never answered from a stale memo."""

    __slots__ = ("_memo",)

    def __init__(self, records: Iterable[CallRecord] = ()) -> None:
        super().__init__(records)
        self._memo: tuple[tuple[CallRecord, ...], tuple[SeriesGroup, ...]] | None = None


def series_groups(records: Sequence[CallRecord]) -> tuple[SeriesGroup, ...]:
    """``records`` grouped by series: groups in order of first appearance, each group's rows in
    record order (so per-series sums add the same values in the same order as a record loop)."""
    if not isinstance(records, RecordBatch):
        return _group(records)
    snapshot = tuple(records)
    memo = records._memo
    if memo is not None and memo[0] == snapshot:
        return memo[1]
    groups = _group(snapshot)
    records._memo = (snapshot, groups)
    return groups


def _group(records: Sequence[CallRecord]) -> tuple[SeriesGroup, ...]:
    # whole-list columns first (one flat list, one strided slice per field: C speed), then each
    # series' rows picked out of them with one itemgetter call per column
    width = RECORD_WIDTH
    flat = list(chain.from_iterable(records))
    rows: dict[tuple, list[int]] = {}
    for i, k in enumerate(zip(flat[0::width], flat[1::width], flat[2::width], flat[3::width], strict=True)):
        g = rows.get(k)
        if g is None:
            rows[k] = [i]
        else:
            g.append(i)
    columns: list[Sequence[Any]] = [()] * width
    for pos in _COLUMN_POSITIONS:
        columns[pos] = flat[pos::width]
    # fields no record of the list has (say ttfc_s without streaming): no per-group work at all
    n = len(records)
    absent = frozenset(pos for pos in _PRESENT_POSITIONS if columns[pos][0] is None and columns[pos].count(None) == n)
    gathered = tuple(pos for pos in _COLUMN_POSITIONS if pos not in absent)
    new = tuple.__new__  # skips the NamedTuples' Python-level __new__
    if len(rows) == 1:
        k = next(iter(rows))
        return (new(SeriesGroup, (k, new(SeriesKey, (k[1], k[0], k[2], k[3])), *_with_views(columns, absent))),)
    out = []
    for k, ix in rows.items():
        cols: list[Sequence[Any]] = [()] * width
        if absent:
            nones = (None,) * len(ix)
            for pos in absent:
                cols[pos] = nones
        if len(ix) == 1:
            i = ix[0]
            for pos in gathered:
                cols[pos] = (columns[pos][i],)
        else:
            pick = itemgetter(*ix)
            for pos in gathered:
                cols[pos] = pick(columns[pos])
        out.append(new(SeriesGroup, (k, new(SeriesKey, (k[1], k[0], k[2], k[3])), *_with_views(cols, absent))))
    return tuple(out)


_NO_VIEW: View = ((), 0)


def _with_views(
    cols: list[Sequence[Any]], absent: frozenset[int]
) -> tuple[tuple[Sequence[Any], ...], tuple[View, ...], tuple[View, ...]]:
    pres = [_NO_VIEW] * RECORD_WIDTH
    fin = [_NO_VIEW] * RECORD_WIDTH
    for pos in _PRESENT_POSITIONS:
        if pos in absent:
            pres[pos] = ((), 0)
            continue
        pres[pos] = present(cols[pos])
    for pos in _FINITE_POSITIONS:
        view = pres[pos]
        if view is _NO_VIEW:
            view = (cols[pos], None)
        try:
            total = sum(view[0]) if view[1] is None else view[1]
            fin[pos] = (view[0], total) if isfinite(total) else finite(view[0])
        except (TypeError, OverflowError):
            fin[pos] = finite(view[0])
    return tuple(cols), tuple(pres), tuple(fin)


def present(column: Sequence[Any]) -> tuple[Sequence[Any], Any]:
    """(the values that are not None, their sum). The column itself, uncopied, when none is
    missing: ``sum`` raises TypeError on the first None, which is far cheaper than testing each."""
    if not column or column[0] is not None:  # else sum would raise at once: skip the exception
        try:
            return column, sum(column)
        except TypeError:
            pass
    # C-level tests (``v is not None`` via map): ``None in`` / ``count(None)`` would call __eq__
    # of every number
    if not any(map(is_not, column, repeat(None))):
        return (), 0  # a field this kind of call never has
    vals = tuple(compress(column, map(is_not, column, repeat(None))))  # a tuple: the GC stops tracking it
    return vals, sum(vals)


def finite(column: Sequence[Any]) -> tuple[Sequence[Any], Any]:
    """(the values that are neither None nor inf/NaN, their sum); the column itself when all are.
    A finite sum proves every value finite (one inf or NaN makes the sum inf or NaN)."""
    try:
        total = sum(column)
        if isfinite(total):
            return column, total
    except (TypeError, OverflowError):
        if not any(map(is_not, column, repeat(None))):
            return (), 0  # a field this kind of call never has
    vals = tuple([v for v in column if v is not None and isfinite(v)])
    return vals, sum(vals)
