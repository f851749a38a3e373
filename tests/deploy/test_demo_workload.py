"""deploy/demo/workload.py, the compose stack's long-running app, against the real fake provider:
it makes the calls it should with the real openai SDK, and provider errors never stop it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "deploy" / "demo" / "workload.py"


def load_workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gensight_demo_workload", WORKLOAD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake(monkeypatch):
    fake_provider = pytest.importorskip("gensight.fakes")
    with fake_provider.FakeProvider() as provider:
        monkeypatch.setenv("OPENAI_BASE_URL", provider.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "not-a-real-key")
        yield provider


def _summary(err: str) -> tuple[int, int, int]:
    m = re.search(r"done, (\d+) conversations ok, (\d+) failed, (\d+) calls", err)
    assert m, err
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_workload_runs_conversations_with_embeddings_chat_and_tool_round_trips(fake, capsys):
    code = load_workload().main(["--iterations", "4", "--seed", "3", "--rate-per-s", "1000"])
    assert code == 0
    ok, failed, calls = _summary(capsys.readouterr().err)
    assert (ok, failed) == (4, 0)
    assert calls >= 2 * ok  # embedding + chat at least; tool round trips add a third call


def test_provider_errors_are_counted_and_the_loop_goes_on(fake, capsys):
    fake.configure({"force_status": 500, "force_status_count": None})
    code = load_workload().main(["--iterations", "4", "--seed", "3", "--rate-per-s", "1000"])
    assert code == 0
    ok, failed, _ = _summary(capsys.readouterr().err)
    assert (ok, failed) == (0, 4)


@pytest.mark.parametrize("argv", [["--rate-per-s", "0"], ["--models", " , "]])
def test_bad_arguments_are_refused_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        load_workload().main(argv)
    assert exc.value.code == 2
    assert "must" in capsys.readouterr().err
