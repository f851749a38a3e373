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


def _package_tree(dest: Path) -> Path:
    """The import layout (gensight/, gensight/instrumentation/, ...) as symlinks, for mypy.

    mypy does not understand setuptools' package-dir mapping, so it checks this mirror instead.
    """
    pkg = dest / "gensight"
    pkg.mkdir()
    for item in (ROOT / "core").iterdir():
        if item.name != "__pycache__":
            (pkg / item.name).symlink_to(item)
    (pkg / "instrumentation").symlink_to(ROOT / "instrumentation")
    (pkg / "processor").symlink_to(ROOT / "processor")
    return dest


def test_mypy_is_clean(tmp_path):
    tree = _package_tree(tmp_path)
    proc = subprocess.run(
        _tool("mypy") + ["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"), "-p", "gensight"],
        cwd=tree, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
