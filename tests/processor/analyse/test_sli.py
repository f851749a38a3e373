"""SLI analyser: per-series window gauges and cumulative sums, values checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gensight.processor.analyse.sli import DURATION_BOUNDS_S, SLIAnalyser
from gensight.processor.points import GAUGE, HISTOGRAM, SUM, Window
from gensight.processor.records import OVERFLOW, CallRecord, SeriesKey

S = 1_000_000_000
W0 = Window(0, 60 * S)
W1 = Window(60 * S, 120 * S)


def rec(d: float = 0.5, *, kind: str = "chat", target: str = "gpt-4o-mini", error: str | None = None,
        end_s: float = 10.0, **kw) -> CallRecord:
    end = int(end_s * S)
    return CallRecord(kind, "svc", "openai", target, end - int(d * S), end, d,
                      error=error is not None, error_type=error, **kw)


def by_name(points, name, **attrs):
    out = [p for p in points if p.name == name and all(dict(p.attributes).get(k) == v for k, v in attrs.items())]
    return out


def value(points, name, **attrs):
    (p,) = by_name(points, name, **attrs)
    return p.value


def test_calls_split_by_outcome_and_error_type():
    a = SLIAnalyser()
    a.observe(W0, [rec(), rec(), rec(error="RateLimitError"), rec(error="Timeout"), rec(error="Timeout")])
    pts = a.close(W0)
    assert value(pts, "gensight.calls", outcome="ok") == 2
    assert value(pts, "gensight.calls", outcome="error", **{"error.type": "Timeout"}) == 2
    assert value(pts, "gensight.calls", outcome="error", **{"error.type": "RateLimitError"}) == 1
    assert value(pts, "gensight.sli.availability") == pytest.approx(2 / 5)


def test_error_calls_carry_their_class_beside_the_raw_type():
    a = SLIAnalyser()
    a.observe(W0, [rec(error="rate_limit_error"), rec(error="<class 'openai.RateLimitError'>"), rec(error="Timeout")])
    pts = a.close(W0)
    assert value(pts, "gensight.calls", **{"error.type": "rate_limit_error", "gensight.error.class": "rate_limit"}) == 1
    assert value(pts, "gensight.calls", **{"error.type": "<class 'openai.RateLimitError'>",
                                           "gensight.error.class": "rate_limit"}) == 1
    assert value(pts, "gensight.calls", **{"error.type": "Timeout", "gensight.error.class": "timeout"}) == 1


def test_points_carry_series_attributes():
    a = SLIAnalyser()
    a.observe(W0, [rec(kind="execute_tool", target="lookup")])
    p = by_name(a.close(W0), "gensight.sli.availability")[0]
    assert dict(p.attributes) == {"gen_ai.operation.name": "execute_tool", "gen_ai.provider.name": "openai",
                                  "gen_ai.tool.name": "lookup"}
    assert p.service == "svc" and p.kind == GAUGE and (p.start_ns, p.time_ns) == (W0.start_ns, W0.end_ns)


def test_latency_quantiles_within_one_percent():
    rng = np.random.default_rng(1)
    durations = rng.lognormal(0, 1, 2000)
    a = SLIAnalyser()
    a.observe(W0, [rec(float(d)) for d in durations])
    pts = a.close(W0)
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(durations, q, method="lower"))
        assert value(pts, "gensight.sli.latency", quantile=str(q)) == pytest.approx(exact, rel=0.011)


def test_duration_histogram_uses_semconv_buckets():
    a = SLIAnalyser()
    a.observe(W0, [rec(0.005), rec(0.015), rec(100.0)])
    (p,) = by_name(a.close(W0), "gensight.call.duration")
    h = p.value
    assert p.kind == HISTOGRAM and h.explicit_bounds == DURATION_BOUNDS_S
    assert h.total == 3 and h.sum == pytest.approx(100.02)
    assert h.bucket_counts[0] == 1 and h.bucket_counts[1] == 1 and h.bucket_counts[-1] == 1
    assert (h.min, h.max) == (0.005, 100.0)


def test_sums_are_cumulative_from_series_first_window():
    a = SLIAnalyser()
    a.observe(W0, [rec(input_tokens=10, output_tokens=2, cost_usd=0.1)])
    a.close(W0)
    a.observe(W1, [rec(end_s=70, input_tokens=5, output_tokens=1, cost_usd=0.2)])
    pts = a.close(W1)
    tok_in = by_name(pts, "gensight.tokens", **{"gen_ai.token.type": "input"})[0]
    assert tok_in.kind == SUM and tok_in.value == 15 and tok_in.start_ns == W0.start_ns and tok_in.time_ns == W1.end_ns
    assert value(pts, "gensight.tokens", **{"gen_ai.token.type": "output"}) == 3
    assert value(pts, "gensight.cost") == pytest.approx(0.3)
    assert value(pts, "gensight.calls", outcome="ok") == 2


def test_cost_per_call_counts_only_calls_with_a_cost():
    a = SLIAnalyser()
    a.observe(W0, [rec(cost_usd=0.2), rec(cost_usd=0.4), rec()])
    assert value(a.close(W0), "gensight.sli.cost_per_call") == pytest.approx(0.3)


def test_no_cost_no_cost_metrics():
    a = SLIAnalyser()
    a.observe(W0, [rec()])
    pts = a.close(W0)
    assert not by_name(pts, "gensight.cost") and not by_name(pts, "gensight.sli.cost_per_call")


def test_relevance_only_on_retrieval_series():
    a = SLIAnalyser()
    a.observe(W0, [rec(kind="retrieval", target="kb", relevance=0.8), rec(kind="retrieval", target="kb", relevance=0.6)])
    assert value(a.close(W0), "gensight.sli.relevance") == pytest.approx(0.7)


def test_cache_hit_ratio_when_reported():
    a = SLIAnalyser()
    a.observe(W0, [rec(cache_hit=True), rec(cache_hit=False), rec(cache_hit=True), rec()])
    assert value(a.close(W0), "gensight.sli.cache_hit_ratio") == pytest.approx(2 / 3)


def test_ttfc_and_tool_success():
    a = SLIAnalyser()
    a.observe(W0, [rec(ttfc_s=0.2), rec(ttfc_s=0.4),
                   rec(kind="execute_tool", target="t"), rec(kind="execute_tool", target="t", error="ToolError")])
    pts = a.close(W0)
    assert value(pts, "gensight.sli.time_to_first_chunk") == pytest.approx(0.3)
    assert value(pts, "gensight.sli.tool_success") == pytest.approx(0.5)


def test_windows_observed_out_of_order_close_independently():
    a = SLIAnalyser()
    a.observe(W1, [rec(end_s=70)])
    a.observe(W0, [rec(error="E")])
    p0 = a.close(W0)
    assert value(p0, "gensight.sli.availability") == 0.0
    assert value(a.close(W1), "gensight.sli.availability") == 1.0


def test_expired_series_restarts_its_sums():
    a = SLIAnalyser()
    a.observe(W0, [rec(input_tokens=10)])
    a.close(W0)
    a.expire([SeriesKey("svc", "chat", "openai", "gpt-4o-mini")])
    a.observe(W1, [rec(end_s=70, input_tokens=1)])
    p = by_name(a.close(W1), "gensight.tokens", **{"gen_ai.token.type": "input"})[0]
    assert p.value == 1 and p.start_ns == W1.start_ns


def test_overflow_series_points_carry_overflow_flag():
    a = SLIAnalyser()
    a.observe(W0, [CallRecord(OVERFLOW, OVERFLOW, OVERFLOW, OVERFLOW, 0, S, 1.0)])
    p = by_name(a.close(W0), "gensight.sli.availability")[0]
    assert p.attributes == (("otel.metric.overflow", True),)


def test_closing_an_empty_window_emits_nothing():
    assert SLIAnalyser().close(W0) == []


def test_vectorised_sketch_update_matches_ddsketch_add():
    from ddsketch import DDSketch

    from gensight.processor.analyse.sli import _sketch_add_many

    values = np.random.default_rng(3).lognormal(-1, 1.5, 5000)
    one_by_one, bulk = DDSketch(0.01), DDSketch(0.01)
    for v in values:
        one_by_one.add(float(v))
    _sketch_add_many(bulk, values)
    qs = np.linspace(0, 1, 41)
    assert [one_by_one.get_quantile_value(q) for q in qs] == [bulk.get_quantile_value(q) for q in qs]
    assert bulk.count == one_by_one.count and bulk.sum == pytest.approx(one_by_one.sum)


def _one_by_one(durations):
    """What every duration used to go through: DDSketch.add and a bisect into the buckets."""
    from bisect import bisect_left

    from ddsketch import DDSketch

    sketch, buckets = DDSketch(0.01), [0] * (len(DURATION_BOUNDS_S) + 1)
    for d in durations:
        sketch.add(d)
        buckets[bisect_left(DURATION_BOUNDS_S, d)] += 1
    return [float(sketch.get_quantile_value(q) or 0.0) for q in (0.5, 0.95, 0.99)], buckets


def _latency_and_buckets(points, target):
    lat = [value(points, "gensight.sli.latency", quantile=q, **{"gen_ai.request.model": target})
           for q in ("0.5", "0.95", "0.99")]
    (hist,) = by_name(points, "gensight.call.duration", **{"gen_ai.request.model": target})
    return lat, list(hist.value.bucket_counts)


@pytest.mark.parametrize("n", [1, 2, 31, 500, 4096 + 123, 3 * 4096])
@pytest.mark.parametrize("odd", [False, True])
def test_buffered_durations_export_what_one_by_one_adds_did(n, odd):
    """Buffered durations (window-wide pass at close, or the sketch once 4096 wait) give exactly
    the quantiles and buckets of adding each value to a DDSketch; so do zeros, subnormals and (one
    by one) negative durations."""
    from gensight.processor.analyse.sli import DURATION_BUFFER_MAX_VALUES

    assert DURATION_BUFFER_MAX_VALUES == 4096
    rng = np.random.default_rng(n)
    durs = [float(v) for v in rng.lognormal(-1, 1.5, n)]
    durs[:: 7] = [0.0] * len(durs[:: 7])
    durs[3:: 11] = [5e-324] * len(durs[3:: 11])
    if odd:
        durs[n // 2] = -0.25
    other = [float(v) for v in rng.lognormal(0, 0.5, 50)]
    a = SLIAnalyser()
    for i in range(0, n, 37):
        a.observe(W0, [rec(d) for d in durs[i:i + 37]] + [rec(d, target="other") for d in other[i % 50:i % 50 + 3]])
    pts = a.close(W0)
    assert _latency_and_buckets(pts, "gpt-4o-mini") == _one_by_one(durs)
    seen_other = [d for i in range(0, n, 37) for d in other[i % 50:i % 50 + 3]]
    assert _latency_and_buckets(pts, "other") == _one_by_one(seen_other)


def test_vectorised_keys_equal_the_library_keys_at_bin_edges():
    from gensight.processor.analyse.sli import _MAPPING, _sketch_keys

    edges = [2 ** (k / _MAPPING._multiplier) for k in range(-3000, 3000, 7)]
    values = [x for e in edges for x in (np.nextafter(e, 0), e, np.nextafter(e, np.inf))]
    values += [1.0, 2.0, 0.5, 1e-300, 1e300]
    assert _sketch_keys(np.asarray(values)).tolist() == [_MAPPING.key(float(v)) for v in values]


# -- exemplars -----------------------------------------------------------------------------------

def traced(d: float, n: int, **kw) -> CallRecord:
    return rec(d, trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"), **kw)


def exemplars(points):
    (p,) = by_name(points, "gensight.call.duration")
    return p.value.exemplars


def test_duration_point_carries_the_windows_slowest_call_and_one_failure_as_exemplars():
    a = SLIAnalyser()
    a.observe(W0, [traced(0.2, 1), traced(0.9, 2, end_s=20.0), traced(0.1, 3, error="Timeout")])
    a.observe(W0, [traced(0.4, 4), traced(0.3, 5, error="Timeout")])
    slowest, failed = exemplars(a.close(W0))
    assert (slowest.value, slowest.trace_id, slowest.span_id, slowest.time_ns) == (
        0.9, (2).to_bytes(16, "big"), (2).to_bytes(8, "big"), 20 * S)
    assert failed.trace_id == (3).to_bytes(16, "big") and failed.value == 0.1


def test_exemplars_come_from_the_closing_window_only():
    a = SLIAnalyser()
    a.observe(W0, [traced(5.0, 1)])
    a.close(W0)
    a.observe(W1, [traced(0.5, 2, end_s=70.0)])
    (ex,) = exemplars(a.close(W1))
    assert ex.trace_id == (2).to_bytes(16, "big")


def test_a_slowest_call_that_failed_is_one_exemplar_not_two():
    a = SLIAnalyser()
    a.observe(W0, [traced(0.1, 1), traced(3.0, 2, error="Timeout")])
    (ex,) = exemplars(a.close(W0))
    assert ex.trace_id == (2).to_bytes(16, "big")


def test_calls_without_trace_ids_give_no_exemplars():
    a = SLIAnalyser()
    a.observe(W0, [rec(0.5), rec(0.7, error="Timeout")])
    assert exemplars(a.close(W0)) == ()
