from pathlib import Path

from gensight.instrumentation.attributes import GENSIGHT_ATTRIBUTES

DOC = Path(__file__).resolve().parents[2] / "docs" / "attributes.md"


def test_every_gensight_attribute_is_documented():
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in GENSIGHT_ATTRIBUTES if f"`{name}`" not in text]
    assert not missing, f"add to docs/attributes.md: {missing}"
