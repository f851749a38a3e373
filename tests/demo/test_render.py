"""Renderers: one plain line per window without a terminal, a rich screen with one, a summary."""

import io

from rich.console import Console

from gensight.demo.render import RunInfo, live_view, summary_lines, window_line
from gensight.demo.view import DemoView
from gensight.processor.points import GAUGE, SUM, MetricPoint, Window

S = 1_000_000_000
MINI = (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "gpt-4o-mini"))
INFO = RunInfo(
    event_base_ns=0, event_end_ns=10 * 60 * S, window_s=60, speed=40, incident_start_ns=5 * 60 * S,
    incident_model="gpt-4o-mini", incident_text="gpt-4o-mini latency x4, output tokens x3",
    services=("support-bot",),
)


def window(i: int) -> Window:
    return Window(i * 60 * S, (i + 1) * 60 * S)


def points(total_calls: float, p95: float, anomaly: float, alert: bool = False) -> list[MetricPoint]:
    pts = [
        MetricPoint("gensight.calls", SUM, "{call}", "support-bot", MINI + (("outcome", "ok"),), total_calls, 0, 0),
        MetricPoint("gensight.sli.latency", GAUGE, "s", "support-bot", MINI + (("quantile", "0.95"),), p95, 0, 0),
        MetricPoint("gensight.anomaly.score", GAUGE, "1", "support-bot", MINI, anomaly, 0, 0),
        MetricPoint("gensight.slo.burn_rate", GAUGE, "1", "support-bot", (("slo", "support-latency"), ("window", "1h")),
                    30.0 if alert else 0.5, 0, 0),
    ]
    if alert:
        pts.append(MetricPoint("gensight.alerts.active", GAUGE, "{alert}", "support-bot",
                               MINI + (("alert", "slo_burn_page"), ("severity", "page")), 1, 0, 0))
    return pts


def run_view() -> DemoView:
    view = DemoView(INFO.incident_start_ns, INFO.incident_model)
    for i in range(5):
        view.update(window(i), points(10 * (i + 1), 1.0, 0.1))
    view.update(window(5), points(60, 4.2, 0.93, alert=True))
    return view


def test_window_line_names_the_window_and_the_incident_model_signals():
    view = DemoView(INFO.incident_start_ns, INFO.incident_model)
    view.update(window(0), points(10, 1.0, 0.1))
    line = window_line(view, INFO)
    assert line.startswith("window   1/10")
    assert "normal" in line and "calls=10" in line
    assert "support-bot/gpt-4o-mini: p95=1.00s" in line and "anomaly=0.10" in line
    assert "\n" not in line


def test_window_line_marks_incident_and_detection():
    line = window_line(run_view(), INFO)
    assert "INCIDENT" in line
    assert "alerts=slo_burn_page(page)" in line
    assert "DETECTED 1 window(s) after injection" in line


def test_summary_reports_detection_alerts_and_output_file():
    text = "\n".join(summary_lines(run_view(), INFO, "/tmp/x/metrics.otlp.jsonl", 12.0))
    assert "incident DETECTED: yes, 1 window(s) after injection" in text
    assert "slo_burn_page [page] on support-bot/gpt-4o-mini" in text
    assert "OTLP/JSON metrics written to: /tmp/x/metrics.otlp.jsonl" in text


def test_summary_says_no_when_nothing_fired():
    view = DemoView(INFO.incident_start_ns, INFO.incident_model)
    view.update(window(6), points(10, 1.0, 0.1))
    text = "\n".join(summary_lines(view, INFO, None, 1.0))
    assert "incident DETECTED: no" in text and "alerts fired: none" in text


def test_live_view_renders_series_slos_and_alerts():
    out = io.StringIO()
    Console(file=out, width=160, force_terminal=False, color_system=None).print(live_view(run_view(), INFO, 6 * 60 * S))
    text = out.getvalue()
    assert "support-bot" in text and "gpt-4o-mini" in text
    assert "support-latency" in text
    assert "FIRING slo_burn_page" in text
    assert "ACTIVE" in text and "DETECTED" in text


def test_live_view_renders_before_any_window():
    out = io.StringIO()
    Console(file=out, width=100).print(live_view(DemoView(), INFO, 0))
    assert "no SLO points yet" in out.getvalue()


def test_live_view_fits_the_terminal_height_by_cutting_alert_transitions():
    log = [f"FIRING anomaly [ticket] support-bot|chat|openai|gpt-4o-mini: value 0.9{i}" for i in range(40)]
    out = io.StringIO()
    console = Console(file=out, width=160, height=40, color_system=None)
    console.print(live_view(run_view(), INFO, 6 * 60 * S, log, height=40))
    lines = out.getvalue().splitlines()
    assert len(lines) <= 40
    assert "value 0.939" in out.getvalue()  # the latest transitions are the ones kept


def test_window_line_shows_the_incident_series_quality():
    view = DemoView(INFO.incident_start_ns, INFO.incident_model)
    view.update(window(0), [*points(10, 1.0, 0.1),
                            MetricPoint("gensight.sli.quality", GAUGE, "1", "support-bot",
                                        MINI + (("gen_ai.evaluation.name", "concision"),), 0.93, 0, 0)])
    assert "quality=0.93" in window_line(view, INFO)
