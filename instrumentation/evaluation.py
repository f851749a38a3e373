"""Record evaluation results and user feedback: the GenAI event ``gen_ai.evaluation.result``.

Teams score answers (an LLM judge, a groundedness check, a regex guard, a user's thumbs up or
down); the GenAI semantic conventions have one record for that, and the Gensight processor turns
it into quality SLIs, SLOs and trend alerts::

    from gensight.instrumentation import record_evaluation, record_feedback

    with track_llm_call("openai", "gpt-4o-mini") as call:
        reply = ...
    record_evaluation("relevance", score=0.82, label="relevant", span=call.invocation.span)
    record_feedback("negative", response_id=reply.id)   # later, from another request

Where the record goes:

* a **log record** with event name ``gen_ai.evaluation.result`` through the Logs API, parented
  to ``span`` (else the current span) so it carries that span's trace and span id — the form the
  conventions prefer, since span events are being deprecated. ``opentelemetry-instrument`` sets
  up a logger provider only when ``OTEL_LOGS_EXPORTER`` is ``otlp`` (or ``console``); with
  :func:`gensight.instrumentation.configure` pass ``logger_provider=``.
* when no logger provider is configured, a **span event** of the same name on that span (the
  older form; the processor reads both). A span that has already ended cannot take an event:
  then only the log record path works (pass ``response_id`` so the processor can still join).

``explanation`` is content (it may quote the answer): recorded only when message content
capture is on (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``). Nothing here raises into
the application: bad arguments are dropped with a debug log, and the call returns ``False``.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, get_logger_provider
from opentelemetry._logs._internal import NoOpLoggerProvider, ProxyLoggerProvider

from gensight.instrumentation import attributes as A

logger = logging.getLogger(__name__)

INSTRUMENTATION_SCOPE = "gensight.instrumentation.evaluation"
MAX_NAME_CHARS = 128  # an evaluation name is a metric attribute downstream: keep it short
MAX_LABEL_CHARS = 128
MAX_EXPLANATION_CHARS = 4096

_provider: LoggerProvider | None = None  # set by configure(logger_provider=...)
_provider_lock = threading.Lock()


def set_logger_provider(provider: LoggerProvider | None) -> None:
    """Where evaluation log records go; ``None``: the global logger provider (what
    ``opentelemetry-instrument`` sets up). Called by ``configure(logger_provider=...)``."""
    global _provider
    with _provider_lock:
        _provider = provider


def _logger_provider() -> LoggerProvider | None:
    """The configured provider, else the global one; None when nothing real is set up (the
    global is then a proxy / no-op that would silently drop the record)."""
    provider = _provider if _provider is not None else get_logger_provider()
    if isinstance(provider, (ProxyLoggerProvider, NoOpLoggerProvider)):
        return None
    return provider


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value[:limit] if value else None


def _capture_on() -> bool:
    from gensight.instrumentation.manual import default_telemetry

    return default_telemetry().capture.enabled


def evaluation_attributes(
    name: str,
    *,
    score: float | None = None,
    label: str | None = None,
    explanation: str | None = None,
    response_id: str | None = None,
    error_type: str | None = None,
    capture_content: bool = False,
) -> dict[str, Any] | None:
    """The semconv attributes of one evaluation, or None when ``name`` is unusable."""
    eval_name = _text(name, MAX_NAME_CHARS)
    if not eval_name:
        return None
    attrs: dict[str, Any] = {A.GEN_AI_EVALUATION_NAME: eval_name}
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            logger.debug("gensight: ignoring evaluation score %r (not a finite number)", score)
        else:
            attrs[A.GEN_AI_EVALUATION_SCORE_VALUE] = float(score)
    if (text := _text(label, MAX_LABEL_CHARS)) is not None:
        attrs[A.GEN_AI_EVALUATION_SCORE_LABEL] = text
    if (text := _text(response_id, MAX_LABEL_CHARS * 2)) is not None:
        attrs[A.GEN_AI_RESPONSE_ID] = text
    if (text := _text(error_type, MAX_LABEL_CHARS)) is not None:
        attrs[A.ERROR_TYPE] = text
    if capture_content and (text := _text(explanation, MAX_EXPLANATION_CHARS)) is not None:
        attrs[A.GEN_AI_EVALUATION_EXPLANATION] = text
    return attrs


def record_evaluation(
    name: str,
    *,
    score: float | None = None,
    label: str | None = None,
    explanation: str | None = None,
    response_id: str | None = None,
    span: trace.Span | None = None,
    error_type: str | None = None,
) -> bool:
    """Record one ``gen_ai.evaluation.result`` for the call ``span`` (default: the current span).

    Returns True when the result was handed to a logger provider or put on a span, False when
    it could not be recorded anywhere (never raises)."""
    try:
        attrs = evaluation_attributes(
            name, score=score, label=label, explanation=explanation, response_id=response_id,
            error_type=error_type, capture_content=explanation is not None and _capture_on(),
        )
        if attrs is None:
            logger.debug("gensight: record_evaluation needs a non-empty name; nothing recorded")
            return False
        target = span if span is not None else trace.get_current_span()
        provider = _logger_provider()
        if provider is not None:
            log = provider.get_logger(INSTRUMENTATION_SCOPE)
            log.emit(event_name=A.EVENT_EVALUATION_RESULT, attributes=attrs,
                     context=trace.set_span_in_context(target))
            return True
        if target.is_recording():
            target.add_event(A.EVENT_EVALUATION_RESULT, attributes=attrs)
            return True
        logger.debug("gensight: no logger provider and no recording span; evaluation %r not recorded", name)
        return False
    except Exception:  # telemetry must never break the application
        logger.debug("gensight: recording an evaluation failed", exc_info=True)
        return False


def record_feedback(
    label: str,
    *,
    score: float | None = None,
    explanation: str | None = None,
    response_id: str | None = None,
    span: trace.Span | None = None,
) -> bool:
    """A user's feedback on a call: ``record_evaluation("user_feedback", label=...)``; use
    ``positive`` / ``negative`` (the processor's default pass list has ``positive``)."""
    return record_evaluation(A.FEEDBACK_EVALUATION_NAME, score=score, label=label, explanation=explanation,
                             response_id=response_id, span=span)
