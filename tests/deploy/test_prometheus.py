"""Prometheus config and alert rules: promtool accepts them, the rule unit tests pass, and every
alert carries a severity and a runbook_url whose anchor exists in docs/runbooks.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.rules.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks.md"
SEVERITIES = {"page", "ticket", "info"}


def _run(cmd: list[str], cwd: Path = PROM_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def runbook_anchors() -> set[str]:
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", RUNBOOKS.read_text(), re.M)}


def alert_rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def test_rule_files_exist():
    assert RULE_FILES


def test_promtool_accepts_the_rules(promtool):
    proc = _run([promtool, "check", "rules", *map(str, RULE_FILES)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_rejects_a_broken_rule(promtool, tmp_path):
    bad = tmp_path / "bad.rules.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(gensight_calls[5m])\n")
    proc = _run([promtool, "check", "rules", str(bad)], cwd=tmp_path)
    assert proc.returncode != 0


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-local.yml"])
def test_promtool_accepts_the_prometheus_config(promtool, config):
    proc = _run([promtool, "check", "config", config])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rule files found" in proc.stdout  # the rules glob resolves next to the config


def test_rule_unit_tests_pass(promtool):
    """deploy/prometheus/tests: burn-rate windows, budget levels, cost spike, drift, anomaly."""
    tests = sorted(str(p) for p in (PROM_DIR / "tests").glob("*.test.yml"))
    assert tests
    proc = _run([promtool, "test", "rules", *tests])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_severity_summary_and_runbook():
    anchors = runbook_anchors()
    for rule in alert_rules():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path.endswith("docs/runbooks.md"), f"{rule['alert']}: {url}"
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in docs/runbooks.md"
        assert anchor == github_anchor(rule["alert"]), f"{rule['alert']}: anchor should be the alert's name"


def test_alert_names_are_unique():
    names = [r["alert"] for r in alert_rules()]
    assert len(names) == len(set(names))


def test_the_issue_s_alerts_are_all_there():
    exprs = {r["alert"]: r["expr"] for r in alert_rules()}
    burn = [e for e in exprs.values() if "gensight_slo_burn_rate" in e]
    for windows, limit in ((("1h", "5m"), "14.4"), (("6h", "30m"), "6"), (("3d", "6h"), "1")):
        assert any(all(f'window="{w}"' in e for w in windows) and f"> {limit}" in e for e in burn), windows
    assert any("gensight_anomaly_score >= 0.7" in e for e in exprs.values())
    budget = " ".join(e for e in exprs.values() if "gensight_budget_used" in e)
    for level in (">= 0.8", ">= 0.95", ">= 1"):
        assert level in budget
    assert any("gensight_cost_rate" in e for e in exprs.values())
    assert any("gensight_drift" in e for e in exprs.values())


def test_github_anchor_matches_github_slugs():
    assert github_anchor("GensightSLOBurnRateFast") == "gensightsloburnratefast"
    assert github_anchor("Budget 80 % (info)") == "budget-80--info"
