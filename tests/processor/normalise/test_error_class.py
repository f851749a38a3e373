"""error.type spellings of the same failure map to one documented class."""

import pytest

from gensight.processor.normalise.error_class import ERROR_CLASSES, error_class
from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser


@pytest.mark.parametrize("raw, cls", [
    ("RateLimitError", "rate_limit"), ("rate_limit_error", "rate_limit"), ("<class 'openai.RateLimitError'>", "rate_limit"),
    ("429", "rate_limit"), ("overloaded_error", "overloaded"), ("HTTP 503", "overloaded"),
    ("APITimeoutError", "timeout"), ("TimeoutError", "timeout"), ("InternalServerError", "server_error"),
    ("api_error", "server_error"), ("502", "server_error"), ("BadRequestError", "client_error"),
    ("authentication_error", "client_error"), ("418", "client_error"), ("ContentFilterError", "content_filter"),
    ("_OTHER", "other"), ("APIConnectionError", "other"), ("", "other"), (None, "other"),
])
def test_spellings_map_to_their_class(raw, cls):
    assert error_class(raw) == cls
    assert cls in ERROR_CLASSES


def test_normaliser_fills_the_error_class_of_failed_calls_only(otlp):
    n = Normaliser(NormaliseConfig(), None, b"k")
    failed = n.normalise(otlp.request([otlp.chat(**{"error.type": "<class 'openai.RateLimitError'>"})])).records[0]
    ok = n.normalise(otlp.request([otlp.chat()])).records[0]
    assert (failed.error_type, failed.error_class) == ("<class 'openai.RateLimitError'>", "rate_limit")
    assert ok.error_class is None
