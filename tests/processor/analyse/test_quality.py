"""Quality SLIs from evaluation results: values by hand, the evaluation's own window, caps,
span-event evaluations, malformed ones counted; replay (trace and logs lines in one file) equals live."""

from __future__ import annotations

import json

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from otlp_wire import key_value

from gensight.processor.commands.replay import replay_files
from gensight.processor.config import config_from_mapping
from gensight.processor.export.metric_builder import flatten
from gensight.processor.pipeline.pipeline import Pipeline
from gensight.processor.receive.decode import message_to_otlp_json
from gensight.processor.server import ProcessorServer

S = 1_000_000_000


class Capture:
    def __init__(self) -> None:
        self.rows: list = []
        self.requests: list = []

    def export(self, request) -> bool:
        self.rows.extend(flatten(request))
        self.requests.append(request)
        return True

    def times(self, name: str) -> list[int]:
        return [dp.time_unix_nano for req in self.requests for rm in req.resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics if m.name == name for dp in getattr(m, m.WhichOneof("data")).data_points]

    def named(self, name: str) -> list:
        return [r for r in self.rows if r[1] == name]


def logs_request(evals: list[dict], service: str = "judge") -> ExportLogsServiceRequest:
    """evals: {name, score?, label?, error?, response_id?, span_id?, time_ns}"""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(key_value("service.name", service))
    sl = rl.scope_logs.add()
    for e in evals:
        lr = sl.log_records.add(time_unix_nano=e["time_ns"], event_name="gen_ai.evaluation.result")
        if "span_id" in e:
            lr.span_id = e["span_id"]
        attrs = {"gen_ai.evaluation.name": e.get("name", "relevance")}
        for src, dst in (("score", "gen_ai.evaluation.score.value"), ("label", "gen_ai.evaluation.score.label"),
                         ("error", "error.type"), ("response_id", "gen_ai.response.id")):
            if src in e:
                attrs[dst] = e[src]
        lr.attributes.extend(key_value(k, v) for k, v in attrs.items())
    return req


def calls(otlp, n: int, minute: int = 0, model: str = "gpt-4o-mini"):
    spans = [otlp.chat(model, start=otlp.T0_NS + minute * 60 * S + i * 2 * S, duration_s=0.5,
                       **{"gen_ai.response.id": f"r{minute}_{i}"}) for i in range(n)]
    return otlp.request(spans, service="checkout")


def pipeline(**evaluations) -> tuple[Pipeline, Capture]:
    sink = Capture()
    cfg = config_from_mapping({"evaluations": evaluations} if evaluations else {})
    return Pipeline(cfg, [sink], live=False), sink


def test_mean_score_and_pass_ratio_per_series_and_name_by_hand(otlp):
    p, sink = pipeline(thresholds={"relevance": 0.6})
    p.submit(calls(otlp, 4))
    t = otlp.T0_NS + 30 * S
    p.submit_logs(logs_request([
        {"response_id": "r0_0", "score": 0.9, "time_ns": t},
        {"response_id": "r0_1", "score": 0.5, "time_ns": t},
        {"response_id": "r0_2", "score": 0.7, "label": "relevant", "time_ns": t},
        {"response_id": "r0_3", "error": "JudgeTimeout", "time_ns": t},
        {"response_id": "r0_3", "name": "user_feedback", "label": "negative", "time_ns": t},
    ]))
    p.close()
    (q,) = sink.named("gensight.sli.quality")
    assert q[3] == pytest.approx((0.9 + 0.5 + 0.7) / 3)
    ratios = {dict(r[2])["gen_ai.evaluation.name"]: r[3] for r in sink.named("gensight.sli.quality_pass_ratio")}
    assert ratios == {"relevance": pytest.approx(2 / 3), "user_feedback": 0.0}  # the error counts in neither
    counts = {(dict(r[2])["gen_ai.evaluation.name"], dict(r[2]).get("gen_ai.evaluation.score.label"),
               dict(r[2])["outcome"]): r[3] for r in sink.named("gensight.evaluations")}
    assert counts == {("relevance", None, "pass"): 1.0, ("relevance", None, "fail"): 1.0,
                      ("relevance", "relevant", "pass"): 1.0, ("relevance", None, "error"): 1.0,
                      ("user_feedback", "negative", "fail"): 1.0}
    assert dict(q[2])["gen_ai.request.model"] == "gpt-4o-mini" and q[0] == "checkout"


def test_an_evaluation_counts_in_its_own_window_not_its_calls(otlp):
    p, sink = pipeline()
    p.submit(calls(otlp, 1, minute=0))
    p.submit(calls(otlp, 1, minute=3))
    p.submit_logs(logs_request([{"response_id": "r0_0", "score": 0.8, "time_ns": otlp.T0_NS + 150 * S}]))
    p.close()
    assert sink.times("gensight.sli.quality") == [otlp.T0_NS + 180 * S]  # window [120 s, 180 s): the evaluation's


def test_an_evaluation_for_a_closed_window_is_late_and_counted(otlp):
    p, sink = pipeline()
    p.submit(calls(otlp, 1, minute=0))
    p.submit(calls(otlp, 1, minute=5))  # the watermark passes minute 0 .. 4
    p.submit_logs(logs_request([{"response_id": "r0_0", "score": 0.8, "time_ns": otlp.T0_NS + 10 * S}]))
    p.close()
    assert sink.named("gensight.sli.quality") == []
    late = [r for r in sink.named("gensight.processor.evaluations") if dict(r[2])["outcome"] == "late"]
    assert late[-1][3] == 1.0


def test_span_event_evaluations_join_their_own_span(otlp):
    p, sink = pipeline()
    req = calls(otlp, 2)
    span = req.resource_spans[0].scope_spans[0].spans[1]
    event = span.events.add(time_unix_nano=span.end_time_unix_nano, name="gen_ai.evaluation.result")
    event.attributes.extend([key_value("gen_ai.evaluation.name", "groundedness"),
                             key_value("gen_ai.evaluation.score.value", 0.25)])
    p.submit(req)
    p.close()
    (q,) = sink.named("gensight.sli.quality")
    assert dict(q[2])["gen_ai.evaluation.name"] == "groundedness" and q[3] == 0.25


def test_malformed_evaluations_are_counted_as_dropped(otlp):
    p, sink = pipeline()
    p.submit(calls(otlp, 1))
    p.submit_logs(logs_request([{"response_id": "r0_0", "score": "high", "time_ns": otlp.T0_NS + S},
                                {"response_id": "r0_0", "name": "", "score": 0.5, "time_ns": otlp.T0_NS + S}]))
    p.close()
    dropped = [r for r in sink.named("gensight.processor.evaluations") if dict(r[2])["outcome"] == "dropped"]
    assert dropped[-1][3] == 2.0


def test_evaluation_names_and_labels_are_capped_per_series(otlp):
    p, sink = pipeline(max_names_per_series=2, max_labels=2)
    p.submit(calls(otlp, 1))
    t = otlp.T0_NS + 5 * S
    p.submit_logs(logs_request([{"response_id": "r0_0", "name": f"n{i}", "label": f"l{i}", "time_ns": t}
                                for i in range(5)]))
    p.close()
    names = {dict(r[2])["gen_ai.evaluation.name"] for r in sink.named("gensight.evaluations")}
    assert names == {"n0", "n1", "_other"}
    other_labels = {dict(r[2])["gen_ai.evaluation.score.label"] for r in sink.named("gensight.evaluations")
                    if dict(r[2])["gen_ai.evaluation.name"] == "_other"}
    assert other_labels == {"l2", "l3", "_OTHER"}


def test_evaluations_off_ignores_them(otlp):
    p, sink = pipeline(enabled=False)
    p.submit(calls(otlp, 1))
    p.submit_logs(logs_request([{"response_id": "r0_0", "score": 0.8, "time_ns": otlp.T0_NS + S}]))
    p.close()
    assert sink.named("gensight.sli.quality") == [] and sink.named("gensight.processor.evaluations") == []


# -- replay equals live -------------------------------------------------------------------------

def stream(otlp) -> list:
    reqs: list = []
    for minute in range(4):
        trace = calls(otlp, 6, minute=minute, model="gpt-4o" if minute % 2 else "gpt-4o-mini")
        reqs.append(trace)
        spans = trace.resource_spans[0].scope_spans[0].spans
        evals = []
        for i, span in enumerate(spans):
            e = {"score": round(0.95 - 0.1 * minute - 0.02 * i, 3), "time_ns": span.end_time_unix_nano + 3 * S}
            if i % 2:
                e["span_id"] = span.span_id
            else:
                e["response_id"] = f"r{minute}_{i}"
            if i == 5:
                e = {"name": "user_feedback", "label": "positive" if minute < 2 else "negative", **e}
            evals.append(e)
        reqs.append(logs_request(evals))
    return reqs



def send_live(reqs, config: dict) -> Capture:
    """Send ``reqs`` (traces and logs) over real gRPC to a live server with ``config``; what it
    exported once stopped."""
    live = Capture()
    srv = ProcessorServer(config_from_mapping({"receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": None},
                                               **config}), sinks=[live])
    srv.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as ch:
            traces = trace_service_pb2_grpc.TraceServiceStub(ch)
            logs = logs_service_pb2_grpc.LogsServiceStub(ch)
            for r in reqs:
                (logs if isinstance(r, ExportLogsServiceRequest) else traces).Export(r, timeout=5)
    finally:
        srv.stop()
    return live

def test_replay_of_trace_and_logs_lines_equals_live(tmp_path, otlp):
    reqs = stream(otlp)
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(message_to_otlp_json(r)) + "\n" for r in reqs))
    replay = Capture()
    counts = replay_files([str(src)], config_from_mapping({}), replay)
    assert counts["requests"] == len(reqs)

    live = send_live(reqs, {})

    def quality(rows):
        return sorted(repr(r) for r in rows if r[1] in ("gensight.sli.quality", "gensight.sli.quality_pass_ratio",
                                                        "gensight.evaluations"))
    assert quality(replay.rows) == quality(live.rows)
    assert len(quality(replay.rows)) > 20
    joined = [r for r in replay.named("gensight.processor.evaluations") if dict(r[2])["outcome"] == "joined"]
    assert joined[-1][3] == 24.0


DETECTORS = {"anomaly": {"iforest": False, "min_reference_values": 5, "reference_values": 10},
             "drift": {"reference_calls": 5, "min_eval_count": 5}}


def test_replay_of_the_quality_detectors_equals_live(tmp_path, otlp):
    """The anomaly signal and the drift feature ``quality`` take each evaluation window's scores
    when that window closes (live, later windows are open meanwhile): replay and live agree."""
    reqs = stream(otlp)
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(message_to_otlp_json(r)) + "\n" for r in reqs))
    replay = Capture()
    replay_files([str(src)], config_from_mapping({"analytics": DETECTORS}), replay)
    live = send_live(reqs, {"analytics": DETECTORS})

    def quality(rows):
        return sorted(repr(r) for r in rows if ("signal", "quality") in r[2] or ("feature", "quality") in r[2])
    assert quality(replay.rows) == quality(live.rows)
    assert sum(("signal", "quality") in r[2] for r in replay.rows) == 2  # each model tested once its reference holds 5
    assert any(("feature", "quality") in r[2] for r in replay.named("gensight.drift"))


# -- the quality SLO -------------------------------------------------------------------------------

def test_quality_slo_burn_rate_against_hand_counts():
    from gensight.processor.analyse.alerts import AlertEngine
    from gensight.processor.analyse.slo import SLOAnalyser, SLOConfig
    from gensight.processor.normalise.evaluations import Evaluation
    from gensight.processor.points import Window
    from gensight.processor.records import CallRecord

    cfg = SLOConfig.from_mapping({"name": "answers", "type": "quality", "evaluation": "relevance", "target": 0.9,
                                  "selector": {"service": "checkout"}}, "analytics.slos[0]")
    slo = SLOAnalyser([cfg], AlertEngine())
    t0 = 1_700_000_400 * S - (1_700_000_400 * S) % (3600 * S)
    mine = CallRecord("chat", "checkout", "openai", "m", 0, 1, 1.0)
    other = mine._replace(service="search")
    w = Window(t0, t0 + 3600 * S)
    evals = []
    for i in range(100):  # 20 of 100 fail: error ratio 0.2, burn 0.2 / 0.1 = 2.0
        evals.append(Evaluation("relevance", None, None, None, "judge", t0 + i * 30 * S, b"", b"", None, mine,
                                "fail" if i % 5 == 0 else "pass"))
    evals.append(evals[0]._replace(outcome="error"))  # a judge error: neither good nor bad
    evals.append(evals[1]._replace(name="user_feedback", outcome="fail"))  # another evaluation name
    evals.append(evals[1]._replace(call=other, outcome="fail"))  # another service
    slo.observe_evaluations(w, evals)
    burn = {dict(p.attributes)["window"]: p.value for p in slo.close(w) if p.name == "gensight.slo.burn_rate"}
    assert burn["1h"] == pytest.approx(2.0)
    assert slo.counters["answers"].counts(w.end_ns, 3600) == (80, 100)


def test_quality_slo_needs_an_evaluation_name():
    from gensight.processor.analyse.slo import SLOConfig

    with pytest.raises(ValueError, match=r"analytics.slos\[0\].evaluation: required"):
        SLOConfig.from_mapping({"name": "q", "type": "quality", "target": 0.9}, "analytics.slos[0]")


def test_live_evaluations_from_the_far_future_are_dropped_counted(otlp):
    sink = Capture()
    p = Pipeline(config_from_mapping({}), [sink], live=True, wall_ns=lambda: otlp.T0_NS + 60 * S)
    p.consume_logs(logs_request([{"response_id": "r0_0", "score": 0.8, "time_ns": otlp.T0_NS + 3600 * S},
                                 {"response_id": "r0_0", "score": 0.8, "time_ns": otlp.T0_NS + 30 * S}]))
    assert p.evaluations is not None and p.evaluations.malformed == 1
    assert p.queue_size == 1


def test_evaluation_attributes_of_the_wrong_type_are_malformed_not_a_crash(otlp):
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    req = logs_request([{"response_id": "r0_0", "time_ns": otlp.T0_NS + S}])
    lr = req.resource_logs[0].scope_logs[0].log_records[0]
    del lr.attributes[:]
    bad_name = KeyValue(key="gen_ai.evaluation.name")
    bad_name.value.kvlist_value.values.add(key="x").value.string_value = "y"
    lr.attributes.append(bad_name)
    p, _ = pipeline()
    p.submit_logs(req)
    assert p.evaluations is not None and p.evaluations.malformed == 1
