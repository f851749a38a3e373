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


@pytest.mark.parametrize("raw, status, cls", [
    ("_OTHER", 429, "rate_limit"), ("APIError", 429, "rate_limit"), ("APIStatusError", 503, "overloaded"),
    ("_OTHER", 404, "client_error"), ("_OTHER", None, "other"), ("HTTP 503", 429, "overloaded"),
    ("RateLimitError", 500, "rate_limit"),
])
def test_the_http_status_classifies_an_uninformative_error_type(raw, status, cls):
    assert error_class(raw, status) == cls


@pytest.mark.parametrize("accelerate", [True, False], ids=["c-scanner", "protobuf-api"])
@pytest.mark.parametrize("key, value, cls", [
    ("http.response.status_code", 429, "rate_limit"), ("http.status_code", 504, "timeout"),
    ("http.response.status_code", "529", "overloaded"), ("http.response.status_code", 99999, "other"),
    ("http.response.status_code", "soon", "other"),
])
def test_normaliser_reads_the_http_status_of_a_failed_call(otlp, accelerate, key, value, cls):
    n = Normaliser(NormaliseConfig(), None, b"k", accelerate=accelerate)
    rec = n.normalise(otlp.request([otlp.chat(**{"error.type": "_OTHER", key: value})])).records[0]
    assert (rec.error_type, rec.error_class) == ("_OTHER", cls)


def test_an_http_status_alone_does_not_make_a_call_failed(otlp):
    rec = Normaliser(NormaliseConfig(), None, b"k").normalise(
        otlp.request([otlp.chat(**{"http.response.status_code": 429})])).records[0]
    assert (rec.error, rec.error_class) == (False, None)
