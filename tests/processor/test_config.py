"""Config: defaults, YAML loading, CLI overrides; bad keys and values fail fast naming the key."""

from __future__ import annotations

import pytest

from gensight.processor.config import ConfigError, config_from_mapping, load_config


def test_defaults_are_valid():
    cfg = load_config(None)
    assert cfg.pipeline.window_s == 60 and cfg.series.max_series == 2000
    assert cfg.receivers.grpc is not None and cfg.receivers.grpc.endpoint == "127.0.0.1:4317"


def test_yaml_file_is_loaded(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("pipeline:\n  window_s: 10\nseries:\n  max_series: 50\nnormalise:\n  tenant_attributes: [app.tenant]\n"
                 "analytics:\n  slo: {objectives: []}\n")
    cfg = load_config(f)
    assert cfg.pipeline.window_s == 10 and cfg.series.max_series == 50
    assert cfg.normalise.tenant_attributes == ("app.tenant",)
    assert cfg.analytics == {"slo": {"objectives": []}}


def test_cli_values_override_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("pipeline:\n  window_s: 10\n")
    cfg = load_config(f).with_values({"pipeline.window_s": 30, "receivers.grpc.endpoint": "0.0.0.0:5317",
                                      "state.dir": None})
    assert cfg.pipeline.window_s == 30 and cfg.receivers.grpc.endpoint == "0.0.0.0:5317"


@pytest.mark.parametrize("data, message", [
    ({"pipeline": {"window_s": -5}}, "pipeline.window_s: must be > 0, got -5"),
    ({"pipeline": {"windw_s": 5}}, "pipeline.windw_s: unknown key"),
    ({"pipline": {}}, "pipline: unknown section"),
    ({"series": {"max_series": "many"}}, "series.max_series: must be an integer"),
    ({"series": {"max_series": 0}}, "series.max_series: must be > 0"),
    ({"pipeline": {"idle_advance": "yes"}}, "pipeline.idle_advance: must be true or false"),
    ({"receivers": {"grpc": {"endpoint": "nohost"}}}, "receivers.grpc.endpoint"),
    ({"receivers": {"grpc": None, "http": None}}, "receivers: enable at least one"),
    ({"export": {"protocol": "carrier-pigeon"}}, "export.protocol"),
    ({"normalise": {"pricing_file": "/no/such/file.json"}}, "normalise.pricing_file: no such file"),
    ({"queue": {"max_spans": -1}}, "queue.max_spans: must be > 0"),
])
def test_bad_config_names_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data)
    assert message in str(err.value)


def test_bad_cli_override_names_the_key():
    with pytest.raises(ConfigError, match="pipeline.window_s: must be > 0"):
        load_config(None).with_values({"pipeline.window_s": 0})


def test_invalid_yaml_is_a_config_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("pipeline: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(f)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_deprecated_analytics_state_interval_sets_the_one_snapshot_clock_and_warns(caplog):
    with caplog.at_level("WARNING", logger="gensight.processor.config"):
        cfg = config_from_mapping({"analytics": {"state": {"snapshot_interval_s": 5}}})
    assert cfg.state.snapshot_interval_s == 5
    assert [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()] == [
        "gensight: analytics.state.snapshot_interval_s is deprecated: use state.snapshot_interval_s (now 5)"]


def test_top_level_state_interval_wins_over_the_deprecated_alias(caplog):
    with caplog.at_level("WARNING", logger="gensight.processor.config"):
        cfg = config_from_mapping({"state": {"snapshot_interval_s": 7},
                                   "analytics": {"state": {"snapshot_interval_s": 5}}})
    assert cfg.state.snapshot_interval_s == 7
    assert sum("ignored" in r.getMessage() for r in caplog.records) == 1


def test_bad_deprecated_alias_value_names_the_key_it_was_given_as():
    with pytest.raises(ConfigError, match=r"^analytics\.state\.snapshot_interval_s: "):
        config_from_mapping({"analytics": {"state": {"snapshot_interval_s": -1}}})
