import json

import pytest

from gensight.pricing import ModelPrice, PricingError, PricingTable


@pytest.fixture
def table():
    return PricingTable.bundled()


def test_known_model_cost_uses_per_million_prices(table):
    # gpt-4o-mini: 0.15 in / 0.60 out per 1M tokens
    assert table.cost_usd("openai", "gpt-4o-mini", 1000, 500) == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)


def test_dated_snapshot_resolves_to_base_model(table):
    assert table.lookup("openai", "gpt-4o-2024-08-06") == table.lookup("openai", "gpt-4o")
    assert table.lookup("anthropic", "claude-3-5-sonnet-20241022") == table.lookup("anthropic", "claude-3-5-sonnet")
    assert table.lookup("anthropic", "claude-3-5-sonnet-latest") is not None


def test_cached_input_tokens_priced_at_cache_read_price(table):
    price = table.lookup("openai", "gpt-4o")
    cost = table.cost_usd("openai", "gpt-4o", 1000, 0, cache_read_tokens=400)
    assert cost == pytest.approx((600 * price.input_usd_per_1m + 400 * price.cached_input_usd_per_1m) / 1e6)


def test_cache_write_priced_separately(table):
    cost = table.cost_usd("anthropic", "claude-sonnet-4-5", 1000, 0, cache_read_tokens=100, cache_write_tokens=200)
    assert cost == pytest.approx((700 * 3.0 + 100 * 0.3 + 200 * 3.75) / 1e6)


def test_unknown_model_has_no_cost_and_warns_once(table, caplog):
    assert table.cost_usd("openai", "my-finetune", 10, 10) is None
    assert table.cost_usd("openai", "my-finetune", 10, 10) is None
    assert sum("my-finetune" in r.getMessage() for r in caplog.records) == 1


def test_fine_tuned_model_does_not_fall_back_to_base_price(table):
    assert table.lookup("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123") is None


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "12", True])
def test_unusable_token_counts_give_no_cost(table, bad):
    assert table.cost_usd("openai", "gpt-4o", bad, 1) is None


def test_provider_alias_and_missing_provider(table):
    assert table.lookup("azure.ai.openai", "gpt-4o") == table.lookup("openai", "gpt-4o")
    assert table.lookup(None, "gpt-4o") == table.lookup("openai", "gpt-4o")
    assert table.lookup("OpenAI", "gpt-4o") is not None


def test_override_file_replaces_and_extends(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"providers": {"openai": {"models": {
        "gpt-4o": {"input": 1.0, "output": 2.0},
        "ft:gpt-4o-mini-*": {"input": 0.3, "output": 1.2},
    }}}}))
    t = PricingTable.load(environ={"GENSIGHT_PRICING_FILE": str(f)})
    assert t.lookup("openai", "gpt-4o") == ModelPrice(1.0, 2.0)
    assert t.cost_usd("openai", "ft:gpt-4o-mini-2024-07-18:acme::x", 1_000_000, 0) == pytest.approx(0.3)
    assert t.lookup("openai", "gpt-4o-mini") is not None  # bundled entries kept


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"models": {}}), "'providers'"),
        (json.dumps({"providers": {"openai": {"models": {"x": {"input": -1}}}}}), "non-negative"),
        (json.dumps({"providers": {"openai": {"models": {"x": {"inptu": 1}}}}}), "unknown key"),
    ],
)
def test_bad_override_file_names_the_problem(tmp_path, content, message):
    f = tmp_path / "prices.json"
    f.write_text(content)
    with pytest.raises(PricingError, match=message):
        PricingTable.load(f)


def test_pricing_importable_without_openai():
    import subprocess
    import sys

    code = "import sys; sys.modules['openai'] = None; import gensight.pricing as p; print(p.default_table().lookup('openai','gpt-4o'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ModelPrice" in out.stdout
