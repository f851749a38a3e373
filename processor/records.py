"""Call records: the one normalised shape every analyser reads.

Whatever dialect a span was written in (Gensight, official OTel GenAI, OpenLLMetry, OpenLIT,
OpenInference, older semconv), the normaliser reduces it to a ``CallRecord``. Analysers never
see span attributes, so adding a dialect touches one module.

A record is a NamedTuple: immutable, tuple-compact, and cheap to build in the hot path.
"""

from __future__ import annotations

from typing import NamedTuple

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

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(self.service, self.kind, self.provider, self.target)
