"""The shared field checks behind the analytics config classes."""

import math
from dataclasses import dataclass

import pytest

from gensight.processor.config_fields import ConfigError, Section, check, fields_from_mapping, reject_unknown


@dataclass(frozen=True)
class Sample:
    enabled: bool = True
    count: int = 3
    ratio: float = 0.5
    mode: str = "a"


def test_unknown_key_is_named_with_its_full_path_and_the_known_keys():
    with pytest.raises(ValueError, match=r"^sec\.sub\.colour: unknown key \(known: count, enabled, mode, ratio\)$"):
        fields_from_mapping(Sample, {"colour": 1}, "sec.sub", {"mode": lambda v, k: v})


def test_unknown_key_list_keeps_declared_order_when_asked():
    with pytest.raises(ValueError, match=r"known: b, a\)"):
        reject_unknown({"z": 1}, ("b", "a"), "x", sort=False)


def test_fields_are_checked_by_the_type_of_their_default():
    kw = fields_from_mapping(Sample, {"enabled": False, "count": 7, "ratio": 2}, "s")
    assert kw == {"enabled": False, "count": 7, "ratio": 2.0}
    assert isinstance(kw["ratio"], float)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("enabled", "yes", "s.enabled: must be true or false, got 'yes'"),
    ("count", 0, "s.count: must be a positive integer, got 0"),
    ("count", True, "s.count: must be a positive integer, got True"),
    ("ratio", math.inf, "s.ratio: must be a positive number, got inf"),
    ("ratio", math.nan, "s.ratio: must be a positive number, got nan"),
    ("ratio", -1, "s.ratio: must be a positive number, got -1"),
])
def test_bad_values_fail_naming_the_key(key, value, message):
    with pytest.raises(ValueError) as err:
        fields_from_mapping(Sample, {key: value}, "s")
    assert str(err.value) == message


def test_a_special_rule_gets_the_value_and_the_full_key():
    seen = []
    kw = fields_from_mapping(Sample, {"mode": "b"}, "s", {"mode": lambda v, k: seen.append(k) or v.upper()})
    assert kw == {"mode": "B"} and seen == ["s.mode"]


def test_a_field_without_a_rule_for_its_type_is_a_programming_error():
    with pytest.raises(TypeError, match="s.mode"):
        fields_from_mapping(Sample, {"mode": "b"}, "s")


# ---------------------------------------------------------------- Section: the one build path


@dataclass(frozen=True)
class Inner(Section):
    limit: int = 3

    def validate(self, key: str) -> None:
        check(self.limit > 0, f"{key}.limit", f"must be > 0, got {self.limit}")


@dataclass(frozen=True)
class Outer(Section):
    name: str = "x"
    ratio: float | None = None
    tags: tuple[str, ...] = ()
    inner: Inner = Inner()


def test_a_section_is_built_from_its_mapping_with_typed_values():
    built = Outer.from_mapping({"ratio": 1, "tags": ["a", "b"], "inner": {"limit": 5}}, "quality")
    assert built == Outer(ratio=1.0, tags=("a", "b"), inner=Inner(5))
    assert isinstance(built.ratio, float)
    assert Outer.from_mapping(None, "quality") == Outer()


@pytest.mark.parametrize(("data", "message"), [
    ({"colour": 1}, "quality.colour: unknown key (expected one of: name, ratio, tags, inner)"),
    ({"ratio": "high"}, "quality.ratio: must be a number, got 'high'"),
    ({"tags": [1, True]}, "quality.tags[1]: must be a string, got True"),
    ({"inner": {"limit": 0}}, "quality.inner.limit: must be > 0, got 0"),
    ({"inner": 7}, "quality.inner: must be a mapping, got 7"),
])
def test_every_section_error_is_a_config_error_naming_the_dotted_key(data, message):
    with pytest.raises(ConfigError) as err:
        Outer.from_mapping(data, "quality")
    assert str(err.value) == message
