import logging

import pytest

from gensight.instrumentation.config import CAPTURE_CONTENT_ENV, ContentCapture, content_capture_mode


def test_content_capture_is_off_by_default():
    assert content_capture_mode({}) is ContentCapture.NO_CONTENT
    assert not content_capture_mode({}).enabled


@pytest.mark.parametrize(
    "value, mode",
    [
        ("true", ContentCapture.SPAN_ONLY),
        ("TRUE", ContentCapture.SPAN_ONLY),
        ("span_only", ContentCapture.SPAN_ONLY),
        ("event_only", ContentCapture.EVENT_ONLY),
        (" Span_And_Event ", ContentCapture.SPAN_AND_EVENT),
        ("false", ContentCapture.NO_CONTENT),
        ("", ContentCapture.NO_CONTENT),
    ],
)
def test_content_capture_values_are_parsed(value, mode):
    assert content_capture_mode({CAPTURE_CONTENT_ENV: value}) is mode


def test_span_and_event_mode_targets_both():
    mode = ContentCapture.SPAN_AND_EVENT
    assert mode.on_span and mode.on_event


def test_bad_capture_value_is_off_and_warned_once(caplog):
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        assert content_capture_mode({CAPTURE_CONTENT_ENV: "yes-please"}) is ContentCapture.NO_CONTENT
    assert sum("yes-please" in r.getMessage() for r in caplog.records) == 1
