"""Folding the ``anthropic`` SDK's own span into ours: one span per call, not two.

Recent ``anthropic`` releases trace themselves with OpenTelemetry (``anthropic/_tracing.py``,
span ``anthropic.messages.create``) unless ``ANTHROPIC_OPEN_TELEMETRY=false``. For a client whose
SDK tracing is on, the calls we instrument fold the SDK's span into ours:

* ``create`` / ``parse`` (:func:`prepare_call`, run with our span current): skip the SDK's tracing
  for that call and send our trace context in ``extra_headers`` where the SDK would have sent its
  own (only when the client's ``propagation`` option is on; the caller's own headers win);
* the ``messages.stream`` helper, whose request is built before our span exists: a pass-through
  tracer whose span is a non-recording stand-in carrying our span context, so the SDK itself
  propagates ours.

A client with SDK tracing off is left alone. How the SDK's tracer reads is a context variable
that the patched ``BaseClient._tracer`` property consults (:func:`patch_sdk_tracer`,
:class:`SdkTracerMode`), so concurrent calls on other threads/tasks are not affected.
``GENSIGHT_ANTHROPIC_SDK_SPANS=keep`` (or ``instrument(sdk_spans="keep")``) leaves the SDK's span
in place as a child of ours.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

logger = logging.getLogger(__name__)

SDK_SPANS_ENV = "GENSIGHT_ANTHROPIC_SDK_SPANS"
"""``suppress`` (default): one span per call, ours. ``keep``: the SDK's span too, as our child."""

SDK_SPANS_SUPPRESS = "suppress"
SDK_SPANS_KEEP = "keep"

# How the SDK's tracer reads while one of our chat spans starts its HTTP request.
SDK_NORMAL = 0  # not inside our call: the SDK's own tracer
SDK_PASS_THROUGH = 1  # a tracer whose span is a non-recording stand-in for ours (propagates ours)
SDK_SKIP = 2  # no tracer: we already put our trace context into the request's extra_headers
_SDK_TRACER_MODE: contextvars.ContextVar[int] = contextvars.ContextVar("gensight_anthropic_sdk_tracer", default=0)
_original_tracer_get: Callable[[Any], Any] | None = None  # BaseClient._tracer's getter before we patched it


def sdk_spans_mode(value: str | None) -> str:
    """``suppress`` or ``keep``: from ``instrument(sdk_spans=...)``, else the environment (default suppress)."""
    raw = (value if value is not None else os.environ.get(SDK_SPANS_ENV, "")).strip().lower()
    if raw in ("", SDK_SPANS_SUPPRESS):
        return SDK_SPANS_SUPPRESS
    if raw == SDK_SPANS_KEEP:
        return SDK_SPANS_KEEP
    logger.warning("gensight: %s=%r is not 'suppress' or 'keep'; using 'suppress'", SDK_SPANS_ENV, raw)
    return SDK_SPANS_SUPPRESS


def patch_sdk_tracer() -> property | None:
    """Make ``BaseClient._tracer`` a pass-through while our span starts a request. Returns the
    original property (to restore), or ``None`` when this SDK has no tracer of its own."""
    global _original_tracer_get
    try:
        from anthropic import _base_client

        original = _base_client.BaseClient.__dict__.get("_tracer")
        if not isinstance(original, property) or original.fget is None:
            return None
        original_get = original.fget

        def _tracer(self: Any) -> Any:
            mode = _SDK_TRACER_MODE.get()
            tracer = original_get(self)
            if mode == SDK_NORMAL or tracer is None:
                return tracer
            # SDK tracing is on for this client, but our span has this call
            return None if mode == SDK_SKIP else _PASS_THROUGH_TRACER

        _base_client.BaseClient._tracer = property(_tracer, doc=original.__doc__)  # type: ignore[method-assign,assignment]
        _original_tracer_get = original_get
        return original
    except Exception:
        logger.debug("gensight: could not patch the anthropic SDK tracer", exc_info=True)
        return None


class _PassThroughTracer(trace.Tracer):
    """The SDK's tracer while our span is active: its "span" is a non-recording stand-in that
    carries *our* span context. The SDK then records nothing, yet still sends our trace context
    when its ``propagation`` option is on (it injects whatever span context its span has)."""

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> trace.Span:
        return trace.NonRecordingSpan(trace.get_current_span(context).get_span_context())

    @contextmanager  # the SDK only calls start_span; this is for completeness
    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context)
        with trace.use_span(span, end_on_exit=False):
            yield span


_PASS_THROUGH_TRACER = _PassThroughTracer()


class SdkTracerMode:
    """``with``: how the SDK's tracer reads inside (``SDK_*``); restored on exit."""

    __slots__ = ("_mode", "_token")

    def __init__(self, mode: int):
        self._mode = mode
        self._token: contextvars.Token[int] | None = None

    def __enter__(self) -> None:
        if self._mode != SDK_NORMAL:
            self._token = _SDK_TRACER_MODE.set(self._mode)

    def __exit__(self, *exc: Any) -> None:
        if self._token is not None:
            _SDK_TRACER_MODE.reset(self._token)
            self._token = None


def fold_sdk_span(instance: Any, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """How to keep the SDK from making a second span for a ``create``/``parse`` call (run with
    our span current). Cheapest: skip the SDK's tracing entirely and send our trace context in
    ``extra_headers`` ourselves, where the SDK would have sent its own (its ``propagation``
    option on). The caller's own ``extra_headers`` win. Anything unexpected: pass-through mode."""
    get = _original_tracer_get
    if get is None:
        return SDK_NORMAL, kwargs
    try:
        client = getattr(instance, "_client", None)
        if client is None or get(client) is None:
            return SDK_NORMAL, kwargs  # this client has no SDK tracing: nothing to fold
        options = getattr(client, "_open_telemetry", None) or {}
        if not options.get("propagation", True):
            return SDK_SKIP, kwargs
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if not carrier:
            return SDK_SKIP, kwargs
        extra = kwargs.get("extra_headers")
        headers = {**carrier, **extra} if isinstance(extra, Mapping) else carrier
        return SDK_SKIP, {**kwargs, "extra_headers": headers}
    except Exception:
        logger.debug("gensight: could not fold the SDK span; using the pass-through tracer", exc_info=True)
        return SDK_PASS_THROUGH, kwargs


def restore_sdk_tracer(original: property | None) -> None:
    """Undo :func:`patch_sdk_tracer` (``original`` is what it returned; None: nothing to undo)."""
    global _original_tracer_get
    _original_tracer_get = None
    if original is None:
        return
    try:
        from anthropic import _base_client

        _base_client.BaseClient._tracer = original  # type: ignore[method-assign,assignment]
    except Exception:  # pragma: no cover - defensive
        logger.debug("gensight: could not restore the anthropic tracer property", exc_info=True)


def prepare_call(instance: Any, kwargs: dict[str, Any]) -> tuple[SdkTracerMode, dict[str, Any]]:
    """The ``prepare`` step of a ``create``/``parse`` call wrapper (see
    :mod:`gensight.instrumentation.calls`): the tracer mode the SDK call runs in, and its kwargs."""
    mode, call_kwargs = fold_sdk_span(instance, kwargs)
    return SdkTracerMode(mode), call_kwargs
