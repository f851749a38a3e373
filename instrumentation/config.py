"""Instrumentation settings read from the environment.

Public interface::

    from gensight.instrumentation.config import ContentCapture, content_capture_mode
    mode = content_capture_mode()          # reads os.environ, or pass environ={...}
    mode.on_span                            # put gen_ai.input/output.messages on the span
    mode.on_event                           # put them on a span event instead / as well
    mode.enabled                            # either of the two

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (case-insensitive):

==================  ===========================================================
unset / ``false``   off (the default: nothing of the prompt or answer recorded)
``true``            legacy "on": same as ``span_only``
``span_only``       messages as span attributes (JSON strings)
``event_only``      messages on one span event ``gen_ai.client.inference.operation.details``
``span_and_event``  both
anything else       off, with one warning naming the bad value
==================  ===========================================================
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping

logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class ContentCapture(enum.Enum):
    NO_CONTENT = "no_content"
    SPAN_ONLY = "span_only"
    EVENT_ONLY = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    @property
    def on_span(self) -> bool:
        return self in (ContentCapture.SPAN_ONLY, ContentCapture.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (ContentCapture.EVENT_ONLY, ContentCapture.SPAN_AND_EVENT)

    @property
    def enabled(self) -> bool:
        return self is not ContentCapture.NO_CONTENT


_VALUES = {
    "": ContentCapture.NO_CONTENT,
    "false": ContentCapture.NO_CONTENT,
    "no_content": ContentCapture.NO_CONTENT,
    "true": ContentCapture.SPAN_ONLY,
    "span_only": ContentCapture.SPAN_ONLY,
    "event_only": ContentCapture.EVENT_ONLY,
    "span_and_event": ContentCapture.SPAN_AND_EVENT,
}
_warned_values: set[str] = set()


def content_capture_mode(environ: Mapping[str, str] | None = None) -> ContentCapture:
    """The capture mode from ``$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.

    A bad value switches capture *off* (privacy first) and is warned about once per value.
    """
    env = os.environ if environ is None else environ
    raw = env.get(CAPTURE_CONTENT_ENV, "")
    mode = _VALUES.get(raw.strip().lower())
    if mode is not None:
        return mode
    if raw not in _warned_values and len(_warned_values) < 100:
        _warned_values.add(raw)
        logger.warning(
            "gensight: %s=%r is not one of %s; message content capture is off",
            CAPTURE_CONTENT_ENV,
            raw,
            ", ".join(sorted(k for k in _VALUES if k)),
        )
    return ContentCapture.NO_CONTENT
