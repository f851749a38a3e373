"""`gensight demo` end to end, as CI runs it: no TTY, so one plain line per window.

One short run (compressed time: 8 s of wall clock = 6 minutes of traffic in 20 s windows) is
shared by the tests below; each test checks one behaviour of that run.
"""

import json
import subprocess
import sys

import pytest

CONTRACT_METRICS = {
    "gensight.calls",
    "gensight.call.duration",
    "gensight.tokens",
    "gensight.cost",
    "gensight.sli.latency",
    "gensight.slo.burn_rate",
    "gensight.anomaly.score",
    "gensight.alerts.active",
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "metrics.otlp.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "gensight", "demo", "--duration-s", "8", "--speed", "45", "--window-s", "20",
         "--seed", "3", "--output", str(out)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240,
    )
    return proc, out


def test_demo_exits_zero(demo_run):
    proc, _ = demo_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_demo_without_a_tty_prints_one_line_per_window(demo_run):
    proc, _ = demo_run
    window_lines = [line for line in proc.stdout.splitlines() if line.startswith("window ")]
    assert len(window_lines) >= 15, proc.stdout[-3000:]
    assert all(" | " in line for line in window_lines)
    assert "\x1b[" not in proc.stdout  # no live-display escape codes


def test_demo_injects_the_incident_halfway(demo_run):
    proc, _ = demo_run
    lines = [line for line in proc.stdout.splitlines() if line.startswith("window ")]
    states = ["INCIDENT" in line for line in lines]
    first = states.index(True)
    assert not any(states[:first]) and all(states[first:])
    assert len(lines) / 4 < first < len(lines) * 3 / 4


def test_demo_reports_the_incident_as_detected(demo_run):
    proc, _ = demo_run
    assert "incident DETECTED: yes" in proc.stdout, proc.stdout[-3000:]


def test_demo_summary_names_the_metrics_file(demo_run):
    proc, out = demo_run
    assert f"OTLP/JSON metrics written to: {out}" in proc.stdout


def test_demo_metrics_file_is_otlp_json_with_the_contract_metrics(demo_run):
    _, out = demo_run
    names = set()
    services = set()
    for line in out.read_text().splitlines():
        request = json.loads(line)
        for rm in request["resourceMetrics"]:
            for attr in rm["resource"]["attributes"]:
                if attr["key"] == "service.name":
                    services.add(attr["value"]["stringValue"])
            for sm in rm["scopeMetrics"]:
                names.update(m["name"] for m in sm["metrics"])
    assert names >= CONTRACT_METRICS
    assert {"checkout-assistant", "support-bot", "search-rag"} <= services


def _quality_by_window(out) -> dict[int, list[float]]:
    """gensight.sli.quality of the incident model's series, by window end."""
    by_time: dict[int, list[float]] = {}
    for line in out.read_text().splitlines():
        for rm in json.loads(line)["resourceMetrics"]:
            for sm in rm["scopeMetrics"]:
                for m in sm["metrics"]:
                    if m["name"] != "gensight.sli.quality":
                        continue
                    for dp in m["gauge"]["dataPoints"]:
                        attrs = {a["key"]: a["value"].get("stringValue") for a in dp["attributes"]}
                        if attrs.get("gen_ai.request.model") == "gpt-4o-mini":
                            by_time.setdefault(int(dp["timeUnixNano"]), []).append(dp["asDouble"])
    return by_time


def test_demo_judges_answers_and_the_incident_lowers_quality(demo_run):
    _, out = demo_run
    by_time = _quality_by_window(out)
    assert len(by_time) >= 4, by_time
    times = sorted(by_time)
    first, last = by_time[times[0]], by_time[times[-1]]
    assert min(first) > 0.85 and max(last) < min(first) - 0.2


def test_demo_processor_drops_and_refuses_no_spans(demo_run):
    proc, _ = demo_run
    line = next(line for line in proc.stdout.splitlines() if line.startswith("processor spans:"))
    assert "dropped=0" in line and "refused=0" in line


def test_demo_rejects_a_non_positive_duration():
    proc = subprocess.run(
        [sys.executable, "-m", "gensight", "demo", "--duration-s", "0"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "--duration-s: must be > 0" in proc.stderr


def test_demo_rejects_an_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "gensight", "demo", "--output", str(blocker / "metrics.jsonl")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "cannot write --output" in proc.stderr


def test_demo_writes_alert_transitions_as_otlp_log_records(demo_run):
    proc, out = demo_run
    alerts = out.with_name("metrics.alerts.otlp.jsonl")
    assert f"as OTLP/JSON log records: {alerts}" in proc.stdout
    bodies = [
        record["body"]["stringValue"]
        for line in alerts.read_text().splitlines()
        for rl in json.loads(line)["resourceLogs"]
        for sl in rl["scopeLogs"]
        for record in sl["logRecords"]
    ]
    assert any(body.startswith("FIRING") for body in bodies)


def test_demo_without_its_extra_says_how_to_install_it(monkeypatch, capsys):
    import gensight.demo.command
    from gensight.cli import main

    monkeypatch.setitem(gensight.demo.command.REQUIRED_MODULES, "gensight_no_such_module", "no-such-package")
    assert main(["demo", "--duration-s", "1"]) == 2
    err = capsys.readouterr().err
    assert "missing no-such-package" in err and "pip install 'gensight[demo]'" in err


def test_demo_serves_the_status_page_on_loopback_and_prints_its_url(demo_run):
    import re

    proc, _ = demo_run
    assert re.search(r"^gensight demo: status page http://127\.0\.0\.1:\d+/ui/$", proc.stdout, re.M), proc.stdout[:2000]
