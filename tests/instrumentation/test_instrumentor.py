"""The one set-up / tear-down path every Gensight instrumentor takes (instrumentation/instrumentor.py)."""

from __future__ import annotations

import sys
import types

import pytest

from gensight.instrumentation.anthropic import AnthropicInstrumentor
from gensight.instrumentation.chroma import ChromaInstrumentor
from gensight.instrumentation.instrumentor import GensightInstrumentor
from gensight.instrumentation.langchain import LangChainInstrumentor
from gensight.instrumentation.openai import OpenAIInstrumentor

FAKE_LIBRARY = "gensight_test_fake_library"


@pytest.mark.parametrize("cls", [OpenAIInstrumentor, AnthropicInstrumentor, ChromaInstrumentor, LangChainInstrumentor])
def test_every_instrumentor_takes_the_shared_path(cls):
    assert issubclass(cls, GensightInstrumentor)
    for method in ("_instrument", "_uninstrument", "instrumentation_dependencies"):
        assert getattr(cls, method) is getattr(GensightInstrumentor, method), f"{cls.__name__} overrides {method}"
    assert cls.scope.startswith("gensight.instrumentation.")


class _Client:
    def call(self, x):
        return x + 1


def _tag_wrapper(wrapped, instance, args, kwargs):
    return ("wrapped", wrapped(*args, **kwargs))


class _Probe(GensightInstrumentor):
    scope = "gensight.instrumentation.probe"
    dependencies = ("opentelemetry-api >= 1.0",)  # installed: the dependency check passes
    restored = 0

    def _wrap_methods(self, telemetry, kwargs):
        self.found = [
            self._wrap(FAKE_LIBRARY, "Client", "call", _tag_wrapper),
            self._wrap(FAKE_LIBRARY, "Client", "no_such_method", _tag_wrapper),
            self._wrap(FAKE_LIBRARY + "_absent", "Client", "call", _tag_wrapper),
            self._wrap(FAKE_LIBRARY, None, "helper", _tag_wrapper),
        ]

    def _restore(self):
        type(self).restored += 1


@pytest.fixture
def fake_library(monkeypatch):
    module = types.ModuleType(FAKE_LIBRARY)
    module.Client = _Client
    module.helper = lambda x: x * 2
    monkeypatch.setitem(sys.modules, FAKE_LIBRARY, module)
    original = _Client.__dict__["call"]
    yield module
    _Client.call = original  # in case a test failed half way


def test_wrap_wraps_what_exists_and_skips_what_this_library_version_lacks(fake_library, tracer_provider):
    probe = _Probe()
    probe.instrument(tracer_provider=tracer_provider)
    try:
        assert probe.found == [True, False, False, True]
        assert _Client().call(1) == ("wrapped", 2)
        assert fake_library.helper(3) == ("wrapped", 6)
    finally:
        probe.uninstrument()


def test_a_fresh_handle_unwraps_everything_and_runs_restore(fake_library, tracer_provider):
    _Probe().instrument(tracer_provider=tracer_provider)
    before = _Probe.restored
    _Probe().uninstrument()  # BaseInstrumentor is a singleton whose __init__ runs again
    assert _Client().call(1) == 2 and fake_library.helper(3) == 6
    assert _Probe.restored == before + 1
    assert _Probe()._wrapped == []
