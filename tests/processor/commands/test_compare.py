"""``gensight compare``: the command on recorded span files — table, --json contract, --html in Chromium,
progress bars on a terminal (compare and replay)."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ab_streams import T0_NS, Effect, ab_requests, draw
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from otlp_wire import key_value

from gensight.processor.receive.decode import message_to_otlp_json

METRIC_KEYS = ["metric", "control", "treatment", "difference", "relative", "ci_low", "ci_high", "p_value",
               "p_value_adjusted", "significant", "better", "mde"]
CHROMIUM = shutil.which("chromium")


def write_spans(path: Path, requests) -> Path:
    with path.open("w") as f:
        for r in requests:
            f.write(json.dumps(message_to_otlp_json(r)) + "\n")
    return path


@pytest.fixture(scope="module")
def ab_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "ab.jsonl"
    return write_spans(path, ab_requests(11, 1500, Effect(latency=1.2, cost=0.6, errors=2.0)))


def gensight(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gensight", *args], capture_output=True, text=True, timeout=120,
                          **kw)


def test_json_output_has_exactly_the_contract_shape(ab_file):
    out = gensight("compare", str(ab_file), "--by", "feature_flag.result.variant", "--control", "control",
                   "--treatment", "treatment", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert list(doc) == ["by", "control", "treatment", "n", "srm_p_value", "metrics"]
    assert doc["by"] == "feature_flag.result.variant"
    assert (doc["control"], doc["treatment"]) == ("control", "treatment")
    assert doc["n"] == {"control": 1500, "treatment": 1500}
    assert doc["srm_p_value"] is None
    for m in doc["metrics"]:
        assert list(m) == METRIC_KEYS
        assert isinstance(m["significant"], bool) and m["better"] in ("control", "treatment", None)
        for key in METRIC_KEYS[1:9] + ["mde"]:
            assert m[key] is None or isinstance(m[key], float), (m["metric"], key)
    assert [m["metric"] for m in doc["metrics"]] == ["error_rate", "latency_mean_s", "latency_p50_s",
                                                     "latency_p95_s", "ttfc_s", "cost_per_call_usd",
                                                     "input_tokens", "output_tokens"]


def test_json_reports_the_effects_with_the_right_side_better(ab_file):
    out = gensight("compare", str(ab_file), "--by", "feature_flag.result.variant", "--control", "control",
                   "--treatment", "treatment", "--json", "--split", "0.5")
    doc = json.loads(out.stdout)
    better = {m["metric"]: m["better"] for m in doc["metrics"]}
    assert better["latency_p50_s"] == "control" and better["error_rate"] == "control"
    assert better["cost_per_call_usd"] == "treatment"
    assert doc["srm_p_value"] == pytest.approx(1.0)


def test_default_output_is_a_table_naming_both_arms(ab_file):
    out = gensight("compare", str(ab_file), "--by", "feature_flag.result.variant")
    assert out.returncode == 0, out.stderr
    assert "control 'control' (n=1500) vs treatment 'treatment' (n=1500)" in out.stdout
    assert any(line.startswith("latency_p95_s") for line in out.stdout.splitlines())
    assert out.stderr == ""  # not a terminal: no progress bar, nothing else


def test_unknown_arm_value_is_a_clear_error(ab_file):
    out = gensight("compare", str(ab_file), "--by", "feature_flag.result.variant", "--control", "nope",
                   "--treatment", "treatment")
    assert out.returncode == 1
    assert "no calls with feature_flag.result.variant='nope'" in out.stderr


def test_attribute_with_fewer_than_two_values_is_a_clear_error(ab_file):
    out = gensight("compare", str(ab_file), "--by", "gen_ai.request.model")
    assert out.returncode == 1 and "fewer than two values" in out.stderr


@pytest.mark.parametrize("args,message", [
    (["--where", "novalue"], "KEY=VALUE"), (["--alpha", "1.5"], "--alpha"), (["--split", "0"], "--split"),
])
def test_bad_arguments_are_rejected(ab_file, args, message):
    out = gensight("compare", str(ab_file), "--by", "x", *args)
    assert out.returncode == 2 and message in out.stderr


def test_missing_file_is_rejected(tmp_path):
    out = gensight("compare", str(tmp_path / "none.jsonl"), "--by", "x")
    assert out.returncode == 2 and "no such file" in out.stderr


def test_html_report_is_self_contained(ab_file, tmp_path):
    report = tmp_path / "report.html"
    out = gensight("compare", str(ab_file), "--by", "feature_flag.result.variant", "--html", str(report))
    assert out.returncode == 0, out.stderr
    text = report.read_text()
    assert text.count('src="data:image/svg+xml;base64,') == 3  # latency, cost, differences
    assert "<script" not in text and 'src="http' not in text and 'href="http' not in text


_PROBE = ('<script>window.addEventListener("load", () => console.log("gensight-probe images " + '
          '[...document.images].filter(i => i.complete && i.naturalWidth > 0).length + "/" + '
          'document.images.length));</script></body>')


def _chromium_console(page: Path, profile: Path) -> list[str]:
    """Console messages Chromium logged while loading ``page`` headless."""
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    return [line for line in out.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (.ci/run installs it)")
def test_html_report_opens_in_chromium_without_console_errors(ab_file, tmp_path):
    report = tmp_path / "report.html"
    assert gensight("compare", str(ab_file), "--by", "feature_flag.result.variant", "--html",
                    str(report)).returncode == 0
    probe = tmp_path / "probe.html"  # the report plus a load handler that counts decoded images
    probe.write_text(report.read_text().replace("</body>", _PROBE))
    console = _chromium_console(probe, tmp_path / "profile")
    assert len(console) == 1, console  # only the probe's own message: no error of any kind
    assert '"gensight-probe images 3/3"' in console[0]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (.ci/run installs it)")
def test_chromium_console_check_sees_errors(tmp_path):
    """The check above can fail: a page with a script error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>nosuch();</script></body></html>")
    assert any("nosuch" in line for line in _chromium_console(page, tmp_path / "profile"))


def _run_on_terminal(*args: str, stdout_too: bool = False) -> str:
    """Run gensight with stderr (and stdout) on a pseudo-terminal; returns what it drew there."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "gensight", *args],
                            stdout=follower if stdout_too else subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_compare_draws_a_progress_bar_on_a_terminal(ab_file):
    drawn = _run_on_terminal("compare", str(ab_file), "--by", "feature_flag.result.variant")
    assert "ab.jsonl" in drawn and "3,000 spans" in drawn and "spans/s" in drawn


def test_replay_draws_a_progress_bar_on_a_terminal(ab_file, tmp_path):
    drawn = _run_on_terminal("replay", str(ab_file), "-o", str(tmp_path / "m.jsonl"))
    assert "3,000 spans" in drawn and "spans/s" in drawn


def test_replay_draws_no_bar_when_its_metrics_go_to_the_terminal(ab_file):
    drawn = _run_on_terminal("replay", str(ab_file), stdout_too=True)
    assert '"resourceMetrics"' in drawn and "spans/s" not in drawn


def test_replay_writes_no_progress_when_not_a_terminal(ab_file, tmp_path):
    out = gensight("replay", str(ab_file), "-o", str(tmp_path / "m.jsonl"))
    assert out.returncode == 0
    assert "spans/s" not in out.stderr and out.stderr.count("\n") == 1  # the one summary line


def test_replay_with_a_live_experiment_exports_its_metrics_and_decision(ab_file, tmp_path):
    """The same stream through the processor (replay): experiment metrics and the decided record."""
    cfg = tmp_path / "gensight.yaml"
    cfg.write_text("analytics:\n  experiments:\n"
                   "    - {name: swap, by: feature_flag.result.variant, control: control, treatment: treatment,\n"
                   "       metrics: [cost_per_call_usd, error_rate], guardrails: {error_rate: {max_relative: 0.2}}}\n")
    metrics, logs = tmp_path / "m.jsonl", tmp_path / "l.jsonl"
    out = gensight("replay", str(ab_file), "--config", str(cfg), "-o", str(metrics), "--logs-output", str(logs))
    assert out.returncode == 0, out.stderr
    text = metrics.read_text()
    for name in ("gensight.experiment.samples", "gensight.experiment.difference", "gensight.experiment.p_value"):
        assert name in text
    records = [r for line in logs.read_text().splitlines()
               for rl in json.loads(line)["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    events = [(r.get("eventName"), {a["key"]: a["value"] for a in r["attributes"]}) for r in records]
    decided = [a for e, a in events if e == "experiment_decided"]
    assert [(a["metric"]["stringValue"], a["gensight.experiment.better"]["stringValue"]) for a in decided] == \
        [("cost_per_call_usd", "treatment")]
    pages = [a for e, a in events if e == "gensight.alert" and a["gensight.alert.name"]["stringValue"] == "experiment_guardrail"]
    assert any(a["gensight.alert.state"]["stringValue"] == "firing" for a in pages)  # errors x2 > +20 %


def test_readme_worked_example_two_models_on_the_fake_provider(tmp_path):
    """examples/compare_models.py (the README's worked example), shortened: the small model is cheaper."""
    spans = tmp_path / "spans.jsonl"
    example = Path(__file__).resolve().parents[3] / "examples" / "compare_models.py"
    run = subprocess.run([sys.executable, str(example), str(spans), "--calls", "80"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    out = gensight("compare", str(spans), "--by", "feature_flag.result.variant", "--control", "large",
                   "--treatment", "small", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["n"]["control"] + doc["n"]["treatment"] == 80
    cost = next(m for m in doc["metrics"] if m["metric"] == "cost_per_call_usd")
    assert cost["better"] == "treatment" and cost["relative"] < -0.9


# -- evaluation results as OTLP log records (a spans file and a logs file) ------------------------

def _rated_requests(seed: int, n: int):
    """A/B calls whose spans carry evaluation events: the treatment is rated lower."""
    from ab_streams import build_request, span_specs

    rng = np.random.default_rng(seed)
    specs = []
    for variant, mean in (("control", 0.8), ("treatment", 0.7)):
        for i, s in enumerate(span_specs(draw(rng, n), variant, T0_NS + (variant == "treatment"), 2 * 10**8)):
            score = float(np.clip(rng.normal(mean, 0.1), 0, 1))
            s["gen_ai.response.id"] = f"{variant}-{i}"
            s["_evaluations"] = [("relevance", score, "pass" if score >= 0.75 else "fail")]
            specs.append(s)
    specs.sort(key=lambda s: s["_end"])
    return [build_request(specs[i:i + 100]) for i in range(0, len(specs), 100)]


def _events_to_log_records(requests, *, by_response_id: bool = False):
    """The same evaluations as OTLP log records parented to the judged span (or naming its
    response id), and the spans without their events."""
    spans_only, logs = [], ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    rl.resource.attributes.append(key_value("service.name", "judge"))
    sl = rl.scope_logs.add()
    for r in requests:
        r = type(r).FromString(r.SerializeToString())
        for span in (s for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans):
            for ev in span.events:
                lr = sl.log_records.add(time_unix_nano=ev.time_unix_nano, event_name=ev.name)
                lr.attributes.extend(ev.attributes)
                if by_response_id:
                    rid = next(kv.value for kv in span.attributes if kv.key == "gen_ai.response.id")
                    lr.attributes.append(key_value("gen_ai.response.id", rid.string_value))
                else:
                    lr.trace_id, lr.span_id = span.trace_id, span.span_id
            del span.events[:]
        spans_only.append(r)
    return spans_only, logs


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    """(span-event file, spans file, logs file by span id, logs file by response id)."""
    d = tmp_path_factory.mktemp("rated")
    requests = _rated_requests(3, 300)
    spans_only, logs = _events_to_log_records(requests)
    _, logs_by_rid = _events_to_log_records(requests, by_response_id=True)
    return (write_spans(d / "events.jsonl", requests), write_spans(d / "spans.jsonl", spans_only),
            write_spans(d / "logs.jsonl", [logs]), write_spans(d / "logs_rid.jsonl", [logs_by_rid]))


def _compare_json(*files: Path) -> tuple[dict, str]:
    out = gensight("compare", *map(str, files), "--by", "feature_flag.result.variant", "--control", "control",
                   "--treatment", "treatment", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), out.stderr


def _quality_rows(doc: dict) -> list[dict]:
    return [m for m in doc["metrics"] if m["metric"].startswith(("quality:", "pass_ratio:"))]


def test_log_record_evaluations_give_the_same_report_as_span_events(rated):
    events, spans, logs, _ = rated
    from_events, _ = _compare_json(events)
    from_logs, _ = _compare_json(spans, logs)
    assert [m["metric"] for m in _quality_rows(from_events)] == ["quality:relevance", "pass_ratio:relevance"]
    assert from_logs == from_events  # every row, quality and pass ratio included


def test_log_records_join_by_response_id_and_when_read_before_their_spans(rated):
    events, spans, _, logs_by_rid = rated
    from_events, _ = _compare_json(events)
    from_logs, stderr = _compare_json(logs_by_rid, spans)  # evaluations wait for their calls
    assert _quality_rows(from_logs) == _quality_rows(from_events)
    assert "600 joined to their call, 0 unjoined" in stderr


def test_quality_drop_is_found_with_the_right_sign(rated):
    doc, _ = _compare_json(rated[1], rated[2])
    rows = {m["metric"]: m for m in _quality_rows(doc)}
    assert rows["quality:relevance"]["difference"] < 0 and rows["quality:relevance"]["better"] == "control"
    assert rows["pass_ratio:relevance"]["better"] == "control"


def test_an_evaluation_whose_call_is_absent_is_counted_not_lost(rated, tmp_path):
    _, spans, logs, _ = rated
    stray = ExportLogsServiceRequest()
    lr = stray.resource_logs.add().scope_logs.add().log_records.add(
        time_unix_nano=T0_NS + 10**9, event_name="gen_ai.evaluation.result", span_id=b"\x01" * 8,
        trace_id=b"\x02" * 16)
    lr.attributes.extend([key_value("gen_ai.evaluation.name", "relevance"),
                          key_value("gen_ai.evaluation.score.value", 0.0)])
    with_stray = write_spans(tmp_path / "stray.jsonl", [stray])
    baseline, _ = _compare_json(spans, logs)
    doc, stderr = _compare_json(spans, logs, with_stray)
    assert doc == baseline  # its score is not counted for any arm
    assert "600 joined to their call, 1 unjoined" in stderr


def test_a_file_of_spans_alone_says_nothing_about_evaluations(ab_file):
    _, stderr = _compare_json(ab_file)
    assert "evaluation" not in stderr


def test_replay_live_experiment_reads_quality_from_log_records_and_latency_quantiles(rated, tmp_path):
    """The live experiment gets evaluation results through the pipeline's join (logs file next to
    the spans file) and reports the latency quantiles too."""
    _, spans, logs, _ = rated
    cfg = tmp_path / "gensight.yaml"
    cfg.write_text("analytics:\n  experiments:\n"
                   "    - {name: judge, by: feature_flag.result.variant, control: control, treatment: treatment,\n"
                   "       metrics: [quality:relevance, pass_ratio:*, latency_p95_s], min_samples: 50}\n")
    metrics, logs_out = tmp_path / "m.jsonl", tmp_path / "l.jsonl"
    out = gensight("replay", str(spans), str(logs), "--config", str(cfg), "-o", str(metrics),
                   "--logs-output", str(logs_out))
    assert out.returncode == 0, out.stderr
    seen = set()
    for line in metrics.read_text().splitlines():
        for rm in json.loads(line)["resourceMetrics"]:
            for sm in rm["scopeMetrics"]:
                for m in sm["metrics"]:
                    if m["name"] == "gensight.experiment.samples":
                        for dp in m["sum"]["dataPoints"]:
                            attrs = {a["key"]: a["value"]["stringValue"] for a in dp["attributes"]}
                            seen.add((attrs["metric"], attrs["variant"], int(dp["asDouble"])))
    final: dict = {}
    for metric, variant, n in seen:  # cumulative counts: the last is the largest
        final[(metric, variant)] = max(n, final.get((metric, variant), 0))
    assert final[("quality:relevance", "treatment")] == 300 and final[("pass_ratio:relevance", "control")] == 300
    assert final[("latency_p95_s", "control")] == 300
    decided = [r for line in logs_out.read_text().splitlines() for rl in json.loads(line)["resourceLogs"]
               for sl in rl["scopeLogs"] for r in sl["logRecords"] if r.get("eventName") == "experiment_decided"]
    (record,) = decided
    attrs = {a["key"]: a["value"] for a in record["attributes"]}
    assert attrs["metric"]["stringValue"] == "quality:relevance"
    assert attrs["gensight.experiment.better"]["stringValue"] == "control"


def test_config_pass_rule_decides_the_pass_ratio(rated, tmp_path):
    """--config: the processor's evaluations section (here: a score threshold instead of the labels)."""
    _, spans, logs, _ = rated
    cfg = tmp_path / "gensight.yaml"
    cfg.write_text("evaluations:\n  pass_labels: [no-such-label]\n")  # every labelled result fails
    out = gensight("compare", str(spans), str(logs), "--by", "feature_flag.result.variant", "--config", str(cfg),
                   "--json")
    assert out.returncode == 0, out.stderr
    rows = {m["metric"]: m for m in json.loads(out.stdout)["metrics"]}
    assert rows["pass_ratio:relevance"]["control"] == 0.0 and rows["pass_ratio:relevance"]["treatment"] == 0.0


def test_bad_config_is_a_clear_error(ab_file, tmp_path):
    cfg = tmp_path / "gensight.yaml"
    cfg.write_text("evaluations:\n  wait_max: 0\n")
    out = gensight("compare", str(ab_file), "--by", "x", "--config", str(cfg))
    assert out.returncode == 2 and "evaluations.wait_max" in out.stderr
