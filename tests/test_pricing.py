"""Pricing: genai-prices under the override layers, at the call's event time and service tier.

Every test here runs with the network blocked (``_no_network``): a price lookup that reached for
the network would fail loudly instead of passing slowly.
"""

import datetime as dt
import json
import socket
import subprocess
import sys
import warnings

import pytest
from genai_prices import Usage, calc_price

from gensight.pricing import MAX_QUOTES, ModelPrice, PricingError, PricingTable
from gensight.pricing.providers import LIBRARY_PROVIDERS, compact
from gensight.pricing.rates import MAX_PERIODS

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any connection to a non-loopback address raises."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and "/" not in host:
            raise AssertionError(f"network access during a pricing test: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(AssertionError("DNS lookup")))


@pytest.fixture(scope="module")
def table():
    return PricingTable.bundled()


def _reference(model, provider_id, usage, at=NOW, tier=None):
    context = {"service_tier": tier} if tier else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc = calc_price(Usage(input_tokens=usage[0], output_tokens=usage[1], cache_read_tokens=usage[2],
                                cache_write_tokens=usage[3]), model, provider_id=provider_id,
                          genai_request_timestamp=at, price_context=context)
    return float(calc.total_price)


# -- genai-prices is the base ---------------------------------------------------------------------
# (span provider name as the semconv spells it, library provider id, model)
PROVIDER_MODELS = [
    ("openai", "openai", "gpt-4o-mini"),
    ("anthropic", "anthropic", "claude-sonnet-4-5"),
    ("aws.bedrock", "aws", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("azure.ai.openai", "azure", "gpt-4o"),
    ("gcp.gemini", "google", "gemini-2.5-pro"),
    ("gcp.vertex_ai", "google", "gemini-2.0-flash"),
    ("mistral_ai", "mistral", "mistral-large-latest"),
    ("groq", "groq", "llama-3.3-70b-versatile"),
    ("deepseek", "deepseek", "deepseek-chat"),
    ("x_ai", "x-ai", "grok-3"),
    ("cohere", "cohere", "command-r-plus"),
    ("perplexity", "perplexity", "sonar"),
]
USAGES = [(1200, 300, 0, 0), (5000, 200, 4096, 0), (3000, 100, 1000, 500), (250_000, 2000, 20_000, 10_000)]


@pytest.mark.parametrize("provider, provider_id, model", PROVIDER_MODELS)
def test_cost_equals_calc_price_including_cache_tokens(table, provider, provider_id, model):
    for usage in USAGES:
        expected = _reference(model, provider_id, usage)
        assert table.cost_usd(provider, model, *usage, at_ns=_ns(NOW)) == pytest.approx(expected, rel=1e-12), usage


def test_long_context_tier_priced_as_the_library_prices_it(table):
    # claude-sonnet-4-5 above 200k input tokens: every token at the higher rate (old table: 3.0 / 15.0)
    small = table.cost_usd("anthropic", "claude-sonnet-4-5", 200_000, 0, at_ns=_ns(NOW))
    large = table.cost_usd("anthropic", "claude-sonnet-4-5", 200_001, 0, at_ns=_ns(NOW))
    assert small == pytest.approx(0.6) and large == pytest.approx(200_001 * 6.0 / 1e6)


def test_price_in_force_at_the_event_time(table):
    # o3 cost 10/40 per 1M until 2025-06-10, 2/8 from then on
    before = dt.datetime(2025, 6, 9, 23, 59, tzinfo=UTC)
    after = dt.datetime(2025, 6, 10, 0, 1, tzinfo=UTC)
    usage = (1_000_000, 1_000_000, 0, 0)
    old = table.cost_usd("openai", "o3", *usage[:2], at_ns=_ns(before))
    new = table.cost_usd("openai", "o3", *usage[:2], at_ns=_ns(after))
    assert old == pytest.approx(_reference("o3", "openai", usage, before)) == pytest.approx(50.0)
    assert new == pytest.approx(_reference("o3", "openai", usage, after)) == pytest.approx(10.0)


def test_off_peak_time_of_day_price(table):
    # deepseek-chat: discounted between 16:30 and 00:30 UTC
    peak, off_peak = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC), dt.datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    usage = (10_000, 1000, 0, 0)
    costs = [table.cost_usd("deepseek", "deepseek-chat", *usage[:2], at_ns=_ns(t)) for t in (peak, off_peak)]
    assert costs[0] != costs[1]
    assert costs == pytest.approx([_reference("deepseek-chat", "deepseek", usage, t) for t in (peak, off_peak)])


def test_service_tier_changes_the_price(table):
    usage = (1_000_000, 1_000_000)
    standard = table.cost_usd("openai", "gpt-4o", *usage, at_ns=_ns(NOW))
    priority = table.cost_usd("openai", "gpt-4o", *usage, tier="priority", at_ns=_ns(NOW))
    assert standard == pytest.approx(12.5)
    assert priority == pytest.approx(_reference("gpt-4o", "openai", (*usage, 0, 0), tier="priority")) == pytest.approx(21.25)


def test_a_model_is_resolved_once_not_per_call(table, monkeypatch):
    from genai_prices import types

    calls = []
    real = types.ModelInfo.get_prices
    monkeypatch.setattr(types.ModelInfo, "get_prices", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    fresh = PricingTable.bundled()
    for i in range(1000):
        fresh.cost_usd("openai", "gpt-4.1-mini", 100 + i, 10, at_ns=_ns(NOW) + i * 1_000_000_000)
    assert len(calls) == 1


def test_snapshot_the_library_does_not_list_is_priced_as_its_base_model(table):
    assert table.lookup("openai", "gpt-4o-2031-01-31") == table.lookup("openai", "gpt-4o")
    assert table.lookup("anthropic", "claude-3-5-sonnet-latest") == table.lookup("anthropic", "claude-3-5-sonnet")


# -- provider names ------------------------------------------------------------------------------
SEMCONV_PROVIDERS = {  # gen_ai.provider.name values of the semconv -> library provider id
    "openai": "openai", "anthropic": "anthropic", "aws.bedrock": "aws", "azure.ai.openai": "azure",
    "azure.ai.inference": "azure", "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google",
    "mistral_ai": "mistral", "groq": "groq", "deepseek": "deepseek", "x_ai": "x-ai", "cohere": "cohere",
    "perplexity": "perplexity",
}
OLDER_AND_PEER_NAMES = {  # older gen_ai.system values and the peers' spellings
    "vertex_ai": "google", "gemini": "google", "az.ai.openai": "azure", "az.ai.inference": "azure", "xai": "x-ai",
    "MistralAI": "mistral", "Bedrock": "aws", "azure_openai": "azure", "Vertex AI": "google", "together_ai": "together",
}


@pytest.mark.parametrize("name, library_id", sorted({**SEMCONV_PROVIDERS, **OLDER_AND_PEER_NAMES}.items()))
def test_provider_names_map_to_library_ids(name, library_id):
    assert LIBRARY_PROVIDERS[compact(name)] == library_id


def test_processor_dialect_aliases_all_map():
    from gensight.processor.normalise.dialects import PROVIDER_ALIASES

    for alias, semconv_name in PROVIDER_ALIASES.items():
        assert compact(alias) in LIBRARY_PROVIDERS and compact(semconv_name) in LIBRARY_PROVIDERS


def test_the_provider_picks_its_own_price(table):
    # Azure's gpt-4o is Azure's entry, not OpenAI's (the library's substring match would say openai)
    assert table.quote("azure.ai.openai", "gpt-4o").source.endswith("(azure/gpt-4o)")


def test_unknown_provider_falls_back_to_an_unambiguous_model_name(table):
    assert table.lookup("my-gateway", "gpt-4o") == table.lookup("openai", "gpt-4o")
    assert table.lookup(None, "claude-3-5-sonnet-latest") == table.lookup("anthropic", "claude-3-5-sonnet")


def test_ambiguous_model_name_without_provider_gets_no_cost(table):
    # listed by a dozen resellers at different prices, claimed by none
    assert table.cost_usd(None, "openai/gpt-oss-120b", 1000, 100) is None


def test_known_provider_without_library_prices_does_not_borrow_another(table):
    assert table.cost_usd("ibm.watsonx.ai", "gpt-4o", 1000, 100) is None


# -- what it does not know -----------------------------------------------------------------------
def test_unknown_model_has_no_cost_and_warns_once(caplog):
    t = PricingTable.bundled()
    assert t.cost_usd("openai", "my-finetune", 10, 10) is None
    assert t.cost_usd("openai", "my-finetune", 10, 10) is None
    assert sum("my-finetune" in r.getMessage() for r in caplog.records) == 1


def test_fine_tunes_priced_as_fine_tunes_never_at_the_base_price(table):
    ft = table.lookup("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123")
    assert ft is not None and ft != table.lookup("openai", "gpt-4o-mini")  # the library's fine-tune price
    assert table.lookup("openai", "ft:acme-base:acme::abc123") is None


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "12", True])
def test_unusable_token_counts_give_no_cost(table, bad):
    assert table.cost_usd("openai", "gpt-4o", bad, 1) is None


# -- bounded -------------------------------------------------------------------------------------
def test_quote_cache_is_bounded():
    t = PricingTable(max_quotes=16)
    for i in range(200):
        t.cost_usd("openai", f"hostile-model-{i}", 10, 10)
    assert t.cache_info().currsize == 16
    assert MAX_QUOTES <= 10_000


def test_absurdly_long_names_are_neither_priced_nor_cached():
    t = PricingTable.bundled()
    assert t.cost_usd("openai", "gpt-4o" + "x" * 10_000, 10, 10) is None
    assert t.cost_usd("openai", "gpt-4o", 10, 10, tier="p" * 10_000) is None
    assert t.cache_info().currsize == 0


def test_price_periods_per_quote_are_bounded(table):
    quote = table.quote("openai", "o3")
    for day in range(3 * MAX_PERIODS):
        quote.cost_usd(_ns(NOW) + day * 86_400 * 10**9, 10, 10)
    assert len(quote._periods) <= MAX_PERIODS


# -- the override layers -------------------------------------------------------------------------
def test_override_file_wins_over_the_library(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"providers": {"openai": {"models": {
        "gpt-4o": {"input": 1.0, "output": 2.0},
        "ft:gpt-4o-mini-*": {"input": 0.4, "output": 1.6},
    }}}}))
    t = PricingTable.load(environ={"GENSIGHT_PRICING_FILE": str(f)})
    assert t.lookup("openai", "gpt-4o") == ModelPrice(1.0, 2.0, 1.0, 1.0)
    assert t.cost_usd("openai", "gpt-4o", 1_000_000, 0, tier="priority") == pytest.approx(1.0)
    assert t.cost_usd("openai", "ft:gpt-4o-mini-2024-07-18:acme::x", 1_000_000, 0) == pytest.approx(0.4)
    assert t.quote("openai", "gpt-4o").source == f"override file {f}"
    assert t.lookup("openai", "gpt-4o-mini") == PricingTable.bundled().lookup("openai", "gpt-4o-mini")


def test_bundled_corrections_sit_between_file_and_library(tmp_path, monkeypatch):
    from gensight.pricing import table as table_module

    corrections = {"providers": {"openai": {"models": {"gpt-4o": {"input": 7.0, "output": 7.0}}}}}
    monkeypatch.setattr(table_module, "_bundled_corrections_data", lambda: json.dumps(corrections))
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"providers": {"openai": {"models": {"gpt-4o-mini": {"input": 1, "output": 1}}}}}))
    t = PricingTable.load(f)
    assert t.quote("openai", "gpt-4o").source.startswith("bundled correction")
    assert t.quote("openai", "gpt-4o-mini").source.startswith("override file")
    assert t.quote("openai", "gpt-4.1").source.startswith("genai-prices")


def test_override_aliases_and_provider_spellings(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"providers": {"ibm.watsonx.ai": {"aliases": ["my-gateway"], "models": {
        "granite-3-8b": {"input": 0.2, "output": 0.2}}}}}))
    t = PricingTable.load(f)
    for provider in ("ibm.watsonx.ai", "IBM Watsonx AI", "my-gateway", None):
        assert t.cost_usd(provider, "granite-3-8b", 1_000_000, 0) == pytest.approx(0.2), provider


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


# -- no network, no heavy imports ----------------------------------------------------------------
def test_pricing_works_with_every_socket_refused():
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network blocked')\n"
        "socket.socket.connect = refuse; socket.socket.connect_ex = refuse\n"
        "socket.create_connection = refuse; socket.getaddrinfo = refuse\n"
        "import sys; sys.modules['openai'] = None\n"
        "from gensight.pricing import default_table\n"
        "print(default_table().cost_usd('gcp.gemini', 'gemini-2.5-flash', 1000, 100))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) > 0


def test_importing_pricing_does_not_load_the_library():
    code = "import sys, gensight.pricing; print('genai_prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
