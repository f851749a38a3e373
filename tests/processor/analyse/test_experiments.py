"""Live experiments: always-valid p-values under continuous monitoring, guardrail pages, decisions,
the metric contract, config errors and state across restarts."""

from __future__ import annotations

import numpy as np
import pytest
from ab_streams import Effect, draw

from gensight.processor.analyse.alerts import AlertEngine
from gensight.processor.analyse.analytics import Analytics, AnalyticsConfig
from gensight.processor.analyse.experiments import (
    DECIDED_EVENT,
    DIFFERENCE,
    GUARDRAIL_ALERT,
    LIVE_METRICS,
    P_VALUE,
    SAMPLES,
    ExperimentAnalyser,
    ExperimentConfig,
    experiment_attributes,
)
from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

T0 = 1_700_000_040_000_000_000
WINDOW_NS = 60_000_000_000
ALPHA = 0.05
SEEDS = 200
WINDOWS = 30
PER_WINDOW = 40  # calls per arm per window: 1,200 per arm over the stream, 30 looks


def config(**over) -> ExperimentConfig:
    data = {"name": "swap", "by": "feature_flag.result.variant", "control": "a", "treatment": "b",
            "min_samples": 100, **over}
    return ExperimentConfig.from_mapping(data, "analytics.experiments[0]")


def records(rng, n, variant, window_start, effect=Effect()):
    calls = draw(rng, n, effect)
    out = []
    for i in range(n):
        end = window_start + 1 + i * (WINDOW_NS // (n + 1))
        out.append(CallRecord(
            "chat", "svc", "openai", "m", end - int(calls.latency_s[i] * 1e9), end, float(calls.latency_s[i]),
            int(calls.input_tokens[i]), int(calls.output_tokens[i]), None, float(calls.cost_usd[i]),
            error=bool(calls.error[i]), ttfc_s=float(calls.ttfc_s[i]), extra=(variant,),
        ))
    return out


def stream(analyser, seed, effect=Effect(), windows=WINDOWS, on_close=None):
    rng = np.random.default_rng(seed)
    for k in range(windows):
        w = Window(T0 + k * WINDOW_NS, T0 + (k + 1) * WINDOW_NS)
        analyser.observe(w, records(rng, PER_WINDOW, "a", w.start_ns) + records(rng, PER_WINDOW, "b", w.start_ns, effect))
        points = analyser.close(w)
        if on_close is not None:
            on_close(points)


def p_values(points):
    return {dict(p.attributes)["metric"]: p.value for p in points if p.name == P_VALUE}


@pytest.fixture(scope="module")
def a_a_runs():
    """For each seed: the smallest p-value per metric seen at any look, decisions and guardrail pages."""
    runs = []
    for seed in range(SEEDS):
        alerts = AlertEngine()
        analyser = ExperimentAnalyser([config(guardrails={m: {"max_relative": 0.0} for m in LIVE_METRICS})], alerts)
        seen: dict[str, float] = {}

        def look(points, seen=seen):
            for metric, p in p_values(points).items():
                seen[metric] = min(seen.get(metric, 1.0), p)

        stream(analyser, seed, on_close=look)
        pages = [t for t in alerts.drain_transitions() if t.alert == GUARDRAIL_ALERT and t.state == "firing"]
        runs.append((seen, analyser.decisions, pages))
    return runs


def test_a_a_p_value_crosses_alpha_at_most_alpha_of_the_time_under_continuous_monitoring(a_a_runs):
    for metric in LIVE_METRICS:
        crossed = sum(seen[metric] < ALPHA for seen, _, _ in a_a_runs)
        assert crossed / SEEDS <= ALPHA, (metric, crossed)


def test_a_a_decisions_at_most_alpha(a_a_runs):
    assert sum(bool(decisions) for _, decisions, _ in a_a_runs) / SEEDS <= ALPHA


def test_a_a_guardrails_page_at_most_alpha(a_a_runs):
    """Even a 0 % guardrail (any significant worsening pages) keeps its level per metric."""
    for metric in LIVE_METRICS:
        paged = sum(any(dict(t.attributes)["metric"] == metric for t in pages) for _, _, pages in a_a_runs)
        assert paged / SEEDS <= ALPHA, (metric, paged)


def test_fixed_horizon_p_values_would_not_keep_the_level():
    """Why sequential: a z-test looked at every window crosses alpha far more often (same streams)."""
    from scipy import stats

    crossed = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        a, b = [], []
        hit = False
        for _ in range(WINDOWS):
            a.extend(draw(rng, PER_WINDOW).latency_s)
            b.extend(draw(rng, PER_WINDOW).latency_s)
            hit = hit or stats.ttest_ind(a, b, equal_var=False).pvalue < ALPHA
        crossed += hit
    assert crossed / 50 > 2 * ALPHA


@pytest.mark.parametrize("effect,metric,better", [
    (Effect(latency=1.2), "latency_mean_s", "control"),
    (Effect(cost=0.6), "cost_per_call_usd", "treatment"),
    (Effect(errors=2.0), "error_rate", "control"),
])
def test_known_effects_are_decided_with_the_right_sign(effect, metric, better):
    analyser = ExperimentAnalyser([config(metrics=[metric])], AlertEngine())
    last = []
    stream(analyser, 1, effect, windows=60, on_close=lambda pts: last.__setitem__(slice(None), pts))
    (decision,) = analyser.decisions
    assert decision.metric == metric and decision.better == better
    bounds = {dict(p.attributes)["bound"]: p.value for p in last if p.name == DIFFERENCE}
    sign = 1 if better == "control" else -1
    assert np.sign(bounds["estimate"]) == np.sign(bounds["low"]) == np.sign(bounds["high"]) == sign


def test_guardrail_pages_when_the_treatment_is_worse_than_allowed():
    alerts = AlertEngine()
    analyser = ExperimentAnalyser([config(guardrails={"error_rate": {"max_relative": 0.2}})], alerts)
    stream(analyser, 3, Effect(errors=3.0), windows=60)
    firing = [t for t in alerts.drain_transitions() if t.state == "firing"]
    assert [(t.alert, t.severity, t.series) for t in firing] == [(GUARDRAIL_ALERT, "page", "swap|error_rate")]
    assert dict(firing[0].attributes) == {"experiment": "swap", "metric": "error_rate"}


def test_guardrail_stays_quiet_when_within_its_allowance():
    alerts = AlertEngine()
    analyser = ExperimentAnalyser([config(guardrails={"latency_mean_s": {"max_relative": 0.5}})], alerts)
    stream(analyser, 4, Effect(latency=1.1), windows=60)
    assert alerts.drain_transitions() == []


def test_points_follow_the_metric_contract():
    analyser = ExperimentAnalyser([config(metrics=["latency_mean_s"], selector={"service": "svc"})])
    pts = []
    stream(analyser, 5, windows=3, on_close=pts.extend)
    last = pts[-6:]
    samples = [p for p in last if p.name == SAMPLES]
    assert {(dict(p.attributes)["variant"], p.value) for p in samples} == {("control", 120.0), ("treatment", 120.0)}
    assert all(p.kind == "sum" and p.unit == "{call}" and p.start_ns == T0 for p in samples)
    diff = [p for p in last if p.name == DIFFERENCE]
    assert sorted(dict(p.attributes)["bound"] for p in diff) == ["estimate", "high", "low"]
    assert all(p.kind == "gauge" and p.unit == "s" and p.service == "svc" for p in diff)
    (pv,) = [p for p in last if p.name == P_VALUE]
    assert pv.unit == "1" and dict(pv.attributes) == {"experiment": "swap", "metric": "latency_mean_s"}


def test_p_value_is_one_until_min_samples():
    analyser = ExperimentAnalyser([config(metrics=["latency_mean_s"], min_samples=1000)])
    pts = []
    stream(analyser, 6, Effect(latency=2.0), windows=5, on_close=pts.extend)
    assert {p.value for p in pts if p.name == P_VALUE} == {1.0}


def test_records_of_other_variants_and_unselected_services_are_ignored():
    analyser = ExperimentAnalyser([config(metrics=["error_rate"], selector={"service": "other"})])
    stream(analyser, 7, windows=2)
    assert analyser.close(Window(T0, T0 + WINDOW_NS)) == []


def test_decision_becomes_one_log_record():
    got = []
    analyser = ExperimentAnalyser([config(metrics=["cost_per_call_usd"])])
    analyser.sink = got.append
    stream(analyser, 8, Effect(cost=0.6), windows=20)
    (request,) = got
    (rec,) = request.resource_logs[0].scope_logs[0].log_records
    attrs = {kv.key: kv.value for kv in rec.attributes}
    assert rec.event_name == DECIDED_EVENT
    assert attrs["experiment"].string_value == "swap" and attrs["gensight.experiment.better"].string_value == "treatment"


def test_state_survives_a_restart(tmp_path):
    cfg = AnalyticsConfig.from_dict({"experiments": [{"name": "swap", "by": "v", "control": "a", "treatment": "b",
                                                      "metrics": ["latency_mean_s"]}]})
    first = Analytics(cfg, state_dir=str(tmp_path))
    stream(first.experiments, 9, windows=3)
    before = first.experiments.export_state()
    first.shutdown()
    second = Analytics(cfg, state_dir=str(tmp_path))
    try:
        assert second.experiments.export_state() == before
        assert before["swap"]["arms"]["control"]["latency_mean_s"][0] == 120
    finally:
        second.shutdown()


def test_a_redefined_experiment_starts_over(tmp_path):
    analyser = ExperimentAnalyser([config(metrics=["latency_mean_s"])])
    stream(analyser, 10, windows=2)
    state = analyser.export_state()
    changed = ExperimentAnalyser([config(metrics=["latency_mean_s"], treatment="c")])
    changed.import_state(state)
    assert changed.export_state()["swap"]["arms"]["control"]["latency_mean_s"][0] == 0


@pytest.mark.parametrize("over,message", [
    ({"by": ""}, "analytics.experiments[0].by: required"),
    ({"treatment": "a"}, "analytics.experiments[0].treatment: must differ"),
    ({"metrics": ["latency_p99_s"]}, "analytics.experiments[0].metrics[0]: unknown metric"),
    ({"metrics": ["error_rate", "quality:"]}, "analytics.experiments[0].metrics[1]: unknown metric"),
    ({"metrics": ["quality:*"]}, "analytics.experiments[0].primary: must be one of the experiment.s metrics"),
    ({"metrics": ["error_rate"], "guardrails": {"latency_p95_s": {"max_relative": 0.2}}},
     "analytics.experiments[0].guardrails.latency_p95_s: not one of"),
    ({"guardrails": {"quality:relevance": {"max_relative": 1.0}}},
     "analytics.experiments[0].guardrails.quality:relevance.max_relative: required, a number >= 0 and < 1"),
    ({"primary": "ttfc_s", "metrics": ["error_rate"]}, "analytics.experiments[0].primary"),
    ({"guardrails": {"error_rate": {"max_relative": -1}}}, "analytics.experiments[0].guardrails.error_rate.max_relative"),
    ({"guardrails": {"error_rate": {"max": 1}}}, "analytics.experiments[0].guardrails.error_rate.max: unknown key"),
    ({"alpha": 1.5}, "analytics.experiments[0].alpha"),
    ({"min_samples": 1}, "analytics.experiments[0].min_samples"),
    ({"colour": "red"}, "analytics.experiments[0].colour: unknown key"),
])
def test_config_errors_name_the_dotted_key(over, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config(**over)


def test_duplicate_experiment_names_are_rejected():
    e = {"name": "x", "by": "v", "control": "a", "treatment": "b"}
    with pytest.raises(ValueError, match="analytics.experiments: experiment names must be unique"):
        AnalyticsConfig.from_dict({"experiments": [e, e]})


def test_experiment_attributes_for_the_normaliser():
    class Cfg:
        analytics = {"experiments": [{"by": "a"}, {"by": "b"}, {"by": "a"}, {"name": "bad"}]}

    assert experiment_attributes(Cfg()) == ("a", "b")

    class Empty:
        analytics: dict = {}

    assert experiment_attributes(Empty()) == ()


def test_tool_spans_of_an_arm_are_left_out_unless_the_selector_names_their_kind():
    tool = CallRecord("execute_tool", "svc", "", "lookup", T0, T0 + 5 * 10**9, 5.0, extra=("a",))
    chat = CallRecord("chat", "svc", "openai", "m", T0, T0 + 10**9, 1.0, extra=("a",))
    w = Window(T0, T0 + WINDOW_NS)
    default = ExperimentAnalyser([config(metrics=["latency_mean_s"])])
    default.observe(w, [tool, chat])
    tools = ExperimentAnalyser([config(metrics=["latency_mean_s"], selector={"kind": "execute_tool"})])
    tools.observe(w, [tool, chat])
    assert default.export_state()["swap"]["arms"]["control"]["latency_mean_s"][:2] == [1, 1.0]
    assert tools.export_state()["swap"]["arms"]["control"]["latency_mean_s"][:2] == [1, 5.0]


# -- latency quantiles and evaluation results, live -------------------------------------------------

def test_a_a_runs_cover_the_quantile_metrics(a_a_runs):
    """The A/A checks above include the live quantiles (their crossing rate is counted there)."""
    seen, _, _ = a_a_runs[0]
    assert {"latency_p50_s", "latency_p95_s"} <= set(seen)


def evaluations(rng, calls, mean, name="relevance"):
    """One evaluation per call: a score around ``mean`` and its pass/fail outcome at 0.75."""
    out = []
    for call in calls:
        score = float(np.clip(rng.normal(mean, 0.15), 0.0, 1.0))
        out.append(Evaluation(name, score, None, None, "judge", call.end_ns + 1, b"", b"", None, call,
                              "pass" if score >= 0.75 else "fail"))
    return out


def rated_stream(analyser, seed, drop=0.0, windows=WINDOWS, on_close=None):
    rng = np.random.default_rng(seed)
    for k in range(windows):
        w = Window(T0 + k * WINDOW_NS, T0 + (k + 1) * WINDOW_NS)
        a, b = records(rng, PER_WINDOW, "a", w.start_ns), records(rng, PER_WINDOW, "b", w.start_ns)
        analyser.observe(w, a + b)
        analyser.observe_evaluations(w, evaluations(rng, a, 0.8) + evaluations(rng, b, 0.8 - drop))
        points = analyser.close(w)
        if on_close is not None:
            on_close(points)


QUALITY_METRICS = ("quality:relevance", "pass_ratio:relevance")


@pytest.fixture(scope="module")
def a_a_quality_runs():
    runs = []
    for seed in range(SEEDS):
        alerts = AlertEngine()
        analyser = ExperimentAnalyser([config(metrics=["quality:*", "pass_ratio:*", "error_rate"],
                                              guardrails={m: {"max_relative": 0.0} for m in QUALITY_METRICS})],
                                      alerts)
        seen: dict[str, float] = {}

        def look(points, seen=seen):
            for metric, p in p_values(points).items():
                seen[metric] = min(seen.get(metric, 1.0), p)

        rated_stream(analyser, 1000 + seed, on_close=look)
        pages = [t for t in alerts.drain_transitions() if t.alert == GUARDRAIL_ALERT and t.state == "firing"]
        runs.append((seen, pages))
    return runs


def test_a_a_quality_p_values_cross_alpha_at_most_alpha_of_the_time(a_a_quality_runs):
    for metric in QUALITY_METRICS:
        crossed = sum(seen[metric] < ALPHA for seen, _ in a_a_quality_runs)
        assert crossed / SEEDS <= ALPHA, (metric, crossed)


def test_a_a_quality_guardrails_page_at_most_alpha(a_a_quality_runs):
    for metric in QUALITY_METRICS:
        paged = sum(any(dict(t.attributes)["metric"] == metric for t in pages) for _, pages in a_a_quality_runs)
        assert paged / SEEDS <= ALPHA, (metric, paged)


def test_latency_p95_increase_is_decided_with_the_right_sign():
    analyser = ExperimentAnalyser([config(metrics=["latency_p95_s"])])
    last: list = []
    stream(analyser, 11, Effect(latency=1.5), windows=60, on_close=lambda pts: last.__setitem__(slice(None), pts))
    (decision,) = analyser.decisions
    assert (decision.metric, decision.better) == ("latency_p95_s", "control")
    bounds = {dict(p.attributes)["bound"]: p.value for p in last if p.name == DIFFERENCE}
    assert 0 < bounds["low"] < bounds["estimate"] < bounds["high"]
    true_difference = 0.5 * np.exp(np.log(0.8) + 0.6 * 1.6449)  # p95 of the lognormal, × 1.5 − × 1
    assert bounds["low"] < true_difference < bounds["high"]


def test_quality_drop_is_decided_with_the_right_sign():
    analyser = ExperimentAnalyser([config(metrics=["quality:relevance", "pass_ratio:relevance"])])
    last: list = []
    rated_stream(analyser, 12, drop=0.05, windows=60, on_close=lambda pts: last.__setitem__(slice(None), pts))
    (decision,) = analyser.decisions
    assert (decision.metric, decision.better) == ("quality:relevance", "control")
    for metric in QUALITY_METRICS:
        bounds = {dict(p.attributes)["bound"]: p.value for p in last
                  if p.name == DIFFERENCE and dict(p.attributes)["metric"] == metric}
        assert bounds["high"] < 0, metric


def test_guardrail_pages_on_a_p95_regression():
    alerts = AlertEngine()
    analyser = ExperimentAnalyser([config(metrics=["latency_p95_s"], guardrails={"latency_p95_s": {"max_relative": 0.2}})],
                                  alerts)
    stream(analyser, 13, Effect(latency=1.5), windows=60)
    firing = [t for t in alerts.drain_transitions() if t.state == "firing"]
    assert [(t.alert, t.severity, t.series) for t in firing] == [(GUARDRAIL_ALERT, "page", "swap|latency_p95_s")]


def test_p95_guardrail_stays_quiet_within_its_allowance():
    alerts = AlertEngine()
    analyser = ExperimentAnalyser([config(metrics=["latency_p95_s"], guardrails={"latency_p95_s": {"max_relative": 0.5}})],
                                  alerts)
    stream(analyser, 14, Effect(latency=1.1), windows=60)
    assert alerts.drain_transitions() == []


def test_quality_guardrail_pages_when_the_score_falls_more_than_allowed():
    alerts = AlertEngine()
    analyser = ExperimentAnalyser([config(metrics=["quality:*"], primary="quality:relevance",
                                          guardrails={"quality:relevance": {"max_relative": 0.02}})], alerts)
    rated_stream(analyser, 15, drop=0.1, windows=60)
    firing = [t for t in alerts.drain_transitions() if t.state == "firing"]
    assert [t.series for t in firing] == ["swap|quality:relevance"]


def test_wildcard_takes_evaluation_names_up_to_the_cap():
    from gensight.processor.analyse.experiment_config import MAX_EVALUATION_NAMES

    analyser = ExperimentAnalyser([config(metrics=["quality:*"], primary="quality:n0")])
    rng = np.random.default_rng(16)
    w = Window(T0, T0 + WINDOW_NS)
    calls = records(rng, 4, "a", T0) + records(rng, 4, "b", T0)
    analyser.observe(w, calls)
    analyser.observe_evaluations(w, [e for i in range(MAX_EVALUATION_NAMES + 3)
                                     for e in evaluations(rng, calls, 0.8, name=f"n{i}")])
    metrics = {dict(p.attributes)["metric"] for p in analyser.close(w)}
    assert len(metrics) == MAX_EVALUATION_NAMES and "quality:n0" in metrics
    assert analyser.experiments["swap"].values_dropped == 3 * len(calls)


def test_evaluations_of_other_arms_and_unjoined_ones_are_ignored():
    analyser = ExperimentAnalyser([config(metrics=["quality:relevance"])])
    rng = np.random.default_rng(17)
    w = Window(T0, T0 + WINDOW_NS)
    other = records(rng, 5, "c", T0)
    evs = evaluations(rng, other, 0.8) + [e._replace(call=None) for e in evaluations(rng, records(rng, 5, "a", T0), 0.8)]
    analyser.observe_evaluations(w, evs)
    assert analyser.close(w) == []


def test_quantile_and_quality_state_survives_a_restart(tmp_path):
    cfg = AnalyticsConfig.from_dict({"experiments": [{"name": "swap", "by": "v", "control": "a", "treatment": "b",
                                                      "metrics": ["latency_p95_s", "quality:*"]}]})
    first = Analytics(cfg, state_dir=str(tmp_path))
    rated_stream(first.experiments, 18, windows=3)
    before = first.experiments.export_state()
    points_before = first.experiments.close(Window(T0 + 3 * WINDOW_NS, T0 + 4 * WINDOW_NS))
    first.shutdown()
    second = Analytics(cfg, state_dir=str(tmp_path))
    try:
        assert second.experiments.export_state() == before
        assert sum(c for _, c in before["swap"]["latency"]["control"]) == 120
        assert before["swap"]["arms"]["treatment"]["quality:relevance"][0] == 120
        assert second.experiments.close(Window(T0 + 3 * WINDOW_NS, T0 + 4 * WINDOW_NS)) == points_before
    finally:
        second.shutdown()
