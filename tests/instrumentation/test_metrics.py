from gensight.instrumentation.metrics import DURATION_BUCKETS_S, TOKEN_BUCKETS, Instruments


def test_token_buckets_are_the_semconv_powers_of_four():
    assert TOKEN_BUCKETS[0] == 1 and TOKEN_BUCKETS[1] == 4 and TOKEN_BUCKETS[-1] == 67108864
    assert all(b == a * 4 for a, b in zip(TOKEN_BUCKETS[:-1], TOKEN_BUCKETS[1:], strict=True))


def test_duration_buckets_double_from_10ms_to_81_92s():
    assert DURATION_BUCKETS_S[0] == 0.01 and DURATION_BUCKETS_S[-1] == 81.92
    assert len(DURATION_BUCKETS_S) == 14


def test_histograms_use_advisory_buckets(meter_provider, metric_points):
    inst = Instruments(meter_provider)
    inst.token_usage.record(10, {"a": "b"})
    inst.operation_duration.record(0.5, {"a": "b"})
    points = metric_points()
    assert tuple(points["gen_ai.client.token.usage"][0].explicit_bounds) == TOKEN_BUCKETS
    assert tuple(points["gen_ai.client.operation.duration"][0].explicit_bounds) == DURATION_BUCKETS_S


def test_every_instrument_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    names = ["gen_ai.client.token.usage", "gen_ai.client.operation.duration",
             "gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.cost"]
    assert [n for n in names if f"`{n}`" not in doc] == []
