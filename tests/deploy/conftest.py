"""Shared fixtures for the deployment checks (compose, collector configs, Prometheus, Grafana).

Nothing here needs Docker: the files are parsed and cross-checked, and Prometheus' own
`promtool` (Debian's `prometheus` package, installed by .ci/run) checks the rules.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COLLECTOR_CONFIGS = sorted((ROOT / "collector-config").glob("*.yaml"))
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="session")
def promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool not installed (Debian: apt-get install -y prometheus; .ci/run installs it)")
    return exe
