"""Offline comparison of two arms: false-positive rate on A/A streams, effects found with the right sign."""

from __future__ import annotations

from array import array

import numpy as np
import pytest
from ab_streams import Effect, ab_requests, draw

from gensight.processor.analyse.comparison import Arm, compare_arms, parse_where
from gensight.processor.analyse.experiment_stats import BOOTSTRAP_MAX_N, quantile_difference
from gensight.processor.commands.compare import collect_requests

ALPHA = 0.05
A_A_SEEDS = 500
N_PER_ARM = 300
RESAMPLES = 400  # enough for the mean intervals; keeps 500 seeds fast


def arm_of(calls) -> Arm:
    arm = Arm(calls=len(calls.latency_s), errors=int(calls.error.sum()))
    arm.latency_s = array("d", calls.latency_s)
    arm.ttfc_s = array("d", calls.ttfc_s)
    arm.cost_usd = array("d", calls.cost_usd)
    arm.input_tokens = array("d", calls.input_tokens)
    arm.output_tokens = array("d", calls.output_tokens)
    return arm


def compare(seed: int, effect: Effect = Effect(), n: int = N_PER_ARM, **kw):
    rng = np.random.default_rng(seed)
    return compare_arms("v", "control", "treatment", arm_of(draw(rng, n)), arm_of(draw(rng, n, effect)),
                        alpha=ALPHA, resamples=RESAMPLES, **kw)


@pytest.fixture(scope="module")
def a_a_results():
    return [compare(seed) for seed in range(A_A_SEEDS)]


def test_a_a_family_false_positive_rate_is_at_most_alpha(a_a_results):
    """Any metric significant after Holm counts as a false positive of the whole report."""
    false_positives = sum(any(m.significant for m in r.metrics) for r in a_a_results)
    assert false_positives / A_A_SEEDS <= ALPHA


def test_a_a_unadjusted_p_values_are_not_anti_conservative(a_a_results):
    """Each metric's own test keeps its level (binomial slack of 2 standard errors of the seeds)."""
    counts: dict[str, int] = {}
    for r in a_a_results:
        for m in r.metrics:
            counts[m.metric] = counts.get(m.metric, 0) + (m.p_value < ALPHA)
    slack = 2 * np.sqrt(ALPHA * (1 - ALPHA) / A_A_SEEDS)
    assert {k: v / A_A_SEEDS for k, v in counts.items() if v / A_A_SEEDS > ALPHA + slack} == {}


@pytest.mark.parametrize("quantile", [0.5, 0.95])
@pytest.mark.parametrize("n,seeds", [(30, 1000), (N_PER_ARM, 1000), (BOOTSTRAP_MAX_N + 1, 500)])
def test_a_a_quantile_p_values_keep_alpha(n, seeds, quantile):
    """The p50 / p95 test (generalised median test, Fisher exact) on many A/A streams: its own
    false-positive rate is at most alpha (+ 2 binomial standard errors of the seeds), at a small
    sample, compare's usual one and above the size where means switch to normal approximations."""
    false_positives = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        control, treatment = draw(rng, n).latency_s, draw(rng, n).latency_s
        false_positives += quantile_difference(control, treatment, quantile=quantile, alpha=ALPHA).p_value < ALPHA
    assert false_positives / seeds <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / seeds)


@pytest.mark.parametrize("effect,metric,sign", [
    (Effect(latency=1.2), "latency_mean_s", +1),
    (Effect(latency=1.2), "latency_p50_s", +1),
    (Effect(latency=1.2), "latency_p95_s", +1),
    (Effect(latency=1.2), "ttfc_s", +1),
    (Effect(cost=0.6), "cost_per_call_usd", -1),
    (Effect(errors=2.0), "error_rate", +1),
])
def test_known_effects_are_found_with_the_right_sign(effect, metric, sign):
    result = compare(1, effect, n=3000)
    m = next(m for m in result.metrics if m.metric == metric)
    assert m.significant
    assert np.sign(m.difference) == sign and np.sign(m.ci_low) == np.sign(m.ci_high) == sign
    assert m.better == ("control" if sign > 0 else "treatment")  # lower is better for all of these


def test_a_slower_tail_is_found_by_p95_with_the_right_sign():
    """Calls beyond the 90th percentile 1.5 x slower (the median untouched): p95 x 1.5."""
    rng = np.random.default_rng(5)
    control, treatment = draw(rng, 1000), draw(rng, 1000)
    p90 = 0.8 * np.exp(0.6 * 1.2815515655446004)  # of the streams' lognormal(ln 0.8, 0.6)
    treatment.latency_s = np.where(treatment.latency_s > p90, treatment.latency_s * 1.5, treatment.latency_s)
    result = compare_arms("v", "control", "treatment", arm_of(control), arm_of(treatment), alpha=ALPHA,
                          resamples=RESAMPLES)
    m = next(m for m in result.metrics if m.metric == "latency_p95_s")
    assert m.significant and m.better == "control"
    assert 0 < m.ci_low < m.difference < m.ci_high
    assert m.relative == pytest.approx(0.5, abs=0.15)


def test_relative_difference_matches_the_effect():
    result = compare(2, Effect(cost=0.6), n=3000)
    m = next(m for m in result.metrics if m.metric == "cost_per_call_usd")
    assert m.relative == pytest.approx(-0.4, abs=0.03)


def test_higher_quality_is_better_for_the_treatment():
    a, b = Arm(calls=10), Arm(calls=10)
    for i in range(200):
        a.add_evaluation("helpfulness", 0.5 + (i % 10) / 100, "pass" if i % 2 else "fail")
        b.add_evaluation("helpfulness", 0.7 + (i % 10) / 100, "pass" if i % 5 else "fail")
    result = compare_arms("v", "c", "t", a, b, resamples=RESAMPLES)
    metrics = {m.metric: m for m in result.metrics}
    assert metrics["quality:helpfulness"].better == "treatment"
    assert metrics["pass_ratio:helpfulness"].better == "treatment"
    assert metrics["pass_ratio:helpfulness"].control == pytest.approx(0.5)


def test_relative_is_none_when_the_control_value_is_zero():
    a, b = Arm(calls=500), Arm(calls=500, errors=20)
    (m,) = [m for m in compare_arms("v", "c", "t", a, b).metrics if m.metric == "error_rate"]
    assert m.control == 0.0 and m.relative is None


def test_sample_ratio_mismatch_is_flagged():
    assert compare(3, split=0.5).srm_p_value == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    skewed = compare_arms("v", "c", "t", arm_of(draw(rng, 1000)), arm_of(draw(rng, 800)), split=0.5,
                          resamples=RESAMPLES)
    assert skewed.srm_p_value < 1e-5


def test_no_srm_p_value_without_a_split():
    assert compare(4).srm_p_value is None


def _collector(requests, by="feature_flag.result.variant", where=None):
    return collect_requests(((r, None) for r in requests), by, where or {})


def test_collector_splits_spans_by_attribute():
    arms = _collector(ab_requests(5, 150))
    assert {k: a.calls for k, a in arms.arms.items()} == {"control": 150, "treatment": 150}
    assert arms.pick(None, None) == ("control", "treatment")


def test_collector_reads_a_resource_attribute():
    from ab_streams import build_request, draw, span_specs

    rng = np.random.default_rng(0)
    reqs = [build_request(span_specs(draw(rng, 20), "x", 10**18, 10**6), resource={"service.version": v})
            for v in ("1.0", "1.1", "1.1")]
    arms = _collector(reqs, by="service.version")
    assert {k: a.calls for k, a in arms.arms.items()} == {"1.0": 20, "1.1": 40}
    assert arms.pick(None, None) == ("1.1", "1.0")  # most frequent first


def test_where_filters_calls():
    arms = _collector(ab_requests(5, 50), where={"gen_ai.request.model": "other-model"})
    assert arms.arms == {}
    arms = _collector(ab_requests(5, 50), where={"gen_ai.request.model": "gpt-4o-mini"})
    assert sum(a.calls for a in arms.arms.values()) == 100


def test_evaluation_events_feed_quality_metrics():
    from ab_streams import build_request, draw, span_specs

    rng = np.random.default_rng(0)
    specs = span_specs(draw(rng, 4), "control", 10**18, 10**6)
    for s in specs:
        s["_evaluations"] = [("relevance", 0.8, "pass")]
    arms = _collector([build_request(specs)])
    arm = arms.arms["control"]
    assert list(arm.scores["relevance"]) == [0.8] * 4 and arm.passes["relevance"] == [4, 4]


def test_parse_where_rejects_items_without_equals():
    assert parse_where(["a=b", "c=d=e"]) == {"a": "b", "c": "d=e"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_where(["nokey"])


def test_a_a_family_false_positive_rate_above_the_bootstrap_size_is_at_most_alpha():
    """Large arms (normal approximations instead of the bootstrap) keep the level too."""
    seeds = 100
    false_positives = sum(any(m.significant for m in compare(seed, n=BOOTSTRAP_MAX_N + 1).metrics)
                          for seed in range(seeds))
    assert false_positives / seeds <= ALPHA
