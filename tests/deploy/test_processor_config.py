"""deploy/gensight/gensight.yaml (the compose processor's config) passes the processor's own
start-up validation, and the compose file hands it to `gensight serve`."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "gensight" / "gensight.yaml"


def test_compose_processor_reads_the_config(compose):
    svc = compose["services"]["processor"]
    cmd = svc["command"]
    container_path = cmd[cmd.index("--config") + 1]
    assert f"./deploy/gensight/gensight.yaml:{container_path}:ro" in svc["volumes"]


def test_config_passes_the_processor_validation():
    from gensight.processor.config import load_config

    config = load_config(str(CONFIG))
    assert config.pipeline.window_s == 60


def test_analytics_section_passes_the_analytics_validation():
    from gensight.processor.analyse.analytics import AnalyticsConfig

    analytics = AnalyticsConfig.from_dict(yaml.safe_load(CONFIG.read_text())["analytics"])
    assert {s.name for s in analytics.slos} == {"chat-availability", "chat-latency", "chat-cost"}
    assert analytics.cost.per_tenant is True


def test_slos_and_budgets_name_the_demo_app_service(compose):
    service = compose["services"]["demo-app"]["environment"]["OTEL_SERVICE_NAME"]
    data = yaml.safe_load(CONFIG.read_text())["analytics"]
    for item in data["slos"] + data["budgets"]:
        assert item["selector"]["service"] == service, item["name"]


def test_processor_alert_runbooks_point_at_existing_sections():
    from gensight.processor.analyse.analytics import AnalyticsConfig

    text = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#{1,6}\s+(.+)$", text, re.M)}
    analytics = AnalyticsConfig.from_dict(yaml.safe_load(CONFIG.read_text())["analytics"])
    urls = {name: rule.runbook_url for name, rule in analytics.alerts.rules.items()}
    assert set(urls) >= {"slo_burn_fast", "slo_burn_medium", "slo_burn_slow", "drift", "anomaly", "cost_spike", "budget"}
    for name, url in urls.items():
        path, _, anchor = url.partition("#")
        assert path == "docs/runbooks.md" and anchor in anchors, (name, url)
