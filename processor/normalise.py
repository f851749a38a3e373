"""Normalise OTLP spans of any GenAI dialect into ``CallRecord`` s.

Why one module: analysers must never know which instrumentation wrote a span. Every attribute
name of every dialect we read is listed here (``_SLOT_KEYS``), mapped to a *slot*; a span's
attributes are walked once, each key looked up in one dict, and the matching ``AnyValue`` parked
in its slot. Only then are the slots resolved in dialect-priority order. This keeps the hot path
to one dict lookup per attribute and no per-span dict, and lets a span without any GenAI marker
key be skipped before anything is decoded.

Dialects read (names checked against the projects' own semantic-convention modules):

* Gensight / current GenAI semconv: ``gen_ai.operation.name``, ``gen_ai.provider.name``,
  ``gen_ai.request.model`` / ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens``, ``gen_ai.usage.cache_read.input_tokens``, ``gen_ai.tool.name``,
  ``gen_ai.data_source.id``, ``gen_ai.response.finish_reasons``,
  ``gen_ai.response.time_to_first_chunk``, ``error.type``; Gensight's ``gen_ai.usage.cost``,
  ``gensight.retrieval.top_score``, ``gensight.cache.hit``.
* older semconv: ``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` / ``completion_tokens``.
* OpenLLMetry: ``llm.request.type``, ``traceloop.span.kind``, ``traceloop.entity.name``,
  ``llm.usage.*``, ``gen_ai.usage.cache_read_input_tokens``, ``llm.vendor``.
* OpenLIT: ``gen_ai.system``, ``gen_ai.operation.name``, ``gen_ai.usage.cost``.
* OpenInference: ``openinference.span.kind``, ``llm.token_count.prompt`` / ``completion`` /
  ``prompt_details.cache_read``, ``llm.model_name``, ``llm.provider`` / ``llm.system``,
  ``llm.cost.total``, ``tool.name``, ``retrieval.documents.N.document.score``.
* semconv proposal (semantic-conventions-genai #443): ``gen_ai.usage.cost.amount`` + ``.currency``.

Bad values never crash the processor: a NaN/inf/negative/non-numeric token count or cost is
treated as absent (the span is still accepted; ``values_dropped`` counts it). A span whose end
precedes its start, or without timestamps, is rejected and counted, for ``partial_success``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from gensight.pricing import PricingTable
from gensight.privacy import hash_id
from gensight.processor.records import (
    CHAT,
    EMBEDDINGS,
    EXECUTE_TOOL,
    INVOKE_AGENT,
    OTHER,
    RETRIEVAL,
    TEXT_COMPLETION,
    CallRecord,
)

STATUS_CODE_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
UNKNOWN_SERVICE = "unknown_service"
ERROR_TYPE_OTHER = "_OTHER"  # GenAI semconv fallback when the error class is unknown
DEFAULT_TENANT_ATTRIBUTES = ("enduser.id", "user.id")
_MAX_TENANT_CACHE = 10_000
# Series-key strings (service, provider, model/tool/data source, error type, finish reason) are
# clipped to this many characters: they become exported metric attributes, and one span with a
# 10 MB model name must not make every metrics export too large for the backend to accept.
MAX_KEY_CHARS = 256


# Token counts, costs and durations above 2**53 are not exactly representable as floats, and a
# few of them sum past the float range: one analyser close then raises OverflowError on every
# window from then on. They are treated as bad values (the span is kept, the value dropped).
MAX_NUMBER = float(2**53)
# Span times past the int64 nanosecond range (year 2262) cannot be exported (OTLP consumers and
# Prometheus use signed nanoseconds; our window end would not even fit the fixed64 field).
MAX_TIME_NS = 2**63 - 1


def _clip(value: str) -> str:
    return value if len(value) <= MAX_KEY_CHARS else value[:MAX_KEY_CHARS]

# -- slots -------------------------------------------------------------------------------------
# Slot numbers are positions in a per-span list. Markers (a span carrying any of them is GenAI)
# come first, so "is this span GenAI?" is "did any slot below _N_MARKERS get a value?".
(
    S_OPERATION,
    S_PROVIDER,
    S_SYSTEM,
    S_LLM_PROVIDER,
    S_LLM_SYSTEM,
    S_LLM_VENDOR,
    S_REQ_MODEL,
    S_RESP_MODEL,
    S_LLM_MODEL_NAME,
    S_LLM_REQ_MODEL,
    S_IN_TOKENS,
    S_PROMPT_TOKENS,
    S_LLM_PROMPT_TOKENS,
    S_OI_PROMPT_TOKENS,
    S_OUT_TOKENS,
    S_COMPLETION_TOKENS,
    S_LLM_COMPLETION_TOKENS,
    S_OI_COMPLETION_TOKENS,
    S_CACHE_READ,
    S_CACHE_READ_OLL,
    S_OI_CACHE_READ,
    S_CACHE_WRITE,
    S_CACHE_WRITE_OLL,
    S_OI_CACHE_WRITE,
    S_COST,
    S_COST_AMOUNT,
    S_OI_COST,
    S_TOOL_NAME,
    S_OI_TOOL_NAME,
    S_DATA_SOURCE,
    S_OI_KIND,
    S_TL_KIND,
    S_TL_ENTITY,
    S_LLM_REQUEST_TYPE,
    S_TOP_SCORE,
    S_CACHE_HIT,
    S_FINISH_REASONS,
    S_TTFC,
    # generic (not markers)
    S_COST_CURRENCY,
    S_ERROR_TYPE,
    S_TENANT,  # every configured tenant attribute maps here, first one found wins
    _N_SLOTS,
) = range(42)
_N_MARKERS = S_TTFC + 1

_SLOT_KEYS: dict[str, int] = {
    "gen_ai.operation.name": S_OPERATION,
    "gen_ai.provider.name": S_PROVIDER,
    "gen_ai.system": S_SYSTEM,
    "llm.provider": S_LLM_PROVIDER,
    "llm.system": S_LLM_SYSTEM,
    "llm.vendor": S_LLM_VENDOR,
    "gen_ai.request.model": S_REQ_MODEL,
    "gen_ai.response.model": S_RESP_MODEL,
    "llm.model_name": S_LLM_MODEL_NAME,
    "llm.request.model": S_LLM_REQ_MODEL,  # OpenLLMetry before it moved to gen_ai.*
    "gen_ai.usage.input_tokens": S_IN_TOKENS,
    "gen_ai.usage.prompt_tokens": S_PROMPT_TOKENS,
    "llm.usage.prompt_tokens": S_LLM_PROMPT_TOKENS,
    "llm.token_count.prompt": S_OI_PROMPT_TOKENS,
    "gen_ai.usage.output_tokens": S_OUT_TOKENS,
    "gen_ai.usage.completion_tokens": S_COMPLETION_TOKENS,
    "llm.usage.completion_tokens": S_LLM_COMPLETION_TOKENS,
    "llm.token_count.completion": S_OI_COMPLETION_TOKENS,
    "gen_ai.usage.cache_read.input_tokens": S_CACHE_READ,
    "gen_ai.usage.cache_read_input_tokens": S_CACHE_READ_OLL,
    "llm.token_count.prompt_details.cache_read": S_OI_CACHE_READ,
    "gen_ai.usage.cache_creation.input_tokens": S_CACHE_WRITE,
    "gen_ai.usage.cache_creation_input_tokens": S_CACHE_WRITE_OLL,
    "llm.token_count.prompt_details.cache_write": S_OI_CACHE_WRITE,
    "gen_ai.usage.cost": S_COST,
    "gen_ai.usage.cost.amount": S_COST_AMOUNT,
    "llm.cost.total": S_OI_COST,
    "gen_ai.tool.name": S_TOOL_NAME,
    "tool.name": S_OI_TOOL_NAME,
    "gen_ai.data_source.id": S_DATA_SOURCE,
    "openinference.span.kind": S_OI_KIND,
    "traceloop.span.kind": S_TL_KIND,
    "traceloop.entity.name": S_TL_ENTITY,
    "llm.request.type": S_LLM_REQUEST_TYPE,
    "gensight.retrieval.top_score": S_TOP_SCORE,
    "gensight.cache.hit": S_CACHE_HIT,
    "gen_ai.response.finish_reasons": S_FINISH_REASONS,
    "gen_ai.response.time_to_first_chunk": S_TTFC,
    "gen_ai.usage.cost.currency": S_COST_CURRENCY,
    "error.type": S_ERROR_TYPE,
}
_OI_DOC_PREFIX = "retrieval.documents."
_OI_DOC_SCORE_SUFFIX = ".document.score"

# operation names (semconv + the synonyms other dialects use) -> kind
_OPERATION_KINDS = {
    "chat": CHAT,
    "generate_content": CHAT,
    "text_completion": TEXT_COMPLETION,
    "completion": TEXT_COMPLETION,
    "embeddings": EMBEDDINGS,
    "embedding": EMBEDDINGS,
    "execute_tool": EXECUTE_TOOL,
    "tool": EXECUTE_TOOL,
    "retrieval": RETRIEVAL,
    "retrieve": RETRIEVAL,
    "invoke_agent": INVOKE_AGENT,
    "agent": INVOKE_AGENT,
}
_OPENINFERENCE_KINDS = {
    "LLM": CHAT,
    "EMBEDDING": EMBEDDINGS,
    "TOOL": EXECUTE_TOOL,
    "RETRIEVER": RETRIEVAL,
    "AGENT": INVOKE_AGENT,
}
_TRACELOOP_KINDS = {"tool": EXECUTE_TOOL, "agent": INVOKE_AGENT}
_LLM_REQUEST_TYPES = {"chat": CHAT, "completion": TEXT_COMPLETION, "embedding": EMBEDDINGS}

# provider spellings seen in the wild -> GenAI semconv provider names
_PROVIDER_ALIASES = {
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "google": "gcp.gen_ai",
    "vertexai": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
}


class NormaliseResult(NamedTuple):
    records: list[CallRecord]
    skipped: int  # spans without any GenAI marker
    rejected: int  # unusable spans (bad timestamps): reported through partial_success
    values_dropped: int  # bad token/cost values treated as absent (span still accepted)
    error_message: str  # first rejection reason, "" when none


@dataclass(frozen=True)
class NormaliseConfig:
    """How spans become records. ``tenant_attributes``: span/resource attribute names holding
    the tenant or user id (first found wins), hashed with ``hash_key`` before they go anywhere."""

    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES
    enrich_cost: bool = True


def _any_value(v: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (arrays as lists; kvlists/bytes as None)."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    return None


def _str(v: Any) -> str | None:
    if v is None:
        return None
    x = _any_value(v)
    if x is None or isinstance(x, list):
        return None
    return str(x) if not isinstance(x, str) else x


def _number(v: Any) -> float | None | bool:
    """A finite non-negative number, ``None`` when absent, ``False`` when present but unusable."""
    which = v.WhichOneof("value")
    if which == "int_value":
        x: float = v.int_value
    elif which == "double_value":
        x = v.double_value
    elif which == "string_value":
        try:
            x = float(v.string_value)
        except ValueError:
            return False
    else:
        return False
    if x != x or x < 0 or x > MAX_NUMBER:  # NaN, negative, inf and absurd values
        return False
    return x


def _provider(raw: str | None) -> str:
    if not raw:
        return ""
    p = raw.strip().lower()
    return _PROVIDER_ALIASES.get(p, p)


class Normaliser:
    """Turns ``ExportTraceServiceRequest`` s into call records. Thread-safe for concurrent use
    (the only mutable state is the tenant-hash cache, where a lost update is harmless)."""

    def __init__(self, config: NormaliseConfig, pricing: PricingTable | None, hash_key: bytes):
        self.config = config
        self._pricing = pricing if config.enrich_cost else None
        self._hash_key = hash_key
        self._slots = dict(_SLOT_KEYS)
        for name in config.tenant_attributes:
            self._slots[name] = S_TENANT
        self._tenant_attrs = frozenset(config.tenant_attributes)
        self._tenant_cache: dict[str, str] = {}

    # -- public --------------------------------------------------------------------------------
    def normalise(self, request: Any) -> NormaliseResult:
        records: list[CallRecord] = []
        skipped = rejected = dropped = 0
        message = ""
        for rs in request.resource_spans:
            service = UNKNOWN_SERVICE
            resource_tenant = None
            for kv in rs.resource.attributes:
                k = kv.key
                if k == "service.name":
                    service = kv.value.string_value or UNKNOWN_SERVICE
                elif k in self._tenant_attrs and resource_tenant is None:
                    resource_tenant = kv.value
            for ss in rs.scope_spans:
                for span in ss.spans:
                    out = self._span(span, service, resource_tenant)
                    if out is None:
                        skipped += 1
                    elif isinstance(out, str):
                        rejected += 1
                        if not message:
                            message = out
                    else:
                        rec, bad = out
                        records.append(rec)
                        dropped += bad
        return NormaliseResult(records, skipped, rejected, dropped, message)

    def normalise_spans(self, spans: Iterable[Any], service: str) -> NormaliseResult:
        """Normalise bare ``Span`` messages of one service (tests, tools)."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", service
        rs.scope_spans.add().spans.extend(spans)
        return self.normalise(req)

    # -- per span ------------------------------------------------------------------------------
    def _span(self, span: Any, service: str, resource_tenant: Any) -> tuple[CallRecord, int] | str | None:
        slots: list[Any] = [None] * _N_SLOTS
        get = self._slots.get
        marker = False
        top_score = None
        for kv in span.attributes:
            k = kv.key
            s = get(k)
            if s is not None:
                slots[s] = kv.value
                if s < _N_MARKERS:
                    marker = True
            elif k.startswith(_OI_DOC_PREFIX) and k.endswith(_OI_DOC_SCORE_SUFFIX):
                x = _number(kv.value)
                if x is not False and x is not None:
                    top_score = x if top_score is None or x > top_score else top_score
                marker = True
        if not marker:
            return None
        start = span.start_time_unix_nano
        end = span.end_time_unix_nano
        if not end or not start:
            return "span without start or end time"
        if end < start:
            return "span end time before start time"
        if end > MAX_TIME_NS:
            return "span end time beyond year 2262 (int64 nanoseconds)"
        bad = 0

        # kind
        kind = None
        v = slots[S_OPERATION]
        if v is not None:
            kind = _OPERATION_KINDS.get(v.string_value)
        if kind is None and slots[S_OI_KIND] is not None:
            kind = _OPENINFERENCE_KINDS.get(slots[S_OI_KIND].string_value.upper(), OTHER)
        if kind is None and slots[S_TL_KIND] is not None:
            kind = _TRACELOOP_KINDS.get(slots[S_TL_KIND].string_value, OTHER)
        if kind is None and slots[S_LLM_REQUEST_TYPE] is not None:
            kind = _LLM_REQUEST_TYPES.get(slots[S_LLM_REQUEST_TYPE].string_value, OTHER)
        if kind is None:
            if slots[S_TOOL_NAME] is not None:
                kind = EXECUTE_TOOL
            elif slots[S_DATA_SOURCE] is not None:
                kind = RETRIEVAL
            elif slots[S_REQ_MODEL] is not None or slots[S_RESP_MODEL] is not None:
                kind = CHAT
            else:
                kind = OTHER

        # provider
        provider = ""
        for s in (S_PROVIDER, S_SYSTEM, S_LLM_PROVIDER, S_LLM_SYSTEM, S_LLM_VENDOR):
            v = slots[s]
            if v is not None:
                provider = _provider(_str(v))
                break

        # models
        req_model = _str(slots[S_REQ_MODEL]) if slots[S_REQ_MODEL] is not None else None
        resp_model = _str(slots[S_RESP_MODEL]) if slots[S_RESP_MODEL] is not None else None
        oi_model = _str(slots[S_LLM_MODEL_NAME]) if slots[S_LLM_MODEL_NAME] is not None else None
        if req_model is None and slots[S_LLM_REQ_MODEL] is not None:
            req_model = _str(slots[S_LLM_REQ_MODEL])
        model = req_model or resp_model or oi_model or ""

        # target
        if kind == EXECUTE_TOOL:
            target = ""
            for s in (S_TOOL_NAME, S_OI_TOOL_NAME, S_TL_ENTITY):
                if slots[s] is not None:
                    target = _str(slots[s]) or ""
                    break
        elif kind == RETRIEVAL:
            target = _str(slots[S_DATA_SOURCE]) or "" if slots[S_DATA_SOURCE] is not None else ""
        else:
            target = model

        # tokens
        in_tok = out_tok = cached = cache_write = None
        for s in (S_IN_TOKENS, S_PROMPT_TOKENS, S_LLM_PROMPT_TOKENS, S_OI_PROMPT_TOKENS):
            v = slots[s]
            if v is not None:
                x = _number(v)
                if x is False:
                    bad += 1
                else:
                    in_tok = int(x)  # type: ignore[arg-type]
                break
        for s in (S_OUT_TOKENS, S_COMPLETION_TOKENS, S_LLM_COMPLETION_TOKENS, S_OI_COMPLETION_TOKENS):
            v = slots[s]
            if v is not None:
                x = _number(v)
                if x is False:
                    bad += 1
                else:
                    out_tok = int(x)  # type: ignore[arg-type]
                break
        for s in (S_CACHE_READ, S_CACHE_READ_OLL, S_OI_CACHE_READ):
            v = slots[s]
            if v is not None:
                x = _number(v)
                if x is False:
                    bad += 1
                else:
                    cached = int(x)  # type: ignore[arg-type]
                break
        for s in (S_CACHE_WRITE, S_CACHE_WRITE_OLL, S_OI_CACHE_WRITE):
            v = slots[s]
            if v is not None:
                x = _number(v)
                if x is False:
                    bad += 1
                else:
                    cache_write = int(x)  # type: ignore[arg-type]
                break

        # cost (USD only: a cost in another currency is not summable with the rest)
        cost = None
        for s in (S_COST, S_COST_AMOUNT, S_OI_COST):
            v = slots[s]
            if v is not None:
                if s == S_COST_AMOUNT and slots[S_COST_CURRENCY] is not None:
                    currency = (_str(slots[S_COST_CURRENCY]) or "").upper()
                    if currency not in ("", "USD"):
                        bad += 1
                        continue
                x = _number(v)
                if x is False:
                    bad += 1
                    continue
                cost = x
                break
        enriched = False
        if cost is None and self._pricing is not None and (in_tok is not None or out_tok is not None):
            cost = self._pricing.cost_usd(
                provider, resp_model or model, in_tok, out_tok, cached or 0, cache_write or 0
            )
            enriched = cost is not None

        # outcome
        error_type = _str(slots[S_ERROR_TYPE]) if slots[S_ERROR_TYPE] is not None else None
        error = span.status.code == STATUS_CODE_ERROR or bool(error_type)
        if error and not error_type:
            error_type = ERROR_TYPE_OTHER

        finish = None
        v = slots[S_FINISH_REASONS]
        if v is not None:
            x = _any_value(v)
            if isinstance(x, list):
                finish = str(x[0]) if x else None
            elif x is not None:
                finish = str(x)

        # retrieval relevance: Gensight's top score, else the best OpenInference document score
        v = slots[S_TOP_SCORE]
        if v is not None:
            x = _number(v)
            if x is False:
                bad += 1
            else:
                top_score = x
        relevance = float(top_score) if top_score is not None else None  # type: ignore[arg-type]

        cache_hit = None
        v = slots[S_CACHE_HIT]
        if v is not None:
            x = _any_value(v)
            if isinstance(x, bool):
                cache_hit = x
            elif isinstance(x, str) and x.lower() in ("true", "false"):
                cache_hit = x.lower() == "true"
            else:
                bad += 1

        ttfc = None
        v = slots[S_TTFC]
        if v is not None:
            x = _number(v)
            if x is False:
                bad += 1
            else:
                ttfc = float(x)  # type: ignore[arg-type]

        tenant = None
        v = slots[S_TENANT] if slots[S_TENANT] is not None else resource_tenant
        if v is not None:
            raw = _str(v)
            if raw:
                tenant = self._hash_tenant(raw)

        return (
            CallRecord(
                kind,
                _clip(service),
                _clip(provider),
                _clip(target),
                start,
                end,
                (end - start) / 1e9,
                in_tok,
                out_tok,
                cached,
                cost,  # type: ignore[arg-type]
                enriched,
                error,
                _clip(error_type) if error_type else error_type,
                _clip(finish) if finish else finish,
                relevance,
                cache_hit,
                tenant,
                ttfc,
                span.trace_id,
            ),
            bad,
        )

    def _hash_tenant(self, raw: str) -> str:
        h = self._tenant_cache.get(raw)
        if h is None:
            h = hash_id(raw, self._hash_key)
            if len(self._tenant_cache) >= _MAX_TENANT_CACHE:
                self._tenant_cache.clear()
            self._tenant_cache[raw] = h
        return h


def normalise_records(normaliser: Normaliser, requests: Sequence[Any]) -> list[CallRecord]:
    """All records of ``requests`` (convenience for tools and tests)."""
    out: list[CallRecord] = []
    for r in requests:
        out.extend(normaliser.normalise(r).records)
    return out
