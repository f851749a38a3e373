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


HIDE_LIBRARIES = """
import os
import sys
import opentelemetry.instrumentation.dependencies as deps
from opentelemetry.util._importlib_metadata import PackageNotFoundError

HIDDEN = ("anthropic", "chromadb", "langchain_core", "langchain-core")
real_version = deps.version


def version(name):
    if name in HIDDEN:
        if os.environ["SCENARIO"] == "too_old":
            return "0.0.1"
        raise PackageNotFoundError(name)
    return real_version(name)


deps.version = version


class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if os.environ["SCENARIO"] == "absent":
    sys.meta_path.insert(0, Hide())
from opentelemetry.instrumentation.auto_instrumentation import initialize

initialize(swallow_exceptions=False)  # what opentelemetry-instrument's sitecustomize runs
from gensight.instrumentation.anthropic import AnthropicInstrumentor
from gensight.instrumentation.chroma import ChromaInstrumentor
from gensight.instrumentation.langchain import LangChainInstrumentor

print([cls()._is_instrumented_by_opentelemetry for cls in
       (AnthropicInstrumentor, ChromaInstrumentor, LangChainInstrumentor)])
"""


@pytest.mark.parametrize("scenario", ["absent", "too_old"])
def test_launcher_skips_instrumentors_whose_library_is_absent_or_too_old(scenario):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
               SCENARIO=scenario)
    out = subprocess.run([sys.executable, "-c", HIDE_LIBRARIES], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[False, False, False]"]
