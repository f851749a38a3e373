"""Opt-in content checks: flag likely prompt injection and PII in captured prompt/response text,
and responses that touch high-stakes domains (``hallucination_risk.<domain>``, see
:mod:`~gensight.processor.analyse.hallucination_risk`).

Some applications capture message content on their spans (Gensight and the official GenAI
instrumentations only when asked; OpenLLMetry, OpenLIT and OpenInference by default). When that
content reaches the processor anyway, an operator may want to know *that* a series sees e-mail
addresses, card numbers or "ignore previous instructions" — without the processor ever repeating
the text. So this module only ever yields flag *names*; the matched text is never stored,
logged or exported.

Work is bounded per span: at most ``max_scan_chars`` characters are scanned across all content
attributes of a span (the rest is ignored, and the truncation counted), values nested deeper than
``_MAX_DEPTH`` are not visited, and every regular expression has bounded quantifiers so scanning
hostile input stays linear.

The checks are off by default (``ContentChecksConfig.enabled``). The pipeline calls
:meth:`ContentChecker.flags_for` for each GenAI span and :class:`ContentFlagsAnalyser` turns the
flags into the ``gensight.content.flags`` Sum per series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gensight.processor.analyse.hallucination_risk import FLAGS as HALLUCINATION_FLAGS
from gensight.processor.analyse.hallucination_risk import risk_flags, split_flag
from gensight.processor.config_fields import Section, build_section, check
from gensight.processor.export.metric_builder import series_attributes
from gensight.processor.points import SUM, Analyser, MetricPoint, Window
from gensight.processor.records import OVERFLOW, CallRecord, SeriesKey

if TYPE_CHECKING:
    from gensight.processor.config import ProcessorConfig
    from gensight.processor.pipeline.pipeline import PipelineContext

METRIC_NAME = "gensight.content.flags"
METRIC_UNIT = "{flag}"

FLAG_EMAIL = "pii.email"
FLAG_PHONE = "pii.phone"
FLAG_CARD = "pii.card"
FLAG_INJECTION = "prompt_injection"
ALL_FLAGS = (FLAG_EMAIL, FLAG_PHONE, FLAG_CARD, FLAG_INJECTION, *HALLUCINATION_FLAGS)

# Attributes that carry captured content, by dialect. Exact names ...
CONTENT_ATTRIBUTES = frozenset(
    {
        # GenAI semconv (current): JSON-encoded message lists
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        # GenAI semconv (older) and OpenLIT
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        # OpenInference
        "input.value",
        "output.value",
        # retrieval / tools (query text and tool arguments can carry user input)
        "gen_ai.retrieval.query.text",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)
# ... and indexed forms: OpenLLMetry ``gen_ai.prompt.0.content``, ``gen_ai.completion.1.content``;
# OpenInference ``llm.input_messages.0.message.content``, ``llm.output_messages.0.message.content``.
_INDEXED_CONTENT_RE = re.compile(
    r"^(?:gen_ai\.(?:prompt|completion)|llm\.(?:input|output)_messages)\.\d{1,6}\.(?:message\.)?content$"
)
_INDEXED_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages.")
# the model's answer (hallucination-risk flags read only these): exact names, indexed prefixes
RESPONSE_ATTRIBUTES = frozenset({"gen_ai.output.messages", "gen_ai.completion", "gen_ai.content.completion",
                                 "output.value"})
_RESPONSE_PREFIXES = ("gen_ai.completion.", "llm.output_messages.")

_MAX_DEPTH = 8  # nested lists/maps inside one attribute value
_MAX_ITEMS = 1000  # list items / map entries visited per attribute value

# --- patterns -------------------------------------------------------------------------------
# Bounded quantifiers only: the scanner sees hostile input, so no pattern may backtrack
# super-linearly.
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
    r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# International (+CC ...) or North-American style numbers with separators. Plain digit runs
# (token counts, ids, timestamps) are deliberately not phone numbers.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 20 7946 0958, +14155550123
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"  # (415) 555-0123
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 415-555-0123, 415.555.0123
    r")(?![\w])"
)
_DIGITS_RE = re.compile(r"\d{3}")
# 13-19 digits, optionally grouped by single spaces or dashes; confirmed by the Luhn check.
_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
# Each injection pattern is guarded by literal trigger words (checked on the lower-cased text,
# which is ~100x cheaper than running the regex), so clean text costs almost nothing.
_INJECTION_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (triggers, re.compile(pattern, re.IGNORECASE | re.MULTILINE))
    for triggers, pattern in (
        (
            ("ignore", "disregard", "forget", "override", "bypass"),
            r"\b(?:ignore|disregard|forget|override|bypass)\s{1,4}(?:(?:all|any|the|your|my)\s{1,4}){0,2}"
            r"(?:previous|prior|above|earlier|preceding|system|original|safety)\s{1,4}"
            r"(?:instructions?|prompts?|rules?|directions?|guidelines?|messages?)",
        ),
        (
            ("reveal", "show", "print", "repeat", "output", "leak"),
            r"\b(?:reveal|show|print|repeat|output|leak)\s{1,4}(?:me\s{1,4})?(?:your|the)\s{1,4}"
            r"(?:(?:full|hidden|initial)\s{1,4}){0,2}(?:system\s{1,4}prompt|instructions|initial\s{1,4}prompt)",
        ),
        (
            ("you are now",),
            r"\byou\s{1,4}are\s{1,4}now\s{1,4}(?:in\s{1,4})?"
            r"(?:DAN|developer\s{1,4}mode|jailbroken|unrestricted|an?\s{1,4}unfiltered)",
        ),
        (("mode",), r"\b(?:enable|activate|enter)\s{1,4}(?:developer|god|jailbreak|DAN)\s{1,4}mode\b"),
        (("do anything now",), r"\bdo\s{1,4}anything\s{1,4}now\b"),
        (
            ("pretend",),
            r"\bpretend\s{1,4}(?:that\s{1,4})?you\s{1,4}(?:have\s{1,4}no|are\s{1,4}not\s{1,4}bound\s{1,4}by|don't\s{1,4}have)"
            r"\s{1,4}(?:any\s{1,4})?(?:restrictions|rules|guidelines|filters)",
        ),
        (("<|im_start|>",), r"<\|im_start\|>[ \t\n]{0,4}system"),
        (("[inst]", "[/inst]", "<<sys>>"), r"\[/?INST\]|<<SYS>>"),
        (("##",), r"^[ \t]{0,8}#{2,4}[ \t]{0,4}(?:new[ \t]{1,4})?(?:system|instruction)s?[ \t]{0,8}:?[ \t]{0,8}$"),
    )
)


def _has_injection(text: str) -> bool:
    lower = text.lower()
    for triggers, pattern in _INJECTION_PATTERNS:
        if any(t in lower for t in triggers) and pattern.search(text):
            return True
    return False


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (1 in 10 random numbers do too)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _has_card(text: str) -> bool:
    for match in _CARD_RE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group())
        # Issuer prefixes start with 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6):
        # this keeps nanosecond timestamps and ids (which start with 1) out.
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and len(set(digits)) > 1 and luhn_valid(digits):
            return True
    return False


def scan_text(text: str) -> set[str]:
    """The flags ``text`` raises. The caller bounds the length."""
    found: set[str] = set()
    if "@" in text and _EMAIL_RE.search(text):
        found.add(FLAG_EMAIL)
    if _DIGITS_RE.search(text):  # phone and card numbers need a run of digits
        if _PHONE_RE.search(text):
            found.add(FLAG_PHONE)
        if _has_card(text):
            found.add(FLAG_CARD)
    if _has_injection(text):
        found.add(FLAG_INJECTION)
    return found


def is_response_attribute(name: str) -> bool:
    return name in RESPONSE_ATTRIBUTES or name.startswith(_RESPONSE_PREFIXES)


def is_content_attribute(name: str) -> bool:
    if name in CONTENT_ATTRIBUTES:
        return True
    return name.startswith(_INDEXED_PREFIXES) and _INDEXED_CONTENT_RE.match(name) is not None


MAX_SCAN_CHARS_LIMIT = 1 << 20


@dataclass(frozen=True)
class ContentChecksConfig(Section):
    """``content_checks:`` section of the processor config. Off unless ``enabled: true``."""

    enabled: bool = False
    max_scan_chars: int = 16384  # per span, across all its content attributes
    flags: tuple[str, ...] = ALL_FLAGS  # which checks to run

    def validate(self, key: str = "content_checks") -> None:
        check(isinstance(self.max_scan_chars, int) and not isinstance(self.max_scan_chars, bool)
              and 1 <= self.max_scan_chars <= MAX_SCAN_CHARS_LIMIT, f"{key}.max_scan_chars",
              f"expected an integer in 1..{MAX_SCAN_CHARS_LIMIT}, got {self.max_scan_chars!r}")
        unknown = [f for f in self.flags if f not in ALL_FLAGS]
        check(bool(self.flags) and not unknown, f"{key}.flags",
              f"expected a non-empty subset of {list(ALL_FLAGS)}, got {list(self.flags)!r}")

    @classmethod
    def from_mapping(cls, data: Any, key: str = "content_checks") -> ContentChecksConfig:
        return build_section(cls, {} if data is None else data, key)


@dataclass
class ContentChecker:
    """Scans the content attributes of one span at a time, within a character budget."""

    config: ContentChecksConfig = field(default_factory=ContentChecksConfig)
    spans_scanned: int = 0
    spans_truncated: int = 0  # spans whose content exceeded max_scan_chars (the rest was not scanned)

    def flags_for(self, attributes: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> tuple[str, ...]:
        """Sorted flag names raised by the span's content attributes (empty when disabled).

        ``attributes`` is a mapping or (key, value) pairs; values may be str, bytes, numbers,
        or lists/maps of those (decoded OTLP AnyValues).
        """
        if not self.config.enabled:
            return ()
        items = attributes.items() if isinstance(attributes, Mapping) else attributes
        chunks: list[tuple[str, bool]] = []  # (text, is the model's response)
        budget = self.config.max_scan_chars
        truncated = False
        for name, value in items:
            if not isinstance(name, str) or not is_content_attribute(name):
                continue
            response = is_response_attribute(name)
            for text in _texts(value, 0):
                if budget <= 0:
                    truncated = True
                    break
                if len(text) > budget:
                    text = text[:budget]
                    truncated = True
                chunks.append((text, response))
                budget -= len(text)
            if budget <= 0:
                truncated = truncated or budget < 0
                break
        if not chunks:
            return ()
        self.spans_scanned += 1
        if truncated:
            self.spans_truncated += 1
        # Scan each chunk on its own so a match never spans two attributes.
        found: set[str] = set()
        wanted = self.config.flags
        risks = any(f in wanted for f in HALLUCINATION_FLAGS)
        for chunk, response in chunks:
            found |= scan_text(chunk)
            if response and risks:
                found |= risk_flags(chunk)
        return tuple(sorted(f for f in found if split_flag(f)[0] in wanted))

    def flags_for_otlp(self, key_values: Iterable[Any]) -> tuple[str, ...]:
        """``flags_for`` over OTLP ``KeyValue`` messages (the normaliser's view of a span)."""
        return self.flags_for([(kv.key, _plain(kv.value, 0)) for kv in key_values if is_content_attribute(kv.key)])


def _plain(value: Any, depth: int) -> Any:
    """An OTLP ``AnyValue`` as str / bytes / list / dict, depth- and breadth-bounded."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bytes_value":
        return value.bytes_value
    if depth >= _MAX_DEPTH:
        return None
    if which == "array_value":
        return [_plain(v, depth + 1) for v in value.array_value.values[:_MAX_ITEMS]]
    if which == "kvlist_value":
        return {kv.key: _plain(kv.value, depth + 1) for kv in value.kvlist_value.values[:_MAX_ITEMS]}
    return None


def _texts(value: Any, depth: int) -> Iterable[str]:
    """Strings inside an attribute value, depth- and breadth-bounded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        yield bytes(value[:1 << 20]).decode("utf-8", "replace")
    elif depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            for i, v in enumerate(value.values()):
                if i >= _MAX_ITEMS:
                    break
                yield from _texts(v, depth + 1)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                if i >= _MAX_ITEMS:
                    break
                yield from _texts(v, depth + 1)


# --- metric -----------------------------------------------------------------------------------


class ContentFlagsAnalyser(Analyser):
    """Counts flagged spans per series and flag: the cumulative ``gensight.content.flags`` Sum.

    Reads ``CallRecord.content_flags`` (filled by the normaliser when content checks are on).
    Series beyond ``max_series`` fold into the overflow series, like every other analyser.
    """

    def __init__(self, max_series: int = 2000) -> None:
        self._max_series = max_series
        self._counts: dict[tuple[SeriesKey, str], int] = {}
        self._series: set[SeriesKey] = set()
        self._start_ns: int | None = None
        self._touched: set[tuple[SeriesKey, str]] = set()

    def observe(self, window: Window, records: Sequence[CallRecord]) -> None:
        if self._start_ns is None:
            self._start_ns = window.start_ns
        for rec in records:
            flags = rec.content_flags
            if not flags:
                continue
            key = rec.key
            if key not in self._series:
                if len(self._series) >= self._max_series:
                    key = SeriesKey(OVERFLOW, OVERFLOW, OVERFLOW, OVERFLOW)
                self._series.add(key)
            for flag in flags:
                ck = (key, flag)
                self._counts[ck] = self._counts.get(ck, 0) + 1
                self._touched.add(ck)

    def close(self, window: Window) -> list[MetricPoint]:
        """Cumulative counts for the series that changed since the last close."""
        points = []
        start_ns = self._start_ns if self._start_ns is not None else window.start_ns
        for key, flag in sorted(self._touched):
            name, risk = split_flag(flag)  # hallucination-risk flags carry their level
            points.append(
                MetricPoint(
                    name=METRIC_NAME,
                    kind=SUM,
                    unit=METRIC_UNIT,
                    service=key.service,
                    attributes=(*series_attributes(key), ("flag", name), *((("risk", risk),) if risk else ())),
                    value=float(self._counts[(key, flag)]),
                    start_ns=start_ns,
                    time_ns=window.end_ns,
                    monotonic=True,
                )
            )
        self._touched.clear()
        return points


def build(config: ProcessorConfig, context: PipelineContext) -> list[Analyser]:
    """Analyser factory for ``pipeline.ANALYSER_FACTORIES``: nothing unless content checks are on."""
    if not config.content_checks.enabled:
        return []
    return [ContentFlagsAnalyser(max_series=config.series.max_series)]
