"""The evaluation join: by span id, else by response id; out of order through the wait buffer;
bounded index and buffer; every evaluation ends in exactly one counted outcome."""

from __future__ import annotations

from gensight.processor.normalise.evaluations import Evaluation
from gensight.processor.pipeline.evaluations import EvaluationJoin, EvaluationsConfig
from gensight.processor.records import CallRecord

S = 1_000_000_000
T0 = 1_700_000_000 * S


def call(i: int, *, end_s: float = 0.0, span: bool = True, response: bool = True, model: str = "m") -> CallRecord:
    end = T0 + int(end_s * S)
    return CallRecord("chat", "app", "openai", model, end - S, end, 1.0,
                      span_id=i.to_bytes(8, "big") if span else b"", response_id=f"resp_{i}" if response else None)


def ev(i: int | None = None, *, at_s: float = 1.0, response: int | None = None, score: float = 0.9) -> Evaluation:
    return Evaluation("relevance", score, None, None, "judge", T0 + int(at_s * S), b"",
                      i.to_bytes(8, "big") if i is not None else b"",
                      f"resp_{response}" if response is not None else None)


def outcomes(j: EvaluationJoin) -> dict[str, int]:
    counts = dict(j.counts)
    counts["dropped"] += j.malformed
    return counts


def test_joins_by_span_id():
    j = EvaluationJoin()
    j.add_calls([call(1), call(2, model="other")])
    (joined,) = j.join([ev(2)])
    assert joined.call is not None and joined.call.target == "other"


def test_joins_by_response_id_when_the_span_id_is_unknown():
    j = EvaluationJoin()
    j.add_calls([call(1, span=False)])
    (joined,) = j.join([ev(None, response=1)])
    assert joined.call is not None and joined.call.response_id == "resp_1"


def test_span_id_wins_over_a_response_id_naming_another_call():
    j = EvaluationJoin()
    j.add_calls([call(1, model="a"), call(2, model="b")])
    (joined,) = j.join([ev(1, response=2)])
    assert joined.call is not None and joined.call.target == "a"


def test_an_evaluation_before_its_call_waits_and_joins_when_the_call_arrives():
    j = EvaluationJoin()
    assert j.join([ev(7)]) == []
    assert j.waiting == 1
    released = j.add_calls([call(6), call(7)])
    assert [e.call.span_id for e in released if e.call] == [(7).to_bytes(8, "big")]
    assert j.waiting == 0


def test_a_waiting_evaluation_gives_up_after_the_wait_age_as_unjoined():
    j = EvaluationJoin(EvaluationsConfig(wait_max_age_s=60.0))
    j.join([ev(7, at_s=0.0)])
    j.add_calls([call(1, end_s=30.0)])
    j.expire()
    assert j.waiting == 1
    j.add_calls([call(2, end_s=61.0)])
    j.expire()
    assert j.waiting == 0 and outcomes(j)["unjoined"] == 1


def test_a_full_wait_buffer_drops_its_oldest_evaluation_counted():
    j = EvaluationJoin(EvaluationsConfig(wait_max=3))
    j.join([ev(i) for i in range(5)])
    assert j.waiting == 3 and outcomes(j)["dropped"] == 2
    released = j.add_calls([call(i) for i in range(5)])
    assert sorted(int.from_bytes(e.span_id, "big") for e in released) == [2, 3, 4]


def test_a_full_index_forgets_its_oldest_call():
    j = EvaluationJoin(EvaluationsConfig(index_max_calls=10))
    j.add_calls([call(i, end_s=i) for i in range(25)])
    assert len(j) == 10
    assert j.join([ev(15)]) != []  # the newest ten: 15 .. 24
    assert j.join([ev(14)]) == []  # forgotten: waits (and will end unjoined)
    assert j.waiting == 1


def test_calls_older_than_the_index_age_are_forgotten():
    j = EvaluationJoin(EvaluationsConfig(index_max_age_s=100.0))
    j.add_calls([call(1, end_s=0.0)])
    j.add_calls([call(2, end_s=150.0)])
    assert j.join([ev(1)]) == [] and j.join([ev(2)]) != []


def test_flush_makes_every_waiting_evaluation_unjoined_and_attributes_it_to_its_own_service():
    j = EvaluationJoin()
    j.join([ev(1), ev(2)])
    j.flush()
    assert outcomes(j)["unjoined"] == 2 and j.unjoined_by_service == {"judge": 2}
    pts = {(p.service, p.attributes): p.value for p in j.points("gensight-processor", 0, 1)}
    assert pts[("judge", (("outcome", "unjoined"),))] == 2.0
    assert pts[("gensight-processor", (("outcome", "unjoined"),))] == 2.0


def test_an_evaluation_without_span_or_response_id_is_unjoined_at_once():
    j = EvaluationJoin()
    j.join([ev(None)])
    assert j.waiting == 0 and outcomes(j)["unjoined"] == 1


def test_many_released_evaluations_keep_the_wait_buffer_bounded():
    j = EvaluationJoin(EvaluationsConfig(wait_max=50))
    j.join([ev(10_000, at_s=0.0)])  # an old one that stays at the front
    for i in range(1000):
        j.join([ev(i)])
        j.add_calls([call(i)])
    assert len(j._waiting) <= 2 * 50 + 1
    assert j.waiting == 1


def test_pass_rule_label_then_score_threshold_then_error():
    cfg = EvaluationsConfig(thresholds={"relevance": 0.8})
    base = ev(1)
    assert cfg.outcome(base._replace(label="Pass", score=0.1)) == "pass"
    assert cfg.outcome(base._replace(label="fail", score=0.99)) == "fail"
    assert cfg.outcome(base._replace(score=0.79)) == "fail"
    assert cfg.outcome(base._replace(score=0.8)) == "pass"
    assert cfg.outcome(base._replace(name="other", score=0.5)) == "pass"  # default pass_threshold 0.5
    assert cfg.outcome(base._replace(error_type="Timeout")) == "error"
    assert cfg.outcome(base._replace(score=None)) == "error"
