"""The SQLite state file: round trip, refusal of corrupt/foreign files, lock, kill -9 survival."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from gensight.processor.analyse.analytics import Analytics, AnalyticsConfig
from gensight.processor.analyse.state import STATE_FILE, StateError, StateLocked, StateStore


def test_save_and_load_round_trip(tmp_path):
    s = StateStore(tmp_path)
    s.save({"drift": {"a": [1, 2.5]}, "slo": {}})
    s.close()
    s2 = StateStore(tmp_path)
    assert s2.load() == {"drift": {"a": [1, 2.5]}, "slo": {}}
    s2.close()


def test_state_file_uses_wal(tmp_path):
    StateStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / STATE_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_corrupt_file_gives_an_error_naming_file_and_way_out(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError) as exc:
        StateStore(tmp_path)
    assert str(tmp_path / STATE_FILE) in str(exc.value)
    assert "--reset-state" in str(exc.value)
    assert (tmp_path / STATE_FILE).read_bytes().startswith(b"this is not sqlite")  # untouched


def test_foreign_sqlite_file_is_refused(tmp_path):
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="not a Gensight state database"):
        StateStore(tmp_path)


def test_other_schema_version_is_refused(tmp_path):
    StateStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="schema version 99"):
        StateStore(tmp_path)


def test_reset_state_keeps_the_old_file_as_backup(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"garbage" * 100)
    StateStore(tmp_path, reset=True).close()
    backups = [p.name for p in tmp_path.iterdir() if ".bak-" in p.name]
    assert len(backups) == 1
    StateStore(tmp_path).close()  # the new file opens


def test_second_writer_is_locked_out(tmp_path):
    s = StateStore(tmp_path)
    try:
        with pytest.raises(StateLocked, match="--admin-url"):
            StateStore(tmp_path)
    finally:
        s.close()


DRIVER = textwrap.dedent('''
    import sys, time
    from gensight.processor.analyse.analytics import Analytics, AnalyticsConfig
    from gensight.processor.points import Window
    from gensight.processor.records import CallRecord
    cfg = AnalyticsConfig.from_dict({
        "slos": [{"name": "avail", "target": 0.99}],
        "budgets": [{"name": "all", "limit_usd": 100.0}],
        "drift": {"reference_calls": 100},
        "anomaly": {"refit": "sync", "min_fit_rows": 20},
    })
    a = Analytics(cfg, state_dir=sys.argv[1])
    MIN = 60 * 10**9
    T0 = 1_700_000_000 * 10**9 // MIN * MIN
    for m in range(100000):
        w = Window(T0 + m * MIN, T0 + (m + 1) * MIN)
        recs = [CallRecord("chat", "svc", "openai", "m", w.start_ns + i * 10**9, w.start_ns + i * 10**9 + 5 * 10**8,
                           0.5 + (i % 7) / 10, input_tokens=100 + i, output_tokens=50 + i, cost_usd=0.01,
                           error=(i == 0 and m % 3 == 0), finish_reason="stop") for i in range(30)]
        for an in a.analysers:
            an.observe(w, recs)
        for an in a.analysers:
            an.close(w)
        if a.maybe_snapshot(0.05):
            print(f"snapshot {m + 1}", flush=True)
        time.sleep(0.01)
''')


def test_kill_9_then_restart_keeps_baselines_budgets_and_slo_counts(tmp_path):
    state_dir = tmp_path / "state"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(state_dir)], stdout=subprocess.PIPE, text=True)
    snapshots = 0
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("snapshot") and int(line.split()[1]) >= 12:
                snapshots = int(line.split()[1])
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert snapshots >= 12
    restarted = Analytics(AnalyticsConfig.from_dict({
        "slos": [{"name": "avail", "target": 0.99}], "budgets": [{"name": "all", "limit_usd": 100.0}],
        "drift": {"reference_calls": 100}}), state_dir=str(state_dir))
    try:
        rows = restarted.drift.show(["svc|chat|*"])
        assert rows and {r["status"] for r in rows} == {"frozen"}
        # at least the windows of the last snapshot we saw: 30 calls x $0.01 each
        assert restarted.cost.budget_used("all") >= snapshots * 30 * 0.01 / 100.0 - 1e-9
        assert len(restarted.anomaly.export_state()["series"]) == 1
        assert sum(restarted.slo.export_state()["avail"]["total"]) >= snapshots * 30
    finally:
        restarted.shutdown()


# -- a real `gensight serve`, killed with SIGKILL mid-stream, then restarted ---------------------

def _span_requests(n_windows, per_window, t0_ns):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rng = __import__("random").Random(7)
    out = []
    for w in range(n_windows):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "svc"
        ss = rs.scope_spans.add()
        for i in range(per_window):
            end = t0_ns + w * 60 * 10**9 + (i + 1) * 10**9
            sp = ss.spans.add()
            sp.trace_id, sp.span_id = os.urandom(16), os.urandom(8)
            sp.name, sp.kind = "chat m", 3
            sp.start_time_unix_nano, sp.end_time_unix_nano = end - int(rng.uniform(0.3, 2.0) * 1e9), end
            for k, v in (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"),
                         ("gen_ai.request.model", "m")):
                a = sp.attributes.add()
                a.key, a.value.string_value = k, v
            for k, v in (("gen_ai.usage.input_tokens", rng.randint(50, 500)),
                         ("gen_ai.usage.output_tokens", rng.randint(10, 200))):
                a = sp.attributes.add()
                a.key, a.value.int_value = k, v
            a = sp.attributes.add()
            a.key, a.value.double_value = "gen_ai.usage.cost", 0.01
        out.append(req)
    return out


def _frozen_baselines(path):
    import json as _json

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute("SELECT payload FROM components WHERE name='drift'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0
    if not row:
        return 0
    drift = _json.loads(row[0])
    return sum(1 for feats in drift.values() for r in feats.values() if r["status"] == "frozen")


def _start_serve(cfg, state_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gensight", "serve", "--config", str(cfg), "--grpc-endpoint", "127.0.0.1:0",
         "--state-dir", str(state_dir)],
        stderr=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_EXPORTER")},
    )
    assert proc.stderr is not None
    line = ""
    for _ in range(100):
        line = proc.stderr.readline()
        if not line or "gensight serve: listening" in line:
            break
    assert "gensight serve: listening" in line, line
    return proc, int(line.split("grpc ")[1].split(",")[0].rstrip(")\n"))


def test_serve_killed_with_sigkill_restarts_with_baselines_and_budget(tmp_path):
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

    cfg = tmp_path / "gensight.yaml"
    cfg.write_text(
        "receivers:\n  http: null\nstate:\n  snapshot_interval_s: 0.2\n"
        "analytics:\n  drift:\n    reference_calls: 100\n  budgets:\n    - {name: all, limit_usd: 1000}\n"
    )
    state_dir = tmp_path / "state"
    t0 = (time.time_ns() // (60 * 10**9) - 120) * 60 * 10**9
    proc, port = _start_serve(cfg, state_dir)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = TraceServiceStub(ch)
            for req in _span_requests(20, 30, t0):
                stub.Export(req, timeout=10)
        deadline = time.monotonic() + 30
        while _frozen_baselines(state_dir / STATE_FILE) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _frozen_baselines(state_dir / STATE_FILE) > 0
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()
    # restart: the state file opens, and a graceful stop keeps what the killed process had saved
    proc, _ = _start_serve(cfg, state_dir)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()
    restarted = Analytics(AnalyticsConfig.from_dict({"budgets": [{"name": "all", "limit_usd": 1000}]}),
                          state_dir=str(state_dir))
    try:
        assert {r["status"] for r in restarted.drift.show(["svc|chat|openai|m"])} == {"frozen"}
        assert restarted.cost.budget_used("all") > 0
    finally:
        restarted.shutdown()
