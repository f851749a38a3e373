"""Hallucination-risk flags: responses that touch high-stakes domains (medical, financial, legal).

A wrong answer about a dose, a guaranteed return or whether something is legal does more harm
than a wrong answer about a recipe, so operators want to know which series *answer* in those
domains — to sample them for review, to require an evaluation on them, to route them to a
stronger model. This module looks at response text only (the model's output attributes) and says
which domains it touches and how risky the statement looks:

=========  ==========================================================================
``critical``  a concrete, actionable claim: a dose with a unit next to take/dose words, "stop
              taking", "guaranteed return", "risk-free", "you should buy/sell", "you will win",
              "it is not illegal", "you don't need a lawyer"
``high``      advice vocabulary: diagnosis, prescription, treatment; invest, portfolio,
              mortgage, tax; lawsuit, contract, liability, statute
``medium``    two or more mentions of the domain's general words (doctor, symptom; stock,
              loan; law, attorney) — one passing mention is not flagged
=========  ==========================================================================

The flag is ``hallucination_risk.<domain>`` with its level (``hallucination_risk.medical:critical``
in ``CallRecord.content_flags``; the metric carries ``flag`` and ``risk`` apart). As for the other
content flags, only names leave this module: the matched text is never stored or exported.

Linear time: each domain level is ONE compiled alternation of literal words between word
boundaries (the regex engine tries a bounded set of alternatives at each position, no nested
quantifiers), the dose pattern has bounded quantifiers only, and the caller bounds the text
(``content_checks.max_scan_chars``). ``tests/hostile`` checks the scaling on adversarial text.
"""

from __future__ import annotations

import re

PREFIX = "hallucination_risk."
DOMAINS = ("medical", "financial", "legal")
FLAGS = tuple(PREFIX + d for d in DOMAINS)
CRITICAL, HIGH, MEDIUM = "critical", "high", "medium"
LEVELS = (CRITICAL, HIGH, MEDIUM)
LEVEL_SEPARATOR = ":"
MEDIUM_MIN_MATCHES = 2


def _words(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")", re.IGNORECASE)


# (domain, level) -> pattern; levels checked from critical down, the first that matches wins
_PATTERNS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    "medical": (
        (CRITICAL, re.compile(
            r"\b(?:take|taking|dose|dosage|inject|administer)\b[^.\n]{0,40}?\b\d{1,5}(?:[.,]\d{1,3})?[ \t]{0,2}"
            r"(?:mg|mcg|µg|ml|units?|iu|tablets?|pills?)\b", re.IGNORECASE)),
        (CRITICAL, _words(r"stop taking", r"overdose", r"lethal dose", r"double (?:the|your) dose",
                          r"no need to see a doctor", r"safe to combine")),
        (HIGH, _words(r"diagnos[ei]s", r"diagnosed", r"prescri(?:be|ption|bed)", r"medication", r"treatment for",
                      r"side effects?", r"contraindicat\w{0,8}", r"dosage", r"antibiotics?")),
        (MEDIUM, _words(r"doctor", r"physician", r"symptoms?", r"disease", r"patient", r"medical", r"clinic",
                        r"therapy", r"infection", r"blood pressure")),
    ),
    "financial": (
        (CRITICAL, _words(r"guaranteed (?:returns?|profits?|income)", r"risk[- ]free", r"can't lose",
                          r"cannot lose", r"you should (?:buy|sell|invest|short)", r"double your money",
                          r"insider (?:tip|information)")),
        (HIGH, _words(r"invest(?:ing|ment)?", r"portfolio", r"mortgage", r"tax (?:deduction|return|advice)",
                      r"retirement (?:fund|account)", r"401\(k\)", r"cryptocurrenc(?:y|ies)", r"stock picks?")),
        (MEDIUM, _words(r"stocks?", r"shares", r"loans?", r"interest rates?", r"dividends?", r"savings",
                        r"credit score", r"bonds?", r"inflation")),
    ),
    "legal": (
        (CRITICAL, _words(r"you will (?:win|not lose)", r"you won't lose", r"(?:is|it's) not illegal",
                          r"perfectly legal", r"you don't need a lawyer", r"no need for a lawyer",
                          r"legally you can")),
        (HIGH, _words(r"lawsuit", r"sue (?:them|him|her|your)", r"liabilit(?:y|ies)", r"statute of limitations",
                      r"breach of contract", r"custody", r"eviction", r"plead guilty", r"legal advice")),
        (MEDIUM, _words(r"contracts?", r"court", r"attorney", r"lawyer", r"laws?", r"legal", r"judge",
                        r"rights", r"tenant")),
    ),
}


def risk_flags(text: str) -> set[str]:
    """``hallucination_risk.<domain>:<level>`` for each domain ``text`` touches (highest level)."""
    found: set[str] = set()
    for domain, levels in _PATTERNS.items():
        for level, pattern in levels:
            if level == MEDIUM:
                hits = 0
                for _ in pattern.finditer(text):
                    hits += 1
                    if hits >= MEDIUM_MIN_MATCHES:
                        break
                matched = hits >= MEDIUM_MIN_MATCHES
            else:
                matched = pattern.search(text) is not None
            if matched:
                found.add(f"{PREFIX}{domain}{LEVEL_SEPARATOR}{level}")
                break
    return found


def split_flag(flag: str) -> tuple[str, str | None]:
    """``("hallucination_risk.medical", "critical")`` for a leveled flag; ``(flag, None)`` otherwise."""
    name, sep, level = flag.partition(LEVEL_SEPARATOR)
    return (name, level) if sep else (flag, None)
