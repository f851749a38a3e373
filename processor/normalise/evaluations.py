"""Evaluation results (``gen_ai.evaluation.result``) out of OTLP log records and span events.

The GenAI conventions record a judgement of a call (an LLM judge's score, a guard's verdict, a
user's thumbs up) as the event ``gen_ai.evaluation.result``: through the Logs/Events API as a log
record parented to the judged span (the current form), or as a span event on that span (the older
form, still common). Both become the same ``Evaluation``; the pipeline then joins it to the call
it judges (``pipeline/evaluations.py``) by span id, else by ``gen_ai.response.id``.

Nothing here trusts its input: a result without a name, or with a score that is not a finite
number, is counted as *malformed* (the pipeline reports it as ``outcome=dropped``); names and
labels are clipped like every other key. The explanation (content) is never read.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from gensight.processor.normalise.dialects import SERVICE_NAME, UNKNOWN_SERVICE, clip_key
from gensight.processor.records import CallRecord

EVENT_NAME = "gen_ai.evaluation.result"
EVENT_NAME_ATTRIBUTE = "event.name"  # older SDKs put the event name in an attribute
EVALUATION_NAME = "gen_ai.evaluation.name"
SCORE_VALUE = "gen_ai.evaluation.score.value"
SCORE_LABEL = "gen_ai.evaluation.score.label"
RESPONSE_ID = "gen_ai.response.id"
ERROR_TYPE = "error.type"
_EVENT_BYTES = EVENT_NAME.encode()


class Evaluation(NamedTuple):
    """One evaluation result. ``end_ns`` is its own event time (the window it counts in) and sits
    where ``CallRecord.end_ns`` does, so the window clock assigns both alike. ``call`` is the
    judged call's record once joined (its series key, its attributes for SLO selectors), and
    ``outcome`` the pass rule's verdict (``EvaluationsConfig.outcome``), set by the join."""

    name: str
    score: float | None
    label: str | None
    error_type: str | None
    service: str  # the evaluation's own resource service.name (attribution when unjoinable)
    end_ns: int
    trace_id: bytes
    span_id: bytes
    response_id: str | None
    call: CallRecord | None = None
    outcome: str = ""  # once joined: "pass" | "fail" | "error" by the configured pass rule


if Evaluation._fields.index("end_ns") != CallRecord._fields.index("end_ns"):
    raise RuntimeError("Evaluation.end_ns must sit where CallRecord.end_ns does (the window clock reads it by position)")


def _scalar(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which in ("string_value", "int_value", "double_value", "bool_value"):
        return getattr(v, which)
    return None


def _text(x: Any) -> str | None:
    if x is None or isinstance(x, bool):
        return None if x is None else str(x).lower()
    s = x if isinstance(x, str) else str(x)
    return clip_key(s) if s else None


def _score(x: Any) -> float | None | bool:
    """A finite score, None when absent, False when present but unusable."""
    if x is None:
        return None
    if isinstance(x, bool):
        return False
    try:
        v = float(x)
    except (TypeError, ValueError):
        return False
    return v if math.isfinite(v) else False


def _service(resource: Any) -> str:
    for kv in resource.attributes:
        if kv.key == SERVICE_NAME:
            v = _scalar(kv.value)
            if isinstance(v, str) and v:
                return clip_key(v)
    return UNKNOWN_SERVICE


def _evaluation(attributes: Any, service: str, time_ns: int, trace_id: bytes, span_id: bytes) -> Evaluation | None:
    name = score = label = error = response_id = None
    for kv in attributes:  # one pass, no dict: upb wrapper creation per attribute is the cost here
        key = kv.key
        if key == EVALUATION_NAME:
            name = _text(_scalar(kv.value))
        elif key == SCORE_VALUE:
            score = _score(_scalar(kv.value))
        elif key == SCORE_LABEL:
            label = _text(_scalar(kv.value))
        elif key == RESPONSE_ID:
            response_id = _text(_scalar(kv.value))
        elif key == ERROR_TYPE:
            error = _text(_scalar(kv.value))
    if name is None or score is False or not 0 < time_ns < 2**63:
        return None
    return Evaluation(name, score, label, error, service, time_ns, bytes(trace_id), bytes(span_id),  # type: ignore[arg-type]
                      response_id)


def _is_evaluation_record(lr: Any) -> bool:
    if lr.event_name == EVENT_NAME:
        return True
    if lr.event_name:
        return False
    return any(kv.key == EVENT_NAME_ATTRIBUTE and kv.value.string_value == EVENT_NAME for kv in lr.attributes)


def evaluations_from_logs(request: Any) -> tuple[list[Evaluation], int, int]:
    """(evaluations, malformed, other log records) of an ``ExportLogsServiceRequest``. Records
    that are not evaluation results are ignored (counted), never an error."""
    out: list[Evaluation] = []
    malformed = other = 0
    for rl in request.resource_logs:
        service = _service(rl.resource)
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                if not _is_evaluation_record(lr):
                    other += 1
                    continue
                ev = _evaluation(lr.attributes, service, lr.time_unix_nano or lr.observed_time_unix_nano,
                                 lr.trace_id, lr.span_id)
                if ev is None:
                    malformed += 1
                else:
                    out.append(ev)
    return out, malformed, other


def evaluations_from_spans(request: Any, raw: bytes | None = None) -> tuple[list[Evaluation], int]:
    """(evaluations, malformed) from ``gen_ai.evaluation.result`` span events of an
    ``ExportTraceServiceRequest``. With the request's bytes, requests without the event name
    anywhere are skipped by one substring search (the common case costs no per-span work)."""
    if raw is not None and _EVENT_BYTES not in raw:
        return [], 0
    out: list[Evaluation] = []
    malformed = 0
    for rs in request.resource_spans:
        service: str | None = None
        for ss in rs.scope_spans:
            for span in ss.spans:
                if not span.events:
                    continue
                for event in span.events:
                    if event.name != EVENT_NAME:
                        continue
                    if service is None:
                        service = _service(rs.resource)
                    ev = _evaluation(event.attributes, service, event.time_unix_nano or span.end_time_unix_nano,
                                     span.trace_id, span.span_id)
                    if ev is None:
                        malformed += 1
                    else:
                        out.append(ev)
    return out, malformed
