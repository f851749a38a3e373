"""The one config build path (``Section``, ``build_section``, ``coerce``) and its shared field checks."""

import math
from dataclasses import dataclass, field

import pytest

from gensight.processor.config_fields import ConfigError, Section, check, check_positive, reject_unknown


@dataclass(frozen=True)
class Sample(Section):
    """An analytics-style section: every number must be positive (``check_positive``)."""

    enabled: bool = True
    count: int = 3
    ratio: float = 0.5
    mode: str = "a"

    def validate(self, key: str) -> None:
        check_positive(self, key)


def test_unknown_key_is_named_with_its_full_path_and_the_known_keys():
    with pytest.raises(ValueError, match=r"^sec\.sub\.colour: unknown key \(known: count, enabled, mode, ratio\)$"):
        reject_unknown({"colour": 1}, ("enabled", "count", "ratio", "mode"), "sec.sub")


def test_unknown_key_list_keeps_declared_order_when_asked():
    with pytest.raises(ValueError, match=r"known: b, a\)"):
        reject_unknown({"z": 1}, ("b", "a"), "x", sort=False)


def test_fields_are_coerced_by_their_type_hints():
    cfg = Sample.from_mapping({"enabled": False, "count": 7, "ratio": 2}, "s")
    assert (cfg.enabled, cfg.count, cfg.ratio) == (False, 7, 2.0)
    assert isinstance(cfg.ratio, float)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("enabled", "yes", "s.enabled: must be true or false, got 'yes'"),
    ("count", 0, "s.count: must be a positive integer, got 0"),
    ("count", True, "s.count: must be an integer, got True"),
    ("ratio", math.inf, "s.ratio: must be a positive number, got inf"),
    ("ratio", math.nan, "s.ratio: must be a positive number, got nan"),
    ("ratio", -1, "s.ratio: must be a positive number, got -1"),
])
def test_bad_values_fail_naming_the_key(key, value, message):
    with pytest.raises(ConfigError) as err:
        Sample.from_mapping({key: value}, "s")
    assert str(err.value) == message


def test_check_positive_skips_the_named_fields():
    check_positive(Sample(count=0), "s", skip=("count",))  # no error
    with pytest.raises(ConfigError, match=r"^s\.count: "):
        check_positive(Sample(count=0), "s")


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


@dataclass(frozen=True)
class Entry(Section):
    name: str
    limit: float = field(metadata={"required": "USD per month"})


def test_a_missing_required_field_is_named():
    with pytest.raises(ConfigError, match=r"^e\[0\]\.name: required$"):
        Entry.from_mapping({"limit": 1.0}, "e[0]")


def test_a_required_field_hint_is_shown():
    with pytest.raises(ConfigError, match=r"^e\[0\]\.limit: required \(USD per month\)$"):
        Entry.from_mapping({"name": "x"}, "e[0]")
