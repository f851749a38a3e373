"""The scrape text of a ``PrometheusStore`` snapshot, written by ``prometheus_client``.

The store (export/prometheus.py) decides names, labels and values; this module only turns a
snapshot of it into ``prometheus_client`` metric families (its custom-collector API: a ``collect()``
yielding ``Metric`` objects) and lets the library's own encoders write the classic text format
(0.0.4) or OpenMetrics 1.0 with the histogram exemplars -- so escaping, ``# EOF`` and exemplar
syntax are the library's, not ours.

Why ``Metric`` + ``Sample`` and not ``GaugeMetricFamily.add_metric`` and friends: those helpers fix
one list of label names per family, while the series of one family here carry different label sets
(an error series has ``error_type``, an ok series has not). They also add suffixes the naming
contract forbids, so:

- a monotonic Sum becomes a ``counter`` family only when its name already ends in ``_total`` (the
  family is then the name without it, as OpenMetrics wants, and the sample keeps the full name);
  any other monotonic Sum is an ``unknown`` family (``untyped`` in the classic format) whose sample
  is the bare name. prometheus_client would otherwise write ``<name>_total`` samples (OpenMetrics)
  or ``# TYPE <name>_total`` lines over bare ``<name>`` samples (classic). Series names and labels
  are unchanged; PromQL's ``rate()``/``increase()`` do not look at the type.
- ``le`` and ``quantile`` label values keep the store's decimal spelling (``go_float``: ``0.01``,
  ``67108864``, never ``6.7108864e+07``): they are part of the series identity.
- names are already legacy Prometheus names (the store sanitises them); the encoders run with the
  ``underscores`` escaping, which leaves them as they are -- a label ``__x`` (from an attribute key
  ``__x``) stays unquoted, where ``allow-utf-8`` would quote it into a syntax Prometheus 2.x cannot
  parse. One quirk of that scheme: prometheus_client's OpenMetrics encoder writes a ``:`` in a
  *sample* name as ``_`` (``ns:x`` -> ``ns_x``; the classic encoder keeps it). OTel instrument
  names cannot contain ``:``, so no Gensight metric meets it.
"""

from __future__ import annotations

import decimal
import functools
import math
from bisect import bisect_left
from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from prometheus_client import exposition
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.samples import Exemplar, Sample, Timestamp

_LEGACY_NAMES = openmetrics_exposition.UNDERSCORES  # explicit: the default may change
_TOTAL = "_total"
_NS_PER_S = 1_000_000_000
_BOUND_SETS_CACHED = 64  # distinct bucket layouts whose le spellings are kept (a handful in practice)

Labels = tuple[tuple[str, str], ...]


class Family(NamedTuple):
    type: str  # counter (a monotonic Sum) | gauge | histogram | summary
    help: str


class TraceExemplar(NamedTuple):
    """An OTLP exemplar that carries a trace id, as OpenMetrics needs it."""

    value: float
    trace_id: str  # hex
    span_id: str  # hex, may be empty
    time_unix_nano: int


class Hist(NamedTuple):
    bounds: tuple[float, ...]
    counts: list[int]  # per bucket (not cumulative), len(bounds) + 1
    count_value: int
    sum_value: float | None
    exemplars: tuple[TraceExemplar, ...] = ()


class Summary(NamedTuple):
    quantiles: tuple[tuple[float, float], ...]  # (quantile, value)
    count_value: int
    sum_value: float


Value = int | float | Hist | Summary
Series = tuple[tuple[str, Labels], Value]  # ((family name, sorted labels), value)


def go_float(x: float) -> str:
    """Shortest round-tripping decimal without exponent, as Go's FormatFloat(x, 'f', -1)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    text = format(decimal.Decimal(repr(x)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def render(families: dict[str, Family], series: list[Series], openmetrics: bool) -> str:
    """Classic text (0.0.4) or, with ``openmetrics``, OpenMetrics 1.0 with exemplars and ``# EOF``."""
    collector = SnapshotCollector(families, series, exemplars=openmetrics)
    if openmetrics:
        return openmetrics_exposition.generate_latest(collector, escaping=_LEGACY_NAMES).decode("utf-8")
    return exposition.generate_latest(collector, escaping=_LEGACY_NAMES).decode("utf-8")


class SnapshotCollector:
    """A ``prometheus_client`` collector over one store snapshot: families sorted by name, series
    by labels (a stable scrape). Exemplars are built only when the encoder can write them."""

    def __init__(self, families: dict[str, Family], series: list[Series], exemplars: bool = False) -> None:
        self._families = families
        self._series = sorted(series, key=itemgetter(0))
        self._exemplars = exemplars

    def collect(self) -> Iterator[Metric]:
        for name, members in groupby(self._series, key=lambda s: s[0][0]):
            fam = self._families[name]
            metric = self._metric(name, fam)
            for (_, labels), value in members:
                if isinstance(value, Hist):
                    self._hist_samples(metric.samples, name, dict(labels), value)
                elif isinstance(value, Summary):
                    _summary_samples(metric.samples, name, dict(labels), value)
                else:
                    metric.samples.append(Sample(name, dict(labels), value))
            yield metric

    def _metric(self, name: str, fam: Family) -> Metric:
        if fam.type != "counter":
            return Metric(name, fam.help, fam.type)
        base = name[: -len(_TOTAL)]
        if name.endswith(_TOTAL) and base and base not in self._families:
            return Metric(base, fam.help, "counter")  # samples keep the full ``..._total`` name
        return Metric(name, fam.help, "unknown")

    def _hist_samples(self, out: list[Sample], name: str, labels: dict[str, str], h: Hist) -> None:
        by_bucket = _exemplars_by_bucket(h.bounds, h.exemplars) if self._exemplars else {}
        bucket = name + "_bucket"
        cumulative = 0
        for i, (le, n) in enumerate(zip(_le_values(h.bounds), h.counts[:-1], strict=True)):
            cumulative += n
            out.append(Sample(bucket, {**labels, "le": le}, cumulative, None, by_bucket.get(i)))
        out.append(Sample(bucket, {**labels, "le": "+Inf"}, h.count_value, None, by_bucket.get(len(h.bounds))))
        if h.sum_value is not None:
            out.append(Sample(name + "_sum", labels, h.sum_value))
        out.append(Sample(name + "_count", labels, h.count_value))


@functools.lru_cache(maxsize=_BOUND_SETS_CACHED)
def _le_values(bounds: tuple[float, ...]) -> tuple[str, ...]:
    return tuple(go_float(b) for b in bounds)


def _summary_samples(out: list[Sample], name: str, labels: dict[str, str], s: Summary) -> None:
    for q, v in s.quantiles:
        out.append(Sample(name, {**labels, "quantile": go_float(q)}, v))
    out.append(Sample(name + "_sum", labels, s.sum_value))
    out.append(Sample(name + "_count", labels, s.count_value))


def _exemplars_by_bucket(bounds: tuple[float, ...], exemplars: tuple[TraceExemplar, ...]) -> dict[int, Exemplar]:
    """bucket index -> its exemplar (OpenMetrics allows one per bucket, on the bucket its value falls
    in); on a clash the later exemplar (a failed call comes after the slowest one) wins, so a
    failure is never hidden by a slow success."""
    out: dict[int, Exemplar] = {}
    for e in exemplars:
        if not math.isfinite(e.value):
            continue
        labels = {"trace_id": e.trace_id, "span_id": e.span_id} if e.span_id else {"trace_id": e.trace_id}
        ts = Timestamp(e.time_unix_nano // _NS_PER_S, e.time_unix_nano % _NS_PER_S)
        out[bisect_left(bounds, e.value)] = Exemplar(labels, e.value, ts)
    return out
