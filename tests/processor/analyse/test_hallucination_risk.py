"""Hallucination-risk flags: domains and levels on response text only, flag names never text."""

from __future__ import annotations

import pytest

from gensight.processor.analyse.content_checks import (
    ContentChecker,
    ContentChecksConfig,
    ContentFlagsAnalyser,
)
from gensight.processor.analyse.hallucination_risk import risk_flags, split_flag
from gensight.processor.points import Window
from gensight.processor.records import CallRecord


@pytest.mark.parametrize("text, flag", [
    ("Take 400 mg of ibuprofen every four hours.", "hallucination_risk.medical:critical"),
    ("You can stop taking the statin once you feel better.", "hallucination_risk.medical:critical"),
    ("This is a common side effect of the medication.", "hallucination_risk.medical:high"),
    ("See a doctor if the symptoms last.", "hallucination_risk.medical:medium"),
    ("This fund offers guaranteed returns of 12%.", "hallucination_risk.financial:critical"),
    ("You should buy NVDA before earnings.", "hallucination_risk.financial:critical"),
    ("Rebalance your portfolio towards bonds.", "hallucination_risk.financial:high"),
    ("Loans with low interest rates are easier to repay.", "hallucination_risk.financial:medium"),
    ("Recording the call is perfectly legal in your state.", "hallucination_risk.legal:critical"),
    ("The statute of limitations for this claim is two years.", "hallucination_risk.legal:high"),
    ("An attorney can read the contract first.", "hallucination_risk.legal:medium"),
])
def test_domain_and_level(text, flag):
    assert risk_flags(text) == {flag}


@pytest.mark.parametrize("text", [
    "Preheat the oven to 200 degrees and bake for 25 minutes.",
    "The doctor in the novel is a minor character.",  # one passing mention is not medium
    "Take the second exit at the roundabout.",
    "",
])
def test_everyday_text_is_not_flagged(text):
    assert risk_flags(text) == set()


def test_several_domains_each_get_their_highest_level():
    text = "Take 20 mg daily. Also, this is risk-free investing, and the contract is fine."
    assert risk_flags(text) == {"hallucination_risk.medical:critical", "hallucination_risk.financial:critical"}


def test_split_flag():
    assert split_flag("hallucination_risk.legal:high") == ("hallucination_risk.legal", "high")
    assert split_flag("pii.email") == ("pii.email", None)


def _checker(**kw):
    return ContentChecker(ContentChecksConfig(enabled=True, **kw))


def test_only_the_response_is_read_for_risk():
    checker = _checker()
    prompt_only = {"gen_ai.input.messages": '[{"role":"user","content":"How many mg of ibuprofen should I take? Take 800 mg?"}]'}
    assert not any(f.startswith("hallucination_risk") for f in checker.flags_for(prompt_only))
    answered = {**prompt_only, "gen_ai.output.messages": '[{"role":"assistant","content":"Take 800 mg every 4 hours."}]'}
    assert "hallucination_risk.medical:critical" in checker.flags_for(answered)


def test_indexed_openllmetry_completions_are_responses():
    assert _checker().flags_for({"gen_ai.completion.0.content": "It is not illegal to do that."}) == (
        "hallucination_risk.legal:critical",)


def test_configured_flags_can_leave_risk_out():
    checker = _checker(flags=("pii.email",))
    assert checker.flags_for({"gen_ai.output.messages": "Take 800 mg now. Mail a@b.io"}) == ("pii.email",)


def test_analyser_exports_flag_and_risk_level_apart_and_never_text():
    rec = CallRecord("chat", "app", "openai", "m", 0, 1, 1.0,
                     content_flags=("hallucination_risk.medical:critical",))
    analyser = ContentFlagsAnalyser()
    w = Window(0, 60)
    analyser.observe(w, [rec])
    (point,) = analyser.close(w)
    attrs = dict(point.attributes)
    assert attrs["flag"] == "hallucination_risk.medical" and attrs["risk"] == "critical"
