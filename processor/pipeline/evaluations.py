"""Join evaluation results to the calls they judge: a bounded index of recent calls and a bounded
wait buffer for evaluations that arrive first.

Why: an evaluation (``gen_ai.evaluation.result``) only says *which* call it judges — by the span
id of its parent (a log record's span context, or the span carrying the event), else by
``gen_ai.response.id``. Its series (service, kind, provider, model) is the call's. Judges often
run minutes later, in another service, so the pipeline keeps the most recent calls (at most
``index_max_calls``, none older than ``index_max_age_s`` of event time before the newest call) in
two dicts, by span id and by response id. An evaluation whose call is not there yet waits (at
most ``wait_max`` of them, each at most ``wait_max_age_s`` of event time); when its call arrives it
is joined. Everything runs on the pipeline's worker thread (no locks).

Outcomes, counted as ``gensight.processor.evaluations{outcome}``:

* ``joined``  — joined and counted in its own event-time window;
* ``late``    — joined, but its window had already closed (counted here, never folded in);
* ``unjoined``— its call never showed up within the wait (or before the end of replay); also as
  ``gensight.processor.evaluations.unjoined`` under the evaluation's *own* ``service.name``;
* ``dropped`` — malformed (no name, a score that is not a finite number) or pushed out of a
  full wait buffer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from gensight.processor.config_fields import Section, check_positive
from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.points import SUM, MetricPoint
from gensight.processor.records import F_END_NS, F_RESPONSE_ID, F_SPAN_ID, CallRecord

_SPAN_ID = itemgetter(F_SPAN_ID)
_RESPONSE_ID = itemgetter(F_RESPONSE_ID)
_END_NS = itemgetter(F_END_NS)

PROCESSOR_EVALUATIONS = "gensight.processor.evaluations"
OUTCOMES = ("joined", "unjoined", "late", "dropped")
NS_PER_S = 1_000_000_000
# evaluations' own services named on the unjoined counter; more fold into "_other"
MAX_UNJOINED_SERVICES = 100
OTHER_SERVICE = "_other"
DEFAULT_PASS_LABELS = ("pass", "passed", "positive", "relevant", "correct", "grounded", "true", "yes", "good",
                       "thumbs_up", "helpful")


@dataclass(frozen=True)
class EvaluationsConfig(Section):
    """YAML section ``evaluations``: the join and the pass rule.

    Pass rule (per evaluation): ``error.type`` set -> ``error``; a label -> ``pass`` when it is in
    ``pass_labels`` (case-insensitive), else ``fail``; no label but a score -> ``pass`` when
    ``score >= thresholds[name]`` (else ``pass_threshold``); neither -> ``error``."""

    enabled: bool = True
    index_max_calls: int = 100_000
    index_max_age_s: float = 3600.0
    wait_max: int = 10_000
    wait_max_age_s: float = 900.0
    pass_labels: tuple[str, ...] = DEFAULT_PASS_LABELS
    pass_threshold: float = 0.5
    thresholds: Mapping[str, float] = field(default_factory=dict)
    max_names_per_series: int = 16  # evaluation names per series; more fold into "_other"
    max_labels: int = 16  # score labels per series and name; more fold into "_OTHER"

    def validate(self, path: str = "evaluations") -> None:
        check_positive(self, path, skip=("pass_threshold",))
        if not isinstance(self.pass_threshold, (int, float)) or isinstance(self.pass_threshold, bool) \
                or self.pass_threshold != self.pass_threshold:
            raise ValueError(f"{path}.pass_threshold: must be a number, got {self.pass_threshold!r}")
        for i, label in enumerate(self.pass_labels):
            if not isinstance(label, str) or not label:
                raise ValueError(f"{path}.pass_labels[{i}]: must be a non-empty string, got {label!r}")
        if not isinstance(self.thresholds, Mapping):
            raise ValueError(f"{path}.thresholds: must be a mapping of evaluation name to number")
        for name, thr in self.thresholds.items():
            if not isinstance(thr, (int, float)) or isinstance(thr, bool) or thr != thr:
                raise ValueError(f"{path}.thresholds.{name}: must be a number, got {thr!r}")

    def outcome(self, ev: Evaluation) -> str:
        """``pass``, ``fail`` or ``error`` (the rule in the class docstring)."""
        if ev.error_type:
            return "error"
        if ev.label is not None:
            return "pass" if ev.label.lower() in self._labels else "fail"
        if ev.score is not None:
            return "pass" if ev.score >= self.thresholds.get(ev.name, self.pass_threshold) else "fail"
        return "error"

    @property
    def _labels(self) -> frozenset[str]:
        cached = self.__dict__.get("_labels_cache")
        if cached is None:
            cached = frozenset(label.lower() for label in self.pass_labels)
            object.__setattr__(self, "_labels_cache", cached)
        return cached


class EvaluationBatch(list):  # type: ignore[type-arg]
    """A queue item of evaluations (the pipeline's queue otherwise carries lists of call records)."""

    __slots__ = ()


def _remove(index: dict[Any, list[Evaluation]], key: Any, ev: Evaluation) -> None:
    """Take ``ev`` out of ``index[key]`` (dropping the key when its list empties)."""
    if key and (lst := index.get(key)) is not None:
        lst[:] = [e for e in lst if e is not ev]
        if not lst:
            del index[key]


class EvaluationJoin:
    """The call index, the wait buffer and the outcome counts (see the module docstring)."""

    def __init__(self, config: EvaluationsConfig | None = None) -> None:
        self.config = config = config or EvaluationsConfig()
        self._max_calls = config.index_max_calls
        self._max_age_ns = int(config.index_max_age_s * NS_PER_S)
        self._wait_age_ns = int(config.wait_max_age_s * NS_PER_S)
        self._by_span: dict[bytes, CallRecord] = {}
        self._by_response: dict[str, CallRecord] = {}
        self._order: deque[CallRecord] = deque()  # calls in index order, for eviction
        self._waiting: deque[Evaluation] = deque()
        self._released: set[int] = set()  # ids of joined evaluations still in ``_waiting``
        self._wait_span: dict[bytes, list[Evaluation]] = {}
        self._wait_response: dict[str, list[Evaluation]] = {}
        self.newest_ns = 0  # newest call end seen (event time)
        self.counts = dict.fromkeys(OUTCOMES, 0)  # the worker's counts
        # malformed evaluations (no name, bad score) and ones a full queue refused: counted by the
        # receiving threads under the pipeline's lock, reported as ``dropped``
        self.malformed = 0
        self.unjoined_by_service: dict[str, int] = {}

    def __len__(self) -> int:
        """Calls in the index (up to a quarter over ``index_max_calls`` between bulk evictions)."""
        return len(self._order)

    @property
    def waiting(self) -> int:
        return len(self._waiting) - len(self._released)

    # -- calls -------------------------------------------------------------------------------------
    def add_calls(self, records: Sequence[CallRecord]) -> list[Evaluation]:
        """Index ``records``; returns waiting evaluations that these calls now join.

        Whole-list dict updates (C speed: indexing is paid by every call, judged or not); calls
        without a span id or response id land under the empty key, which no lookup uses."""
        if not records:
            return []
        self._by_span.update(zip(map(_SPAN_ID, records), records, strict=True))
        self._by_response.update(zip(map(_RESPONSE_ID, records), records, strict=True))
        self._order.extend(records)
        newest = max(map(_END_NS, records))
        if newest > self.newest_ns:
            self.newest_ns = newest
        released: list[Evaluation] = []
        if self.waiting > 0:  # set intersections: no per-call Python work when nothing matches
            for sid in self._wait_span.keys() & set(map(_SPAN_ID, records)):
                released.extend(self._release(self._by_span[sid], sid, None))
            for rid in self._wait_response.keys() & set(map(_RESPONSE_ID, records)):
                if rid in self._wait_response:  # not already released through its span id
                    call = self._by_response[rid]
                    released.extend(self._release(call, call[F_SPAN_ID], rid))
        self._evict()
        return released

    def _evict(self) -> None:
        """Drop the oldest calls beyond ``index_max_calls`` and those older than
        ``index_max_age_s``, in bulk: the index may run up to a quarter over its size (and an
        eighth of the age over) between rebuilds, so eviction costs C-speed dict builds amortised
        over many calls instead of a Python step per call."""
        order = self._order
        floor = self.newest_ns - self._max_age_ns
        too_many = len(order) > self._max_calls + self._max_calls // 4
        too_old = bool(order) and order[0][F_END_NS] < floor - self._max_age_ns // 8
        if not (too_many or too_old):
            return
        keep = list(order)[-self._max_calls:]
        if keep and keep[0][F_END_NS] < floor:
            keep = [r for r in keep if r[F_END_NS] >= floor]
        self._order = deque(keep)
        self._by_span = dict(zip(map(_SPAN_ID, keep), keep, strict=True))
        self._by_response = dict(zip(map(_RESPONSE_ID, keep), keep, strict=True))

    def _lookup(self, ev: Evaluation) -> CallRecord | None:
        call = self._by_span.get(ev.span_id) if ev.span_id else None
        if call is None and ev.response_id:
            call = self._by_response.get(ev.response_id)
        return call

    # -- evaluations -------------------------------------------------------------------------------
    def join(self, evaluations: Iterable[Evaluation]) -> list[Evaluation]:
        """Evaluations joined now (``call`` set); the others wait for their call."""
        out: list[Evaluation] = []
        for ev in evaluations:
            call = self._lookup(ev)
            if call is not None:
                out.append(ev._replace(call=call, outcome=self.config.outcome(ev)))
            else:
                self._wait(ev)
        return out

    def _wait(self, ev: Evaluation) -> None:
        if not ev.span_id and not ev.response_id:
            self._unjoined(ev)  # nothing to join on: it can never be joined
            return
        if self.waiting >= self.config.wait_max and (old := self._pop_oldest()) is not None:
            self._forget(old)
            self.counts["dropped"] += 1
        self._waiting.append(ev)
        if len(self._waiting) > 2 * self.config.wait_max:  # released entries piled up behind an old one
            released = self._released
            self._waiting = deque(e for e in self._waiting if id(e) not in released)
            released.clear()
        if ev.span_id:
            self._wait_span.setdefault(ev.span_id, []).append(ev)
        if ev.response_id:
            self._wait_response.setdefault(ev.response_id, []).append(ev)

    def _forget(self, ev: Evaluation) -> None:
        _remove(self._wait_span, ev.span_id, ev)
        _remove(self._wait_response, ev.response_id, ev)

    def _release(self, call: CallRecord, sid: bytes, rid: str | None) -> list[Evaluation]:
        found: list[Evaluation] = []
        if sid:
            found.extend(self._wait_span.get(sid, ()))
        if rid:
            found.extend(e for e in self._wait_response.get(rid, ()) if not any(e is f for f in found))
        for ev in found:
            self._forget(ev)
            self._released.add(id(ev))  # left in the deque, skipped when it reaches the front
        return [ev._replace(call=call, outcome=self.config.outcome(ev)) for ev in found]

    def _pop_oldest(self) -> Evaluation | None:
        """The oldest evaluation still waiting (released ones are dropped from the front lazily:
        their ids stay unique while the deque holds them)."""
        waiting, released = self._waiting, self._released
        while waiting:
            ev = waiting.popleft()
            if id(ev) in released:
                released.discard(id(ev))
                continue
            return ev
        return None

    def _oldest_end_ns(self) -> int | None:
        waiting, released = self._waiting, self._released
        while waiting and id(waiting[0]) in released:
            released.discard(id(waiting.popleft()))
        return waiting[0].end_ns if waiting else None

    def expire(self, now_ns: int | None = None) -> None:
        """Evaluations that waited longer than ``wait_max_age_s`` (event time: the newest call's
        end, or ``now_ns`` when later) give up: ``unjoined``."""
        now = max(self.newest_ns, now_ns or 0)
        floor = now - self._wait_age_ns
        while (oldest := self._oldest_end_ns()) is not None and oldest < floor:
            ev = self._waiting.popleft()
            self._forget(ev)
            self._unjoined(ev)

    def flush(self) -> None:
        """End of input: every waiting evaluation is unjoined."""
        while (ev := self._pop_oldest()) is not None:
            self._unjoined(ev)
        self._released.clear()
        self._wait_span.clear()
        self._wait_response.clear()

    def _unjoined(self, ev: Evaluation) -> None:
        self.counts["unjoined"] += 1
        svc = ev.service
        if svc not in self.unjoined_by_service and len(self.unjoined_by_service) >= MAX_UNJOINED_SERVICES:
            svc = OTHER_SERVICE
        self.unjoined_by_service[svc] = self.unjoined_by_service.get(svc, 0) + 1

    def counted(self, joined: int, late: int) -> None:
        self.counts["joined"] += joined
        self.counts["late"] += late

    # -- self-telemetry ----------------------------------------------------------------------------
    def points(self, self_service: str, start_ns: int, now_ns: int) -> list[MetricPoint]:
        """``gensight.processor.evaluations{outcome}`` (the processor's own service) and the
        unjoined count under each evaluation's own service."""
        counts = dict(self.counts)
        counts["dropped"] += self.malformed
        pts = [MetricPoint(PROCESSOR_EVALUATIONS, SUM, "{evaluation}", self_service, (("outcome", o),),
                           float(counts[o]), start_ns, now_ns) for o in OUTCOMES]
        for svc, n in sorted(self.unjoined_by_service.items()):
            if svc != self_service:
                pts.append(MetricPoint(PROCESSOR_EVALUATIONS, SUM, "{evaluation}", svc, (("outcome", "unjoined"),),
                                       float(n), start_ns, now_ns))
        return pts
