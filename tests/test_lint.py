"""Lint and type checks run as part of the test suite, so CI and the README command cover them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["core", "instrumentation", "processor"]


def _tool(name: str) -> list[str]:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} not installed")
    return [exe]


def test_ruff_is_clean():
    proc = subprocess.run(_tool("ruff") + ["check", *PACKAGES, "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean():
    """mypy on the real folders, each file under its installed module name (tests/mypy_layout.py)."""
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "mypy_layout.py"), "--cache-dir", str(ROOT / ".mypy_cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
