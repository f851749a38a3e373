"""record_evaluation / record_feedback: a gen_ai.evaluation.result log record through a real SDK
LoggerProvider, parented to the judged span; the span-event fallback; never raises."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from gensight.instrumentation import attributes as A
from gensight.instrumentation import evaluation, manual, record_evaluation, record_feedback


@pytest.fixture
def log_exporter():
    return InMemoryLogRecordExporter()


@pytest.fixture
def logger_provider(log_exporter):
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def configured(tracer_provider, meter_provider, logger_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    monkeypatch.setattr(evaluation, "_provider", None)
    manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider)
    yield
    evaluation.set_logger_provider(None)


@pytest.fixture
def no_logger(tracer_provider, meter_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    monkeypatch.setattr(evaluation, "_provider", None)
    manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _records(exporter):
    return [d.log_record for d in exporter.get_finished_logs()]


def test_evaluation_is_a_log_record_parented_to_the_current_span(configured, tracer_provider, log_exporter):
    tracer = tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("chat m") as span:
        assert record_evaluation("relevance", score=0.8, label="relevant", response_id="resp_1") is True
    (rec,) = _records(log_exporter)
    assert rec.event_name == A.EVENT_EVALUATION_RESULT
    assert rec.span_id == span.get_span_context().span_id
    assert rec.trace_id == span.get_span_context().trace_id
    assert dict(rec.attributes) == {
        A.GEN_AI_EVALUATION_NAME: "relevance",
        A.GEN_AI_EVALUATION_SCORE_VALUE: 0.8,
        A.GEN_AI_EVALUATION_SCORE_LABEL: "relevant",
        A.GEN_AI_RESPONSE_ID: "resp_1",
    }


def test_evaluation_of_an_ended_span_given_explicitly_is_parented_to_it(configured, tracer_provider, log_exporter):
    span = tracer_provider.get_tracer("t").start_span("chat m")
    span.end()
    record_evaluation("groundedness", score=1.0, span=span, error_type=None)
    (rec,) = _records(log_exporter)
    assert rec.span_id == span.get_span_context().span_id


def test_feedback_is_an_evaluation_named_user_feedback(configured, log_exporter):
    assert record_feedback("negative", response_id="resp_9") is True
    (rec,) = _records(log_exporter)
    assert rec.attributes[A.GEN_AI_EVALUATION_NAME] == "user_feedback"
    assert rec.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "negative"


def test_explanation_is_dropped_when_content_capture_is_off(configured, log_exporter):
    record_evaluation("relevance", score=0.1, explanation="the answer quotes the patient's record")
    (rec,) = _records(log_exporter)
    assert A.GEN_AI_EVALUATION_EXPLANATION not in rec.attributes


def test_explanation_is_recorded_when_content_capture_is_on(configured, log_exporter, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setattr(manual, "_default", None)  # re-read the switch
    record_evaluation("relevance", score=0.1, explanation="off topic")
    (rec,) = _records(log_exporter)
    assert rec.attributes[A.GEN_AI_EVALUATION_EXPLANATION] == "off topic"


def test_without_a_logger_provider_it_falls_back_to_a_span_event(no_logger, tracer_provider, span_exporter):
    with tracer_provider.get_tracer("t").start_as_current_span("chat m"):
        assert record_evaluation("relevance", score=0.5, label="fail", error_type="Timeout") is True
    (span,) = span_exporter.get_finished_spans()
    (event,) = span.events
    assert event.name == A.EVENT_EVALUATION_RESULT
    assert event.attributes[A.GEN_AI_EVALUATION_SCORE_VALUE] == 0.5
    assert event.attributes[A.ERROR_TYPE] == "Timeout"


def test_without_provider_or_span_nothing_is_recorded_and_false_is_returned(no_logger):
    assert record_evaluation("relevance", score=0.5) is False


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "high", True, object()])
def test_a_bad_score_is_dropped_but_the_evaluation_kept(configured, log_exporter, bad):
    assert record_evaluation("relevance", score=bad, label="pass") is True
    (rec,) = _records(log_exporter)
    assert A.GEN_AI_EVALUATION_SCORE_VALUE not in rec.attributes


def test_empty_name_records_nothing(configured, log_exporter):
    assert record_evaluation("", score=1.0) is False
    assert _records(log_exporter) == []


def test_a_failing_logger_provider_never_raises_into_the_app(configured, monkeypatch):
    class Broken:
        def get_logger(self, *a, **k):
            raise RuntimeError("exporter down")

    evaluation.set_logger_provider(Broken())  # type: ignore[arg-type]
    assert record_evaluation("relevance", score=1.0) is False


def test_with_opentelemetry_instrument_and_otel_logs_exporter_it_is_a_log_record():
    """``opentelemetry-instrument`` sets up a logger provider from OTEL_LOGS_EXPORTER (here
    ``console``): the evaluation leaves as a log record with the event name, not a span event."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    launcher = str(Path(sys.executable).parent / "opentelemetry-instrument")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GENSIGHT_"))}
    env.update(OTEL_SERVICE_NAME="judge-app", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
               OTEL_LOGS_EXPORTER="console")
    code = ("from gensight.instrumentation import record_evaluation\n"
            "assert record_evaluation('relevance', score=0.75, response_id='resp_1')\n")
    proc = subprocess.run([launcher, sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '"gen_ai.evaluation.name": "relevance"' in proc.stdout
    assert "gen_ai.evaluation.result" in proc.stdout
