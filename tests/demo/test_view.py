"""DemoView: the latest values per series, SLO and alert, built from closed windows' points."""

from gensight.demo.view import DemoView, SeriesId
from gensight.processor.points import GAUGE, SUM, MetricPoint, Window

S = 1_000_000_000
MINI = (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "gpt-4o-mini"))
TOOL = (("gen_ai.operation.name", "execute_tool"), ("gen_ai.provider.name", ""), ("gen_ai.tool.name", "lookup_order"))


def window(i: int) -> Window:
    return Window(i * 60 * S, (i + 1) * 60 * S)


def calls(total: float, outcome: str = "ok", attrs=MINI, service="support-bot", error_type=None) -> MetricPoint:
    extra = (("outcome", outcome),) + ((("error.type", error_type),) if error_type else ())
    return MetricPoint("gensight.calls", SUM, "{call}", service, attrs + extra, total, 0, 0)


def gauge(name: str, value: float, attrs=MINI, service="support-bot", **extra) -> MetricPoint:
    return MetricPoint(name, GAUGE, "1", service, attrs + tuple(extra.items()), value, 0, 0)


def test_calls_in_a_window_are_the_increase_of_the_cumulative_sum():
    view = DemoView()
    view.update(window(0), [calls(10), calls(1, "error", error_type="500")])
    view.update(window(1), [calls(25), calls(4, "error", error_type="500")])
    state = view.series[SeriesId("support-bot", "chat", "gpt-4o-mini")]
    assert (state.window_calls, state.window_errors) == (18, 3)
    assert (state.calls_total, state.errors_total) == (29, 4)
    assert state.error_rate == 3 / 18


def test_restarted_cumulative_sum_counts_from_zero():
    view = DemoView()
    view.update(window(0), [calls(50)])
    view.update(window(1), [calls(7)])
    state = view.series[SeriesId("support-bot", "chat", "gpt-4o-mini")]
    assert state.window_calls == 7 and state.calls_total == 57


def test_series_are_keyed_by_service_operation_and_target():
    view = DemoView()
    view.update(window(0), [calls(3), calls(2, attrs=TOOL, service="checkout-assistant")])
    assert set(view.series) == {
        SeriesId("support-bot", "chat", "gpt-4o-mini"),
        SeriesId("checkout-assistant", "execute_tool", "lookup_order"),
    }


def test_p95_latency_drift_and_anomaly_are_the_latest_values():
    view = DemoView()
    view.update(window(0), [calls(5), gauge("gensight.sli.latency", 1.5, quantile="0.95"),
                            gauge("gensight.sli.latency", 0.7, quantile="0.5"),
                            gauge("gensight.drift.score", 0.1), gauge("gensight.anomaly.score", 0.2)])
    view.update(window(1), [calls(9), gauge("gensight.sli.latency", 4.0, quantile="0.95"),
                            gauge("gensight.anomaly.score", 0.9)])
    state = view.series[SeriesId("support-bot", "chat", "gpt-4o-mini")]
    assert (state.p95_s, state.drift, state.anomaly) == (4.0, 0.1, 0.9)


def test_burn_rates_and_budget_are_kept_per_slo_and_window():
    view = DemoView()
    view.update(window(0), [
        gauge("gensight.slo.burn_rate", 20.0, attrs=(), slo="support-latency", window="5m"),
        gauge("gensight.slo.burn_rate", 3.0, attrs=(), slo="support-latency", window="1h"),
        gauge("gensight.slo.error_budget.remaining", 0.4, attrs=(), slo="support-latency"),
    ])
    slo = view.slos["support-latency"]
    assert slo.burn == {"5m": 20.0, "1h": 3.0} and slo.budget_remaining == 0.4


def test_active_alerts_are_those_with_a_positive_gauge_in_the_latest_window():
    view = DemoView()
    view.update(window(0), [gauge("gensight.alerts.active", 1, alert="slo_page", severity="page")])
    assert [a.name for a in view.active_alerts] == ["slo_page"]
    view.update(window(1), [gauge("gensight.alerts.active", 0, alert="slo_page", severity="page")])
    assert view.active_alerts == {}
    assert [a.name for a in view.fired_alerts] == ["slo_page"]


def test_incident_is_detected_in_the_first_window_with_an_anomaly_on_the_incident_model():
    view = DemoView(incident_start_ns=2 * 60 * S + 10 * S, incident_model="gpt-4o-mini")
    view.update(window(0), [calls(5), gauge("gensight.anomaly.score", 0.1)])
    view.update(window(1), [calls(9), gauge("gensight.anomaly.score", 0.2)])
    view.update(window(2), [calls(14), gauge("gensight.anomaly.score", 0.4)])  # contains the injection
    view.update(window(3), [calls(20), gauge("gensight.anomaly.score", 0.95)])
    assert view.detection is not None
    assert view.detection.windows_after_injection == 2
    assert "anomaly 0.95" in view.detection.signals[0]


def test_signals_on_other_models_do_not_count_as_detection():
    view = DemoView(incident_start_ns=0, incident_model="gpt-4o-mini")
    gpt4o = (("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "gpt-4o"))
    view.update(window(0), [gauge("gensight.anomaly.score", 0.99, attrs=gpt4o)])
    assert view.detection is None


def test_alerts_before_the_incident_are_reported_as_false_alarms():
    view = DemoView(incident_start_ns=10 * 60 * S, incident_model="gpt-4o-mini")
    view.update(window(0), [gauge("gensight.alerts.active", 1, alert="cost_spike", severity="ticket")])
    assert {a.name for a in view.false_alarms} == {"cost_spike"}
    assert view.detection is None


def test_out_of_order_window_is_ignored():
    view = DemoView()
    view.update(window(1), [calls(5)])
    view.update(window(0), [calls(100)])
    assert view.series[SeriesId("support-bot", "chat", "gpt-4o-mini")].calls_total == 5
    assert len(view.windows) == 1


def test_overflow_series_is_one_row():
    view = DemoView()
    view.update(window(0), [calls(3, attrs=(("otel.metric.overflow", True),), service="_overflow")])
    assert list(view.series) == [SeriesId("_overflow", "overflow", "")]


def test_exported_request_splits_back_into_windows_with_the_same_points():
    from gensight.demo.view import windows_from_request
    from gensight.processor.export.metric_builder import build_request

    w0, w1 = window(0), window(1)
    sent = [
        MetricPoint("gensight.calls", SUM, "{call}", "support-bot", MINI + (("outcome", "ok"),), 7.0, 0, w0.end_ns),
        MetricPoint("gensight.anomaly.score", GAUGE, "1", "support-bot", MINI, 0.25, w0.start_ns, w0.end_ns),
        MetricPoint("gensight.anomaly.score", GAUGE, "1", "support-bot", MINI, 0.9, w1.start_ns, w1.end_ns),
    ]
    got = windows_from_request(build_request(sent), 60 * S)
    assert [w for w, _ in got] == [w0, w1]
    first = {(p.name, p.service, p.value) for p in got[0][1]}
    assert first == {("gensight.calls", "support-bot", 7.0), ("gensight.anomaly.score", "support-bot", 0.25)}
    assert [p.value for p in got[1][1]] == [0.9]


def test_processor_self_telemetry_attaches_to_the_latest_window():
    from gensight.demo.view import windows_from_request
    from gensight.processor.export.metric_builder import build_request

    w0 = window(0)
    sent = [
        MetricPoint("gensight.anomaly.score", GAUGE, "1", "support-bot", MINI, 0.2, w0.start_ns, w0.end_ns),
        # live self-telemetry is stamped in wall time, not in a window
        MetricPoint("gensight.processor.spans", SUM, "{span}", "gensight-processor", (("outcome", "accepted"),),
                    42.0, 5, 999_999 * S),
    ]
    view = DemoView()
    for w, pts in windows_from_request(build_request(sent), 60 * S):
        view.update(w, pts)
    assert len(view.windows) == 1 and view.spans == {"accepted": 42.0}


def test_self_telemetry_of_a_window_not_shown_still_updates_the_span_counts():
    view = DemoView()
    view.update(window(0), [calls(5)])
    view.apply_self_telemetry([
        calls(99),  # not self-telemetry: ignored
        MetricPoint("gensight.processor.spans", SUM, "{span}", "gensight-processor", (("outcome", "late"),), 3.0, 0, 0),
    ])
    assert view.spans == {"late": 3.0}
    assert view.series[SeriesId("support-bot", "chat", "gpt-4o-mini")].calls_total == 5
