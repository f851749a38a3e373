"""Example traces on alerts: the ids match the alert's cause, come from the offending series and
window, are bounded, and reach the log record and the webhook."""

from __future__ import annotations

import json
import random

import pytest

from gensight.processor.analyse.alert_delivery import alertmanager_payload, logs_request
from gensight.processor.analyse.alerts import AlertEngine, AlertsConfig
from gensight.processor.analyse.analytics import Analytics, AnalyticsConfig, run_windows
from gensight.processor.analyse.examples import MAX_EXAMPLES, ExampleTracker
from gensight.processor.labels import series_id
from gensight.processor.points import Window
from gensight.processor.records import CallRecord, SeriesKey

S = 1_000_000_000
T0 = 1_700_000_040 * S  # a window boundary
W = Window(T0, T0 + 60 * S)
KEY = SeriesKey("svc", "chat", "openai", "gpt-4o")


class Calls:
    """Traced calls with distinct trace ids; remembers each call by its hex id."""

    def __init__(self) -> None:
        self.n = 0
        self.by_id: dict[str, CallRecord] = {}

    def __call__(self, end_ns: int, d: float = 0.5, *, error: bool = False, cost: float | None = None,
                 model: str = "gpt-4o", service: str = "svc", relevance: float | None = None,
                 kind: str = "chat") -> CallRecord:
        self.n += 1
        r = CallRecord(kind, service, "openai", model, end_ns - int(d * S), end_ns, d, cost_usd=cost, error=error,
                       error_type="Timeout" if error else None, relevance=relevance,
                       trace_id=self.n.to_bytes(16, "big"), span_id=self.n.to_bytes(8, "big"))
        self.by_id[r.trace_id.hex()] = r
        return r


def burn_stream(calls: Calls, minutes: int, slow: bool) -> list[CallRecord]:
    """10 calls a minute; 30 % are bad: failed (``slow`` False) or slow (``slow`` True)."""
    rng = random.Random(7)
    out = []
    for m in range(minutes):
        for i in range(10):
            bad = i < 3
            d = rng.uniform(5.0, 9.0) if bad and slow else rng.uniform(0.1, 0.9)
            out.append(calls(T0 + m * 60 * S + (i + 1) * S, d, error=bad and not slow))
    return out


def first_firing(slo: dict, records: list[CallRecord]):
    analytics = Analytics(AnalyticsConfig.from_dict({"slos": [slo]}), deterministic=True)
    transitions = []
    run_windows(analytics.analysers, records, on_close=lambda w, p: transitions.extend(analytics.drain_transitions()))
    return next(t for t in transitions if t.state == "firing" and t.alert == "slo_burn_fast")


def in_window(calls: Calls, ids, end_ns: int) -> list[CallRecord]:
    recs = [calls.by_id[i] for i in ids]
    assert all(end_ns - 60 * S <= r.end_ns < end_ns for r in recs)
    return recs


def test_availability_burn_alert_carries_failed_calls_of_its_window():
    calls = Calls()
    t = first_firing({"name": "avail", "type": "availability", "target": 0.99}, burn_stream(calls, 12, slow=False))
    recs = in_window(calls, t.example_trace_ids, t.time_ns)
    assert len(recs) == 3 and all(r.error for r in recs)  # the window's three failures, no healthy call


def test_latency_burn_alert_carries_the_slowest_calls_of_its_window():
    calls = Calls()
    t = first_firing({"name": "fast", "type": "latency", "target": 0.99, "threshold_s": 2.0},
                     burn_stream(calls, 12, slow=True))
    recs = in_window(calls, t.example_trace_ids, t.time_ns)
    window = [r for r in calls.by_id.values() if t.time_ns - 60 * S <= r.end_ns < t.time_ns]
    slowest = sorted(window, key=lambda r: -r.duration_s)[:MAX_EXAMPLES]
    assert recs == slowest  # best first


def test_cost_spike_examples_are_the_services_most_expensive_calls():
    calls = Calls()
    tracker = ExampleTracker()
    recs = [calls(T0 + i * S, cost=0.001 * i, model=f"m{i % 3}") for i in range(1, 20)]
    recs.append(calls(T0 + 30 * S, cost=5.0, service="other"))
    tracker.observe(W, recs)
    ids = tracker.for_alert("cost_spike", "svc", "svc", (), W.end_ns)
    assert [calls.by_id[i].cost_usd for i in ids] == pytest.approx([0.019, 0.018, 0.017, 0.016, 0.015])


def test_drift_on_duration_gives_the_slowest_and_on_relevance_the_lowest_scored():
    calls = Calls()
    tracker = ExampleTracker()
    tracker.observe(W, [calls(T0 + i * S, 0.1 * i, relevance=0.1 * i, kind="retrieval") for i in range(1, 10)])
    sid = series_id(SeriesKey("svc", "retrieval", "openai", "gpt-4o"))
    slow = tracker.for_alert("drift", sid, "svc", (("gensight.drift.feature", "duration"),), W.end_ns)
    low = tracker.for_alert("drift", sid, "svc", (("gensight.drift.feature", "relevance"),), W.end_ns)
    assert [calls.by_id[i].duration_s for i in slow] == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5])
    assert [calls.by_id[i].relevance for i in low] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_examples_come_from_the_alerts_series_only():
    calls = Calls()
    tracker = ExampleTracker()
    tracker.observe(W, [calls(T0 + S, 9.0, error=True, model="other"), calls(T0 + 2 * S, 0.2, error=True)])
    (tid,) = tracker.for_alert("anomaly", series_id(KEY), "svc", (), W.end_ns)
    assert calls.by_id[tid].target == "gpt-4o"


def test_candidates_are_bounded_per_series_and_windows_are_dropped():
    calls = Calls()
    tracker = ExampleTracker()
    for w in range(50):
        win = Window(T0 + w * 60 * S, T0 + (w + 1) * 60 * S)
        tracker.observe(win, [calls(win.start_ns + i * 10**6, 0.001 * i, error=True, cost=0.01) for i in range(1, 500)])
        tracker.close(win)
    assert len(tracker._windows) == 1
    (cands,) = tracker._windows[win.end_ns].values()
    assert all(len(getattr(cands, f)) <= MAX_EXAMPLES for f in ("errors", "slowest", "costliest", "lowest_scored"))


def test_calls_without_trace_ids_give_no_examples():
    tracker = ExampleTracker()
    tracker.observe(W, [CallRecord("chat", "svc", "openai", "gpt-4o", T0, T0 + S, 1.0, error=True)])
    assert tracker.for_alert("anomaly", series_id(KEY), "svc", (), W.end_ns) == ()


def test_log_record_carries_example_ids_as_a_string_array():
    calls = Calls()
    tracker = ExampleTracker()
    tracker.observe(W, [calls(T0 + S, 3.0, error=True)])
    engine = AlertEngine()
    engine.examples = tracker.for_alert
    engine.evaluate("anomaly", series_id(KEY), True, value=0.9, threshold=0.7, time_ns=W.end_ns, service="svc")
    transitions = engine.drain_transitions()
    rec = logs_request(transitions).resource_logs[0].scope_logs[0].log_records[-1]
    (attr,) = [a for a in rec.attributes if a.key == "gensight.alert.example_trace_ids"]
    assert [v.string_value for v in attr.value.array_value.values] == [(1).to_bytes(16, "big").hex()]


def test_webhook_annotations_link_the_examples_through_the_template():
    cfg = AlertsConfig.from_mapping({"trace_url_template": "http://jaeger:16686/trace/{trace_id}"})
    engine = AlertEngine(cfg)
    engine.examples = lambda *a: ("ab" * 16, "cd" * 16)
    engine.evaluate("anomaly", series_id(KEY), True, value=0.9, threshold=0.7, time_ns=W.end_ns, service="svc")
    payload = alertmanager_payload(engine.drain_transitions(), trace_url_template=cfg.trace_url_template)
    ann = json.loads(json.dumps(payload))["alerts"][0]["annotations"]
    assert ann["example_trace_ids"] == f"{'ab' * 16},{'cd' * 16}"
    assert ann["example_trace_urls"].split() == [f"http://jaeger:16686/trace/{'ab' * 16}",
                                                 f"http://jaeger:16686/trace/{'cd' * 16}"]


def test_trace_url_template_must_hold_the_trace_id_placeholder():
    with pytest.raises(ValueError, match="alerts.trace_url_template"):
        AlertsConfig.from_mapping({"trace_url_template": "http://jaeger/trace/"})


def test_webhook_posts_example_trace_links_to_a_real_server():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *a):  # noqa: ANN002
            pass

        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    calls = Calls()
    tracker = ExampleTracker()
    tracker.observe(W, [calls(T0 + S, 2.0, error=True)])
    engine = AlertEngine(AlertsConfig.from_mapping({"webhook": {"url": f"http://127.0.0.1:{srv.server_address[1]}/hook"},
                                                 "trace_url_template": "http://jaeger:16686/trace/{trace_id}"}))
    engine.examples = tracker.for_alert
    try:
        engine.evaluate("anomaly", series_id(KEY), True, value=0.9, threshold=0.7, time_ns=W.end_ns, service="svc")
        for _ in range(500):
            if received:
                break
            threading.Event().wait(0.02)
    finally:
        engine.shutdown()
        srv.shutdown()
        srv.server_close()
    (alert,) = received[0]["alerts"]
    assert alert["annotations"]["example_trace_urls"] == f"http://jaeger:16686/trace/{(1).to_bytes(16, 'big').hex()}"


def test_anomaly_examples_follow_the_alerts_top_signal():
    calls = Calls()
    tracker = ExampleTracker()
    tracker.observe(W, [calls(T0 + S, 9.0), calls(T0 + 2 * S, 0.1, error=True)])
    by_signal = {sig: tracker.for_alert("anomaly", series_id(KEY), "svc", (("gensight.alert.signal", sig),), W.end_ns)
                 for sig in ("latency_p95", "error_rate")}
    assert calls.by_id[by_signal["latency_p95"][0]].duration_s == 9.0
    assert calls.by_id[by_signal["error_rate"][0]].error


def test_quality_anomaly_links_the_judged_calls_with_the_lowest_evaluation_scores():
    from gensight.processor.normalise.evaluations import Evaluation

    calls = Calls()
    tracker = ExampleTracker()
    judged = [calls(T0 + i * S) for i in range(1, 9)]
    tracker.observe(W, judged)
    scores = [0.9, 0.2, 0.8, 0.1, 0.7, 0.3, 0.95, 0.4]
    evaluations = [Evaluation("groundedness", s, None, None, "judge", T0 + 30 * S, b"", b"", None, call=c)
                   for s, c in zip(scores, judged, strict=True)]
    evaluations.append(Evaluation("groundedness", 0.0, None, None, "judge", T0 + 30 * S, b"", b"", None))  # unjoined
    tracker.observe_evaluations(W, evaluations)
    ids = tracker.for_alert("anomaly", series_id(KEY), "svc", (("gensight.alert.signal", "quality"),), W.end_ns)
    by_call = {c.trace_id.hex(): s for s, c in zip(scores, judged, strict=True)}
    assert [by_call[i] for i in ids] == [0.1, 0.2, 0.3, 0.4, 0.7]  # the five worst scores, worst first
