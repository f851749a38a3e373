"""The ``analytics:`` section: every sub-section is built by the one config path and names its dotted key."""

import pytest

from gensight.processor.analyse.analytics import AnalyticsConfig
from gensight.processor.config_fields import ConfigError


@pytest.mark.parametrize("data, key", [
    ({"drift": {"psi_alert": -1}}, "analytics.drift.psi_alert: must be a positive number"),
    ({"anomaly": {"seed": -1}}, "analytics.anomaly.seed: "),
    ({"cost": {"max_tenants": 0}}, "analytics.cost.max_tenants: must be a positive integer"),
    ({"trends": {"alpha": 2}}, "analytics.trends.alpha: "),
    ({"alerts": {"rules": {"drift": {"for_s": -1}}}}, "analytics.alerts.rules.drift.for_s: must be >= 0"),
    ({"alerts": {"webhook": {"url": "http://x", "max_queue": 0}}}, "analytics.alerts.webhook.max_queue: "),
    ({"admin": {"endpoint": "nohost"}}, "analytics.admin.endpoint"),
    ({"admin": {"colour": 1}}, "analytics.admin.colour: unknown key"),
    ({"state": {"snapshot_interval_s": 0}}, "analytics.state.snapshot_interval_s: "),
    ({"slos": [{"target": 0.9}]}, "analytics.slos[0].name: required"),
    ({"slos": [{"name": "a", "target": "high"}]}, "analytics.slos[0].target: must be a number"),
    ({"experiments": [{"name": "e", "by": "v", "control": "a", "treatment": "b", "alpha": 0}]},
     "analytics.experiments[0].alpha: must be in (0, 1)"),
])
def test_every_analytics_section_fails_naming_its_dotted_key(data, key):
    with pytest.raises(ConfigError) as err:
        AnalyticsConfig.from_dict(data, environ={})
    assert str(err.value).startswith(key)


def test_admin_token_comes_from_the_named_variable():
    cfg = AnalyticsConfig.from_dict({"admin": {"token_env": "MY_TOKEN"}}, environ={"MY_TOKEN": "s3cret"})
    assert cfg.admin.token == "s3cret"


def test_alert_rules_inherit_the_section_defaults():
    cfg = AnalyticsConfig.from_dict({"alerts": {"for_s": 120, "runbook_base_url": "https://rb/",
                                                "rules": {"drift": {"cooldown_s": 60}}}}, environ={})
    rule = cfg.alerts.rules["drift"]
    assert (rule.for_s, rule.cooldown_s, rule.runbook_url) == (120.0, 60.0, "https://rb/drift")


def test_a_quality_slo_keeps_its_evaluation_and_others_drop_it():
    slos = AnalyticsConfig.from_dict({"slos": [
        {"name": "q", "type": "quality", "evaluation": "relevance", "target": 0.9},
        {"name": "a", "evaluation": "relevance", "target": 0.9}]}, environ={}).slos
    assert [s.evaluation for s in slos] == ["relevance", None]
