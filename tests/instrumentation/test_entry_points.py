"""The instrumentors are reachable the way opentelemetry-instrument finds them."""

from importlib.metadata import entry_points

import pytest
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

EXPECTED = {
    "gensight_anthropic": "AnthropicInstrumentor",
    "gensight_chromadb": "ChromaInstrumentor",
    "gensight_langchain": "LangChainInstrumentor",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_point_loads_the_instrumentor_and_its_library_is_satisfied(name):
    (ep,) = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == name]
    cls = ep.load()
    assert cls.__name__ == EXPECTED[name]
    assert get_dependency_conflicts(cls().instrumentation_dependencies()) is None


def test_a_missing_library_is_a_conflict_so_the_launcher_skips_it():
    assert get_dependency_conflicts(["gensight-no-such-library >= 1"]) is not None


def test_public_api_import_pulls_in_no_llm_sdk():
    import subprocess
    import sys

    code = ("import sys, gensight.instrumentation as g; g.tool; g.retriever; g.track_llm_call; g.configure; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'anthropic', 'chromadb', "
            "'langchain_core')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
