"""Hostile evaluation results: floods of unjoinable results, absurd scores — the wait buffer stays
bounded and every result is counted. (Name and label caps: tests/processor/analyse/test_quality.py.)"""

from __future__ import annotations

import os

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from gensight.processor.config import config_from_mapping
from gensight.processor.pipeline.pipeline import Pipeline

S = 1_000_000_000
T0 = 1_700_000_040 * S


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def flood(n: int, *, unique_names: bool = False, unique_labels: bool = False, span_ids: bool = True,
          score: AnyValue | None = None) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    records = req.resource_logs.add().scope_logs.add().log_records
    for i in range(n):
        lr = records.add(time_unix_nano=T0 + i * 1000, event_name="gen_ai.evaluation.result")
        if span_ids:
            lr.span_id = os.urandom(8)
        lr.attributes.append(_kv("gen_ai.evaluation.name", AnyValue(string_value=f"n{i}" if unique_names else "q")))
        lr.attributes.append(_kv("gen_ai.evaluation.score.label", AnyValue(string_value=f"l{i}" if unique_labels else "ok")))
        lr.attributes.append(_kv("gen_ai.evaluation.score.value", score or AnyValue(double_value=0.5)))
    return req


def test_a_flood_of_unjoinable_results_keeps_the_wait_buffer_bounded_and_counts_every_one():
    p = Pipeline(config_from_mapping({"evaluations": {"wait_max": 1000}}), [], live=False)
    p.submit_logs(flood(20_000))
    j = p.evaluations
    assert j is not None and j.waiting == 1000
    assert j.counts["dropped"] == 19_000
    p.close()
    assert j.counts["unjoined"] == 1000 and j.waiting == 0


def test_results_without_any_id_are_unjoined_at_once_never_buffered():
    p = Pipeline(config_from_mapping({}), [], live=False)
    p.submit_logs(flood(5_000, span_ids=False))
    assert p.evaluations is not None and p.evaluations.waiting == 0 and p.evaluations.counts["unjoined"] == 5_000


def test_non_numeric_and_huge_scores_are_dropped_or_kept_finite():
    p = Pipeline(config_from_mapping({}), [], live=False)
    p.submit_logs(flood(10, score=AnyValue(string_value="NaN")))
    p.submit_logs(flood(10, score=AnyValue(double_value=float("inf"))))
    assert p.evaluations is not None and p.evaluations.malformed == 20
