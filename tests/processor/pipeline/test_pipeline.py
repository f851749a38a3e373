"""Pipeline: consumer admission, worker, windows → analysers → metric requests, hooks, counts."""

from __future__ import annotations

import threading

import pytest

from gensight.processor.config import config_from_mapping
from gensight.processor.export.metric_builder import flatten
from gensight.processor.pipeline.pipeline import ANALYSER_FACTORIES, Pipeline, build_analysers
from gensight.processor.points import Analyser

S = 1_000_000_000


class ListSink:
    def __init__(self) -> None:
        self.requests: list = []
        self.lock = threading.Lock()

    def export(self, request) -> None:
        with self.lock:
            self.requests.append(request)

    def rows(self, name=None):
        out = [r for req in self.requests for r in flatten(req)]
        return [r for r in out if name is None or r[1] == name]


class RecordingAnalyser(Analyser):
    def __init__(self) -> None:
        self.calls: list = []

    def observe(self, window, records):
        self.calls.append(("observe", window.start_ns, len(records)))

    def close(self, window):
        self.calls.append(("close", window.start_ns))
        return []

    def expire(self, keys):
        self.calls.append(("expire", tuple(keys)))

    def snapshot(self):
        self.calls.append(("snapshot",))

    def shutdown(self):
        self.calls.append(("shutdown",))


def cfg(**sections):
    base = {"pipeline": {"window_s": 60, "allowed_lateness_s": 0, "idle_tick_s": 0.01}}
    base.update(sections)
    return config_from_mapping(base)


def replay_pipeline(sink, **kw):
    return Pipeline(cfg(**kw), [sink], live=False)


def test_replay_pipeline_emits_sli_metrics_per_window(otlp):
    sink = ListSink()
    p = replay_pipeline(sink)
    p.submit(otlp.request([otlp.chat(start=otlp.T0_NS), otlp.chat(start=otlp.T0_NS + 70 * S, error="Timeout")]))
    p.close()
    avail = sorted((r[3]) for r in sink.rows("gensight.sli.availability"))
    assert avail == [0.0, 1.0]
    calls = {(dict(r[2]).get("outcome"), r[0]) for r in sink.rows("gensight.calls")}
    assert ("error", "chat-app") in calls


def test_self_telemetry_counts_every_outcome(otlp):
    sink = ListSink()
    p = replay_pipeline(sink)
    p.submit(otlp.request([otlp.chat(start=otlp.T0_NS + 100 * S), otlp.chat(start=otlp.T0_NS + 200 * S),
                           {"http.method": "GET"}, {**otlp.chat(), "_start": 5, "_end": 1}]))
    p.submit(otlp.request([otlp.chat(start=otlp.T0_NS + 30 * S)]))  # its window already closed -> late
    p.close()
    rows = sink.rows("gensight.processor.spans")
    last = {dict(r[2])["outcome"]: r[3] for r in rows[-5:]}
    assert last == {"accepted": 2, "refused": 0, "late": 1, "dropped": 1, "skipped": 1}
    assert {r[0] for r in rows} == {"gensight-processor"}


def test_consumer_reports_rejected_spans_for_partial_success(otlp):
    p = Pipeline(cfg(), [], live=True)
    adm = p.consume(otlp.request([{**otlp.chat(), "_start": 5, "_end": 1}, otlp.chat()]))
    assert adm.accepted and adm.rejected_spans == 1 and "end time before start" in adm.error_message
    p.close(flush=False)


def test_full_queue_refuses_with_retry_after_and_counts(otlp):
    p = Pipeline(cfg(queue={"max_items": 1, "max_spans": 10}), [], live=True)  # worker not started
    assert p.consume(otlp.request([otlp.chat()])).accepted
    adm = p.consume(otlp.request([otlp.chat(), otlp.chat()]))
    assert not adm.accepted and adm.retry_after_s and adm.retry_after_s > 0
    assert p.counts["refused"] == 2
    p.close(flush=False)


def test_closed_pipeline_refuses_without_retry(otlp):
    p = Pipeline(cfg(), [], live=True)
    p.close()
    adm = p.consume(otlp.request([otlp.chat()]))
    assert not adm.accepted and adm.retry_after_s is None


def test_live_worker_processes_queue_and_flushes_on_close(otlp):
    sink = ListSink()
    p = Pipeline(cfg(), [sink], live=True)
    p.start()
    assert p.consume(otlp.request([otlp.chat()])).accepted
    p.close()
    assert sink.rows("gensight.sli.availability")


def test_analyser_hooks_order_and_expiry(otlp):
    a = RecordingAnalyser()
    p = Pipeline(cfg(series={"idle_expiry_s": 60}), [], live=False, analysers=[a])
    p.submit(otlp.request([otlp.chat("m1", start=otlp.T0_NS)]))
    p.submit(otlp.request([otlp.chat("m2", start=otlp.T0_NS + 300 * S)]))
    p.close()
    kinds = [c[0] for c in a.calls]
    assert kinds[0] == "observe" and kinds[-2:] == ["snapshot", "shutdown"]
    closes = [c[1] for c in a.calls if c[0] == "close"]
    assert closes == sorted(closes) and len(closes) == len(set(closes))
    expired = [c[1] for c in a.calls if c[0] == "expire"]
    assert expired and expired[0][0].target == "m1"


def test_hooks_an_analyser_does_not_override_are_no_ops(otlp):
    class OnlyCounts(Analyser):
        def __init__(self) -> None:
            self.closed = 0

        def observe(self, window, records):
            pass

        def close(self, window):
            self.closed += 1
            return []

    a = OnlyCounts()
    p = Pipeline(cfg(series={"idle_expiry_s": 60}), [], live=False, analysers=[a])
    p.submit(otlp.request([otlp.chat("m1", start=otlp.T0_NS)]))
    p.submit(otlp.request([otlp.chat("m2", start=otlp.T0_NS + 300 * S)]))
    p.close()
    assert a.closed >= 2 and p.analyser_errors == 0


def test_an_analyser_not_subclassing_analyser_keeps_the_hooks_it_has(otlp):
    class Plain:
        def __init__(self) -> None:
            self.expired: list = []

        def observe(self, window, records):
            pass

        def close(self, window):
            return []

        def expire(self, keys):
            self.expired.extend(keys)

    a = Plain()
    p = Pipeline(cfg(series={"idle_expiry_s": 60}), [], live=False, analysers=[a])
    p.submit(otlp.request([otlp.chat("m1", start=otlp.T0_NS)]))
    p.submit(otlp.request([otlp.chat("m2", start=otlp.T0_NS + 300 * S)]))
    p.close()
    assert [k.target for k in a.expired] == ["m1"] and p.analyser_errors == 0


def test_failing_analyser_is_counted_not_fatal(otlp):
    class Broken:
        def observe(self, window, records):
            raise RuntimeError("boom")

        def close(self, window):
            raise RuntimeError("boom")

    sink = ListSink()
    p = Pipeline(cfg(), [sink], live=False, analysers=[Broken()])
    p.submit(otlp.request([otlp.chat()]))
    p.close()
    assert p.analyser_errors >= 2 and sink.rows("gensight.processor.spans")


def test_failing_sink_is_counted_not_fatal(otlp):
    class Down:
        def export(self, request):
            raise ConnectionError("down")

    p = Pipeline(cfg(), [Down()], live=False)
    p.submit(otlp.request([otlp.chat()]))
    p.close()
    assert p.export_errors == 1


def test_cardinality_cap_folds_new_series_into_overflow(otlp):
    sink = ListSink()
    p = replay_pipeline(sink, series={"max_series": 2})
    p.submit(otlp.request([otlp.chat(f"m{i}") for i in range(5)]))
    p.close()
    rows = sink.rows("gensight.sli.availability")
    overflow = [r for r in rows if ("otel.metric.overflow", True) in r[2]]
    assert len(rows) == 3 and len(overflow) == 1


def test_build_analysers_uses_registered_factories():
    assert ANALYSER_FACTORIES[0] == "gensight.processor.analyse.sli:build"
    p = Pipeline(cfg(), [], live=False)
    assert [type(a).__name__ for a in build_analysers(p.config, p.context)][0] == "SLIAnalyser"


def test_self_service_name_from_env(monkeypatch, otlp):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "proc-a")
    sink = ListSink()
    p = replay_pipeline(sink)
    p.submit(otlp.request([otlp.chat()]))
    p.close()
    assert {r[0] for r in sink.rows("gensight.processor.spans")} == {"proc-a"}


@pytest.mark.parametrize("n_requests", [1, 3])
def test_replay_is_deterministic(otlp, n_requests):
    reqs = [otlp.request([otlp.chat(f"m{i % 2}", start=otlp.T0_NS + (j * 50 + i) * S, duration_s=0.1 * (i + 1))
                          for i in range(10)]) for j in range(n_requests)]
    outs = []
    for _ in range(2):
        sink = ListSink()
        p = replay_pipeline(sink)
        for r in reqs:
            p.submit(r)
        p.close()
        outs.append(sorted(map(repr, sink.rows())))
    assert outs[0] == outs[1]


def test_live_worker_calls_snapshot_hook_periodically(otlp):
    import time

    a = RecordingAnalyser()
    p = Pipeline(cfg(state={"snapshot_interval_s": 0.05}), [], live=True, analysers=[a])
    p.start()
    try:
        deadline = time.monotonic() + 10
        while ("snapshot",) not in a.calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ("snapshot",) in a.calls
    finally:
        p.close()
    assert a.calls[-1] == ("shutdown",)


def test_normaliser_failure_rejects_the_request_spans_without_crashing(otlp, monkeypatch):
    p = Pipeline(cfg(), [], live=True)

    def boom(request, raw=None):
        raise RuntimeError("bug")

    monkeypatch.setattr(p.normaliser, "normalise", boom)
    adm = p.consume(otlp.request([otlp.chat(), otlp.chat()]))
    assert adm.accepted and adm.rejected_spans == 2 and "RuntimeError" in adm.error_message
    assert p.counts["dropped"] == 2
    p.close(flush=False)
