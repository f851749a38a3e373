"""The one HOST:PORT parser behind every listener and bare export target."""

import pytest

from gensight.processor.config import ConfigError, config_from_mapping
from gensight.processor.endpoint import parse_endpoint


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:4317", ("127.0.0.1", 4317)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("[::1]:9464", ("::1", 9464)),
    ("collector:65535", ("collector", 65535)),
])
def test_host_and_port_are_split(value, expected):
    assert parse_endpoint(value, "k") == expected


@pytest.mark.parametrize("value", ["nohost", ":4317", "[]:4317", "host:", "host:http", "host:65536", "host:-1"])
def test_bad_endpoint_names_the_key(value):
    with pytest.raises(ConfigError) as err:
        parse_endpoint(value, "receivers.grpc.endpoint")
    assert str(err.value) == f"receivers.grpc.endpoint: must be HOST:PORT, got {value!r}"


@pytest.mark.parametrize("section", [
    {"receivers": {"http": {"endpoint": "h:99999"}}},
    {"prometheus": {"endpoint": "h:99999"}},
    {"export": {"endpoint": "h:99999"}},
])
def test_every_endpoint_in_the_config_uses_the_same_rule(section):
    key = next(iter(section)) + ("" if "receivers" not in section else ".http") + ".endpoint"
    with pytest.raises(ConfigError, match=f"^{key}: must be HOST:PORT, got 'h:99999'$"):
        config_from_mapping(section)
