"""The value readers every provider instrumentor shares (instrumentation/_values.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gensight.instrumentation import attributes as A
from gensight.instrumentation._values import field_of, non_negative_int, server_of, set_tool_calls
from gensight.instrumentation.lifecycle import Telemetry


@pytest.mark.parametrize("value, expected", [(0, 0), (12, 12), (-1, None), (True, None), (3.0, None), ("4", None),
                                             (None, None)])
def test_non_negative_int_accepts_only_counts(value, expected):
    assert non_negative_int(value) == expected


def test_field_of_reads_mappings_and_objects_alike():
    assert field_of({"id": "a"}, "id") == field_of(SimpleNamespace(id="a"), "id") == "a"
    assert field_of({}, "id") is None and field_of(SimpleNamespace(), "id") is None and field_of(None, "id") is None


def _finished_attributes(tracer_provider, span_exporter, calls):
    inv = Telemetry(tracer_provider).start(A.OP_CHAT, provider=A.PROVIDER_OPENAI, request_model="m")
    set_tool_calls(inv, calls)
    inv.stop()
    return span_exporter.get_finished_spans()[-1].attributes


def test_tool_call_names_and_ids_stay_in_step_when_one_is_missing(tracer_provider, span_exporter):
    attrs = _finished_attributes(tracer_provider, span_exporter, [("search", None), (None, "call_2"), ("f", "c3")])
    assert attrs[A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES] == ("search", "", "f")
    assert attrs[A.GENSIGHT_RESPONSE_TOOL_CALL_IDS] == ("", "call_2", "c3")


def test_no_tool_calls_sets_neither_attribute(tracer_provider, span_exporter):
    attrs = _finished_attributes(tracer_provider, span_exporter, [])
    assert A.GENSIGHT_RESPONSE_TOOL_CALL_NAMES not in attrs and A.GENSIGHT_RESPONSE_TOOL_CALL_IDS not in attrs


def _client(scheme: str, host: str, port: int | None):
    return SimpleNamespace(base_url=SimpleNamespace(scheme=scheme, host=host, port=port))


@pytest.mark.parametrize("client, expected", [
    (_client("https", "api.openai.com", None), ("api.openai.com", 443)),
    (_client("http", "127.0.0.1", 8000), ("127.0.0.1", 8000)),
    (_client("http", "localhost", None), ("localhost", 80)),
    (None, (None, None)),
])
def test_server_of_reads_the_base_url(client, expected):
    assert server_of(client) == expected
