"""Call records: the one normalised shape every analyser reads.

Whatever dialect a span was written in (Gensight, official OTel GenAI, OpenLLMetry, OpenLIT,
OpenInference, older semconv), the normaliser reduces it to a ``CallRecord``. Analysers never
see span attributes, so adding a dialect touches one module.

A record is a NamedTuple: immutable, tuple-compact, and cheap to build in the hot path.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

# kinds
CHAT = "chat"
TEXT_COMPLETION = "text_completion"
EMBEDDINGS = "embeddings"
EXECUTE_TOOL = "execute_tool"
RETRIEVAL = "retrieval"
INVOKE_AGENT = "invoke_agent"
OTHER = "other"
KINDS = (CHAT, TEXT_COMPLETION, EMBEDDINGS, EXECUTE_TOOL, RETRIEVAL, INVOKE_AGENT, OTHER)

# The series a record belongs to once the cardinality cap is exceeded; its points carry
# ``otel.metric.overflow=true`` instead of the key attributes.
OVERFLOW = "_overflow"


class SeriesKey(NamedTuple):
    """service x kind x provider x target (model, tool name or data source id)."""

    service: str
    kind: str
    provider: str
    target: str


OVERFLOW_KEY = SeriesKey(OVERFLOW, OVERFLOW, OVERFLOW, OVERFLOW)


class CallRecord(NamedTuple):
    kind: str
    service: str
    provider: str
    target: str  # model for LLM calls, tool name for execute_tool, data source id for retrieval
    start_ns: int
    end_ns: int  # event time: every window keys off this
    duration_s: float
    input_tokens: int | None = None  # includes cached tokens (GenAI semconv)
    output_tokens: int | None = None
    cached_tokens: int | None = None  # cache reads
    cost_usd: float | None = None
    cost_enriched: bool = False  # True when the processor computed the cost from the pricing table
    error: bool = False
    error_type: str | None = None
    finish_reason: str | None = None
    relevance: float | None = None  # top retrieval score in [0, 1], higher = more relevant
    cache_hit: bool | None = None  # response-cache hit reported by the app
    tenant: str | None = None  # keyed hash of the tenant/user id, never the raw value
    ttfc_s: float | None = None  # time to first chunk of a streamed response
    trace_id: bytes = b""  # for exemplars / trace links
    content_flags: tuple[str, ...] = ()  # content-check flag names (never the text); empty unless enabled
    span_id: bytes = b""  # with trace_id: exemplars and example-trace links
    error_class: str | None = None  # error.type mapped to a small documented set of classes
    response_id: str | None = None  # gen_ai.response.id: joins evaluation results to their call
    extra: tuple[Any, ...] = ()  # values of configured extra attribute keys (experiments' ``by``), config order

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.service, self.kind, self.provider, self.target)


# Field positions, by name. Analysers read records and the pipeline's column views
# (``cols[F_DURATION_S]``) by position on the hot path; these names are what they index with, so
# inserting a field never silently shifts an analyser's inputs: the check below fails at import.
F_KIND: Final = 0
F_SERVICE: Final = 1
F_PROVIDER: Final = 2
F_TARGET: Final = 3
F_START_NS: Final = 4
F_END_NS: Final = 5
F_DURATION_S: Final = 6
F_INPUT_TOKENS: Final = 7
F_OUTPUT_TOKENS: Final = 8
F_CACHED_TOKENS: Final = 9
F_COST_USD: Final = 10
F_COST_ENRICHED: Final = 11
F_ERROR: Final = 12
F_ERROR_TYPE: Final = 13
F_FINISH_REASON: Final = 14
F_RELEVANCE: Final = 15
F_CACHE_HIT: Final = 16
F_TENANT: Final = 17
F_TTFC_S: Final = 18
F_TRACE_ID: Final = 19
F_CONTENT_FLAGS: Final = 20
F_SPAN_ID: Final = 21
F_ERROR_CLASS: Final = 22
F_RESPONSE_ID: Final = 23
F_EXTRA: Final = 24

_FIELD_CONSTANTS = {name: value for name, value in globals().items() if name.startswith("F_")}
if {f"F_{name.upper()}": i for i, name in enumerate(CallRecord._fields)} != _FIELD_CONSTANTS:
    raise RuntimeError("CallRecord fields and their F_* position constants disagree: update records.py")
