"""Hostile values that decode fine but used to break analysis: each has a bound now.

* token counts / costs near the float maximum summed past it, and the SLI analyser's ``close``
  raised ``OverflowError`` on every window from then on (all series lost their metrics);
* random ``error.type`` values grew a series' cumulative counters and exported points forever;
* a 10 MB model name became an exported metric attribute.
"""

from __future__ import annotations

import random

from hostile_corpus import _Ids, genai_attrs, make_span

from gensight.processor.analyse.sli import CALLS, MAX_ERROR_TYPES_PER_SERIES, TOKENS, SLIAnalyser
from gensight.processor.normalise.normaliser import MAX_KEY_CHARS, NormaliseConfig, Normaliser
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

T0 = 1_700_000_040_000_000_000
IDS = _Ids(random.Random(1))


def _normalise(*spans):
    return Normaliser(NormaliseConfig(), None, b"k").normalise_spans(list(spans), "svc")


def test_token_counts_beyond_2_pow_53_are_dropped_as_bad_values():
    res = _normalise(make_span(IDS, T0, genai_attrs(input_tokens=1e308, output_tokens=2.0**60)))
    (rec,) = res.records
    assert (rec.input_tokens, rec.output_tokens) == (None, None)
    assert res.values_dropped == 2


def test_costs_beyond_2_pow_53_are_dropped_as_bad_values():
    res = _normalise(make_span(IDS, T0, genai_attrs(gen_ai__usage__cost=1e308)))
    assert res.records[0].cost_usd is None


def test_sli_keeps_exporting_after_spans_with_absurd_numbers():
    huge = genai_attrs(input_tokens=1e308, output_tokens=1e308, gen_ai__usage__cost=1e308)
    res = _normalise(make_span(IDS, T0, huge), make_span(IDS, T0, huge))
    sli = SLIAnalyser()
    w1, w2 = Window(T0 - 60_000_000_000, T0), Window(T0, T0 + 60_000_000_000)
    sli.observe(w1, res.records)
    sli.close(w1)
    sli.observe(w2, _normalise(make_span(IDS, T0 + 1_000_000_000)).records)
    points = sli.close(w2)
    tokens = {dict(p.attributes)["gen_ai.token.type"]: p.value for p in points if p.name == TOKENS}
    assert tokens == {"input": 100.0, "output": 20.0}


def test_series_key_strings_are_clipped():
    res = _normalise(make_span(IDS, T0, genai_attrs(model="m" * 1_000_000, error__type="E" * 100_000)))
    (rec,) = res.records
    assert len(rec.target) == MAX_KEY_CHARS and len(rec.error_type or "") == MAX_KEY_CHARS


def test_distinct_error_types_per_series_are_capped():
    sli = SLIAnalyser()
    window = Window(0, 60)
    records = [CallRecord("chat", "svc", "openai", "m", 1, 2, 1e-9, error=True, error_type=f"E{i}") for i in range(3000)]
    sli.observe(window, records)
    error_points = [p for p in sli.close(window) if p.name == CALLS and dict(p.attributes)["outcome"] == "error"]
    assert len(error_points) <= MAX_ERROR_TYPES_PER_SERIES + 1
    assert sum(p.value for p in error_points) == 3000


# --- time and size bounds of the live pipeline --------------------------------------------------

S = 1_000_000_000


class _ListSink:
    def __init__(self) -> None:
        self.requests: list = []

    def export(self, request) -> None:
        self.requests.append(request)


def _pipeline(sink, wall_ns, **sections):
    from gensight.processor.config import config_from_mapping
    from gensight.processor.pipeline.pipeline import Pipeline

    config = config_from_mapping({"pipeline": {"window_s": 60, "allowed_lateness_s": 5, "idle_advance": False}, **sections})
    return Pipeline(config, [sink], live=True, wall_ns=lambda: wall_ns[0], pricing=None, hash_key=b"k")


def _request(*spans, service="svc"):
    from hostile_corpus import resource_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return ExportTraceServiceRequest(resource_spans=[resource_spans(service, list(spans))])


def test_live_spans_far_in_the_future_are_rejected_through_partial_success():
    wall = [T0]
    pipeline = _pipeline(_ListSink(), wall)
    admission = pipeline.consume(_request(make_span(IDS, T0), make_span(IDS, T0 + 3600 * S)))
    assert admission.accepted and admission.rejected_spans == 1
    assert "future" in admission.error_message
    assert pipeline.counts["dropped"] == 1


def test_spans_beyond_year_2262_are_rejected_by_the_normaliser():
    res = _normalise(make_span(IDS, 2**63 + 5 * S, start_ns=2**63))
    assert res.records == [] and res.rejected == 1


def test_live_watermark_never_runs_ahead_of_the_wall_clock():
    wall = [T0]
    pipeline = _pipeline(_ListSink(), wall)
    # a client 200 s fast (within the accepted skew), then everyone else, on time
    pipeline._process(_normalise(make_span(IDS, T0 + 200 * S)).records)
    pipeline._process(_normalise(make_span(IDS, T0 - 1 * S)).records)
    assert pipeline.counts["late"] == 0 and pipeline.counts["accepted"] == 2


def test_exports_are_split_into_requests_of_bounded_size():
    from gensight.processor.pipeline.pipeline import MAX_POINTS_PER_REQUEST

    sink = _ListSink()
    wall = [T0 + 3600 * S]
    pipeline = _pipeline(sink, wall, series={"max_series": 5000})
    spans = [make_span(IDS, T0, genai_attrs(model=f"m-{i}")) for i in range(400)]
    pipeline._process(pipeline.normaliser.normalise(_request(*spans)).records)
    pipeline.flush()
    sizes = [sum(len(m.sum.data_points) + len(m.gauge.data_points) + len(m.histogram.data_points)
                 for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics) for r in sink.requests]
    assert len(sink.requests) > 1
    assert max(sizes) <= MAX_POINTS_PER_REQUEST


def test_a_span_from_1970_after_the_watermark_moved_is_late_and_closes_no_windows():
    from gensight.processor.pipeline.windows import PipelineConfig, WindowClock

    clock = WindowClock(PipelineConfig(60.0, 5.0, False), live=False)
    now = _normalise(make_span(IDS, T0 + 120 * S)).records
    clock.assign(now)
    clock.advance()
    groups = clock.assign(_normalise(make_span(IDS, 2 * S, start_ns=S)).records)
    assert groups == {} and clock.late == 1
    assert clock.advance() == []
