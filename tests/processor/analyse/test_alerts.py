"""Alert state machine, OTLP log records and the Alertmanager-compatible webhook."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gensight.processor.analyse.alert_delivery import alertmanager_payload, logs_request
from gensight.processor.analyse.alerts import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED,
    AlertEngine,
    AlertsConfig,
)
from gensight.processor.points import Window

S = 10**9
T0 = 1_700_000_000 * S


def ev(engine, active, t, alert="anomaly", series="svc|chat|openai|m", value=0.9, severity="ticket"):
    engine.evaluate(alert, series, active, value=value, threshold=0.7, time_ns=t, severity=severity, service="svc")


def test_fires_and_resolves_with_one_record_per_transition():
    e = AlertEngine()
    ev(e, True, T0)
    ev(e, True, T0 + 60 * S)  # de-duplicated: still the same firing alert
    ev(e, False, T0 + 120 * S)
    assert [t.state for t in e.drain_transitions()] == [PENDING, FIRING, RESOLVED]


def test_for_duration_holds_the_alert_pending():
    e = AlertEngine(AlertsConfig(for_s=120))
    ev(e, True, T0)
    assert e.state_of("anomaly", "svc|chat|openai|m") == PENDING
    ev(e, True, T0 + 60 * S)
    assert e.state_of("anomaly", "svc|chat|openai|m") == PENDING
    ev(e, True, T0 + 120 * S)
    assert e.state_of("anomaly", "svc|chat|openai|m") == FIRING


def test_pending_that_clears_resolves_without_firing():
    e = AlertEngine(AlertsConfig(for_s=120))
    ev(e, True, T0)
    ev(e, False, T0 + 60 * S)
    assert [t.state for t in e.drain_transitions()] == [PENDING, RESOLVED]


def test_cooldown_suppresses_refiring():
    e = AlertEngine(AlertsConfig(cooldown_s=900))
    ev(e, True, T0)
    ev(e, False, T0 + 60 * S)
    e.drain_transitions()
    ev(e, True, T0 + 120 * S)
    assert e.drain_transitions() == []
    assert e.suppressed == 1
    ev(e, True, T0 + 60 * S + 901 * S)
    assert [t.state for t in e.drain_transitions()] == [PENDING, FIRING]


def test_stale_alert_resolves_when_the_series_goes_quiet():
    e = AlertEngine(AlertsConfig(stale_after_s=300))
    ev(e, True, T0)
    e.close(Window(T0 + 400 * S, T0 + 460 * S))
    t = e.drain_transitions()[-1]
    assert (t.state, t.reason) == (RESOLVED, "no data")


def test_separate_series_have_separate_states():
    e = AlertEngine()
    ev(e, True, T0, series="a")
    ev(e, False, T0, series="b")
    assert e.state_of("anomaly", "a") == FIRING
    assert e.state_of("anomaly", "b") == INACTIVE


def test_active_gauge_counts_firing_alerts_and_drops_to_zero():
    e = AlertEngine()
    ev(e, True, T0, series="a")
    ev(e, True, T0, series="b")
    pts = e.close(Window(T0, T0 + 60 * S))
    assert [(p.name, p.unit, p.attributes, p.value) for p in pts] == [
        ("gensight.alerts.active", "{alert}", (("alert", "anomaly"), ("severity", "ticket")), 2.0)]
    ev(e, False, T0 + 60 * S, series="a")
    ev(e, False, T0 + 60 * S, series="b")
    assert [p.value for p in e.close(Window(T0 + 60 * S, T0 + 120 * S))] == [0.0]


def test_runbook_url_comes_from_config():
    cfg = AlertsConfig.from_mapping({"runbook_base_url": "https://runbooks.example/gensight",
                                  "rules": {"drift": {"runbook_url": "https://wiki.example/drift"}}})
    e = AlertEngine(cfg)
    ev(e, True, T0)
    ev(e, True, T0, alert="drift")
    urls = {t.alert: t.runbook_url for t in e.drain_transitions()}
    assert urls == {"anomaly": "https://runbooks.example/gensight/anomaly", "drift": "https://wiki.example/drift"}


def test_disabled_rule_never_fires():
    e = AlertEngine(AlertsConfig.from_mapping({"rules": {"anomaly": {"enabled": False}}}))
    ev(e, True, T0)
    assert e.drain_transitions() == []


def test_logs_request_has_one_record_per_transition_with_attributes():
    e = AlertEngine(AlertsConfig(runbook_base_url="https://rb.example"))
    ev(e, True, T0, severity="page")
    req = logs_request(e.drain_transitions())
    rl = req.resource_logs[0]
    assert rl.resource.attributes[0].value.string_value == "svc"
    recs = rl.scope_logs[0].log_records
    assert len(recs) == 2
    firing = recs[1]
    attrs = {kv.key: kv.value for kv in firing.attributes}
    assert firing.severity_text == "ERROR" and firing.time_unix_nano == T0
    assert attrs["gensight.alert.state"].string_value == "firing"
    assert attrs["gensight.alert.value"].double_value == pytest.approx(0.9)
    assert attrs["gensight.alert.threshold"].double_value == pytest.approx(0.7)
    assert attrs["runbook_url"].string_value == "https://rb.example/anomaly"


def test_alertmanager_payload_shape():
    e = AlertEngine()
    ev(e, True, T0)
    ev(e, False, T0 + 60 * S)
    body = alertmanager_payload(e.drain_transitions()[1:])
    assert body["version"] == "4"
    a = body["alerts"][-1]
    assert a["status"] == "resolved" and a["labels"]["alertname"] == "anomaly"
    assert a["startsAt"].endswith("Z") and a["endsAt"].endswith("Z")
    assert len(a["fingerprint"]) == 16


def test_alertmanager_fingerprint_is_stable_per_alert_and_series():
    e = AlertEngine()
    ev(e, True, T0)
    ev(e, False, T0 + 60 * S)
    first, resolved = alertmanager_payload(e.drain_transitions()[1:])["alerts"]
    assert first["fingerprint"] == resolved["fingerprint"]


@pytest.fixture
def sink():
    received = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", received
    srv.shutdown()
    srv.server_close()
    th.join(5)


def _wait(cond, limit_s=10.0):
    deadline = time.monotonic() + limit_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_webhook_delivers_firing_and_resolved_to_a_real_server(sink):
    url, received = sink
    e = AlertEngine(AlertsConfig.from_mapping({"webhook": {"url": url}}))
    try:
        ev(e, True, T0)
        ev(e, False, T0 + 60 * S)
        _wait(lambda: sum(len(b["alerts"]) for b in received) >= 2)
    finally:
        e.shutdown()
    statuses = [a["status"] for b in received for a in b["alerts"]]
    assert statuses == ["firing", "resolved"]


def test_webhook_to_a_dead_endpoint_never_blocks_and_counts_failures():
    e = AlertEngine(AlertsConfig.from_mapping({"webhook": {"url": "http://127.0.0.1:9/none", "timeout_s": 0.5,
                                                        "max_queue": 1, "max_attempts": 1}}))
    try:
        for i in range(20):
            ev(e, True, T0 + i * 1000 * S, series=f"s{i}")
    finally:
        e.shutdown(timeout_s=10)
    assert e.webhook is not None
    assert e.webhook.dropped + e.webhook.failed + e.webhook.sent == 20
    assert e.webhook.dropped > 0


@pytest.mark.parametrize("bad, key", [({"cooldown_s": -1}, "alerts.cooldown_s"),
                                      ({"webhook": {"url": "ftp://x"}}, "alerts.webhook.url"),
                                      ({"rules": {"drift": {"colour": 1}}}, "alerts.rules.drift.colour"),
                                      ({"nope": 1}, "alerts.nope")])
def test_bad_config_names_the_key(bad, key):
    with pytest.raises(ValueError, match=key):
        AlertsConfig.from_mapping(bad)


def test_snapshot_round_trip_keeps_firing_alerts():
    e = AlertEngine()
    ev(e, True, T0)
    f = AlertEngine()
    f.import_state(json.loads(json.dumps(e.export_state())))
    assert f.active() == e.active()
