"""Normalise OTLP spans of any GenAI dialect into ``CallRecord`` s.

Why one module: analysers must never know which instrumentation wrote a span. Every attribute
name of every dialect we read is listed here.

Two readers, one shape. Each span carrying a GenAI marker key becomes a *slot row*: its
timestamps, status and trace id, then one slot per attribute key we read (``_SLOT_KEYS``).
``_record`` turns a row into a ``CallRecord`` — the only place that knows the dialects' rules.
Rows come from the C scanner (``_spanscan.c``) when the receiver has the request's bytes: it
walks the wire format once and builds Python objects only for the ~10 values a GenAI span needs,
which is what makes the processor fast (the protobuf API creates two wrappers and a str per
attribute of every span). Otherwise, or when the scanner declines a request, ``_SlotTable.rows``
reads the parsed message through the protobuf API: same rows, slower. Spans without a marker key
are skipped by both before any value is decoded.

Dialects read: see :mod:`gensight.processor.normalise.dialects`.

Bad values never crash the processor: a NaN/inf/negative/non-numeric token count or cost is
treated as absent (the span is still accepted; ``values_dropped`` counts it). A span whose end
precedes its start, or without timestamps, is rejected and counted, for ``partial_success``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from gensight.pricing import SERVICE_TIER_KEYS, PricingTable, Quote
from gensight.privacy import hash_id
from gensight.processor.config_fields import Section, check
from gensight.processor.normalise.dialects import (
    CACHE_HIT,
    CACHE_READ_KEYS,
    CACHE_WRITE_KEYS,
    COST,
    COST_AMOUNT,
    COST_CURRENCY,
    DATA_SOURCE,
    DEFAULT_TENANT_ATTRIBUTES,
    ERROR_TYPE,
    ERROR_TYPE_OTHER,
    FINISH_REASONS,
    HTTP_STATUS_KEYS,
    INPUT_TOKEN_KEYS,
    LLM_REQUEST_TYPE,
    LLM_REQUEST_TYPES,
    MAX_KEY_CHARS,
    MAX_NUMBER,
    MAX_TENANT_CACHE,
    MAX_TIME_NS,
    OI_COST,
    OI_KIND,
    OI_MODEL,
    OPENINFERENCE_KINDS,
    OPERATION,
    OPERATION_KINDS,
    OUTPUT_TOKEN_KEYS,
    PROVIDER_KEYS,
    RESPONSE_ID,
    RESPONSE_MODEL,
    SERVICE_NAME,
    STATUS_CODE_ERROR,
    TL_ENTITY,
    TL_KIND,
    TOP_SCORE,
    TRACELOOP_KINDS,
    TTFC,
    UNKNOWN_SERVICE,
    clip_key,
)
from gensight.processor.normalise.error_class import error_class
from gensight.processor.normalise.slot_table import (
    SlotTable,
    _spanscan,  # noqa: F401 - the tests ask which reader runs
)
from gensight.processor.normalise.unpriced import UnpricedCalls
from gensight.processor.normalise.values import (  # the readers' value decoding (package-internal)
    _count,
    _measure,
    _number,
    _provider,
    _provider_cache,
    _str,
)
from gensight.processor.records import (
    CHAT,
    EXECUTE_TOOL,
    OTHER,
    RETRIEVAL,
    CallRecord,
)

_new_record = tuple.__new__
# _record builds records positionally: fail at import, not with shifted fields, if they change
if CallRecord._fields[19:] != ("trace_id", "content_flags", "span_id", "error_class", "response_id", "extra"):
    raise RuntimeError("CallRecord fields changed: update Normaliser._record")
_HTTP_STATUS_MIN, _HTTP_STATUS_MAX = 100, 599


def _http_status(value: Any) -> int | None:
    """An ``http.response.status_code`` slot as a status, else None (semconv says int; some
    instrumentations send "429"; anything else is ignored, not an error)."""
    if type(value) is str and value.isdigit():
        value = int(value)
    if type(value) is int and _HTTP_STATUS_MIN <= value <= _HTTP_STATUS_MAX:
        return value
    return None


class NormaliseResult(NamedTuple):
    records: list[CallRecord]
    skipped: int  # spans without any GenAI marker
    rejected: int  # unusable spans (bad timestamps): reported through partial_success
    values_dropped: int  # bad token/cost values treated as absent (span still accepted)
    error_message: str  # first rejection reason, "" when none


@dataclass(frozen=True)
class NormaliseConfig(Section):
    """The ``normalise`` section: how spans become records. ``tenant_attributes``: span/resource
    attribute names holding the tenant or user id (first found wins), hashed with ``hash_key``
    before they go anywhere. ``extra_attributes``: span (else resource) attribute names whose
    values, as text, fill ``CallRecord.extra`` in this order (experiments group by them; the
    pipeline sets them from the experiments' ``by``); empty = not read at all. ``pricing_file`` is
    read by the pipeline (else ``$GENSIGHT_PRICING_FILE``, else genai-prices with the bundled
    overrides)."""

    tenant_attributes: tuple[str, ...] = DEFAULT_TENANT_ATTRIBUTES
    enrich_cost: bool = True
    extra_attributes: tuple[str, ...] = ()
    pricing_file: str | None = None

    def validate(self, key: str = "normalise") -> None:
        for i, name in enumerate(self.tenant_attributes):
            check(bool(name), f"{key}.tenant_attributes[{i}]", "must be a non-empty attribute name")
        if self.pricing_file:
            check(os.path.isfile(self.pricing_file), f"{key}.pricing_file", f"no such file: {self.pricing_file}")


# -- slot rows: the one shape both span readers produce -------------------------------------------
# A row is (start_ns, end_ns, status_code, trace_id, span_id, *slots, doc_scores). Each slot holds one
# group of keys: the value of the group's first key present (a repeated key: its last value),
# decoded to str/int/float/bool/list, or UNUSABLE for a kvlist, bytes or unset value; None when
# no key of the group is present. Tenant attributes follow the fixed slots. doc_scores: None, or
# (key, value) pairs of OpenInference ``retrieval.documents.N.document.score`` attributes.
_SLOT_GROUPS: tuple[tuple[str, ...], ...] = (
    (OPERATION,), (OI_KIND,), (TL_KIND,), (LLM_REQUEST_TYPE,),
    ("gen_ai.tool.name",), ("tool.name",), (TL_ENTITY,), (DATA_SOURCE,),
    ("gen_ai.request.model",), ("llm.request.model",), (RESPONSE_MODEL,), (OI_MODEL,),
    PROVIDER_KEYS, INPUT_TOKEN_KEYS, OUTPUT_TOKEN_KEYS, CACHE_READ_KEYS, CACHE_WRITE_KEYS,
    (COST,), (COST_AMOUNT,), (OI_COST,), (COST_CURRENCY,),
    (TOP_SCORE,), (CACHE_HIT,), (FINISH_REASONS,), (TTFC,), (ERROR_TYPE,), (SERVICE_NAME,),
    SERVICE_TIER_KEYS,  # read only to price a call (cost enrichment)
    (RESPONSE_ID,),  # joins evaluation results to their call
    HTTP_STATUS_KEYS,  # read only to classify a failed call's error
)  # fmt: skip
_ROW_HEAD = 5  # start_ns, end_ns, status_code, trace_id, span_id
# row positions of the slots, in _SLOT_GROUPS order
(_OP, _OIK, _TLK, _LRT, _TOOL, _TOOL2, _TLE, _DS, _RM, _RM2, _RESP, _OIM,
 _PROVIDER, _IN, _OUT, _CACHE_READ, _CACHE_WRITE, _COST1, _COST2, _COST3, _CUR,
 _TOP, _HIT, _FIN, _TTFC, _ERR, _SVC, _TIER, _RID, _HTTP) = range(_ROW_HEAD, _ROW_HEAD + len(_SLOT_GROUPS))  # fmt: skip


class Normaliser:
    """Turns ``ExportTraceServiceRequest`` s into call records. Thread-safe for concurrent use
    (the only mutable state is the tenant-hash cache, where a lost update is harmless)."""

    def __init__(self, config: NormaliseConfig, pricing: PricingTable | None, hash_key: bytes,
                 content_checker: Any = None, *, accelerate: bool = True):
        self.config = config
        # opt-in content checks (``content_checks.ContentChecker``): flag names only, never text
        self._content = content_checker
        self._pricing = pricing if config.enrich_cost else None
        self._hash_key = hash_key
        self._slots = SlotTable(_SLOT_GROUPS, _ROW_HEAD, config.tenant_attributes, accelerate, config.extra_attributes)
        self._tenant_slots = self._slots.tenant_slots
        self._prices: dict[tuple[str, str, str | None], Quote | None] = {}
        self.unpriced = UnpricedCalls()  # self-telemetry: calls with tokens that no price covers
        self._tenant_cache: dict[str, str] = {}

    @property
    def accelerated(self) -> bool:
        """True when serialized requests are read by the C scanner (``_spanscan``)."""
        return self._slots.c_table is not None

    # -- public --------------------------------------------------------------------------------
    def normalise(self, request: Any, raw: bytes | None = None) -> NormaliseResult:
        """Records of a parsed ``request``. ``raw``, its serialized bytes when the receiver has
        them, lets the C scanner read the attributes instead of the protobuf API (same results)."""
        content = self._content
        # content checks read each span's whole attribute list: only the protobuf-API reader has it
        flat: list[Any] | None = [] if content is not None else None
        scanned = None
        if content is None and self._slots.c_table is not None:
            # re-serializing a parsed request and scanning it is still ~3x faster than the API walk
            scanned = self._slots.scan(raw if raw is not None else request.SerializeToString())
        if scanned is None:
            scanned = self._slots.rows(request, flat)
        records: list[CallRecord] = []
        append = records.append
        skipped = rejected = dropped = 0
        message = ""
        record = self._record
        span_attributes = iter(flat) if flat is not None else None  # aligned with the rows
        for pairs, rows, n_skipped in scanned:
            skipped += n_skipped
            service = UNKNOWN_SERVICE
            resource_tenant = None
            tenant_by_slot = self._slots.tenant_by_slot
            for slot, value in pairs:
                if slot == _SVC - _ROW_HEAD:
                    service = value if type(value) is str and value else UNKNOWN_SERVICE
                if slot in tenant_by_slot and resource_tenant is None:
                    resource_tenant = value
            service = clip_key(service)
            if self._slots.extra_slots:  # experiments configured (one check per resource, not per span)
                record = self._extra_recorder(pairs)
            for row in rows:
                out = record(row, service, resource_tenant)
                if type(out) is CallRecord and span_attributes is None:  # the hot path: a clean record
                    append(out)
                    continue
                attributes = next(span_attributes) if span_attributes is not None else None
                if isinstance(out, str):
                    rejected += 1
                    if not message:
                        message = out
                    continue
                if isinstance(out, CallRecord):
                    rec = out
                else:
                    rec, bad = out
                    dropped += bad
                if attributes is not None and content is not None:
                    flags = content.flags_for_otlp(attributes)
                    if flags:
                        rec = rec._replace(content_flags=flags)
                append(rec)
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

    def _extra_recorder(self, pairs: list[tuple[int, Any]]) -> Any:
        """``_record`` for one resource's rows that also fills ``extra``: each configured key's
        span value as text, else the resource's value, else None."""
        slots = self._slots.extra_slots
        resource = {slot + _ROW_HEAD: value for slot, value in pairs}
        defaults = tuple(_str(resource.get(i)) for i in slots)
        record = self._record
        pairs_of = tuple(zip(slots, defaults, strict=True))
        one = pairs_of[0] if len(pairs_of) == 1 else None  # one experiment attribute: the usual case

        def with_extra(row: tuple, service: str, resource_tenant: Any) -> Any:
            out = record(row, service, resource_tenant)
            if type(out) is str:
                return out
            if one is not None:
                v = row[one[0]]
                extra: tuple = (one[1] if v is None else v if type(v) is str else _str(v),)
            else:
                extra = tuple(d if row[i] is None else _str(row[i]) for i, d in pairs_of)
            if type(out) is CallRecord:  # tuple.__new__ as in _record: _replace costs ~1 µs
                return _new_record(CallRecord, (*out[:-1], extra))
            return _new_record(CallRecord, (*out[0][:-1], extra)), out[1]

        return with_extra

    # -- per span ------------------------------------------------------------------------------
    def _record(self, s: tuple, service: str, resource_tenant: Any) -> CallRecord | tuple[CallRecord, int] | str:
        """One GenAI span's row -> its record, (record, bad values) when some values were
        unusable, or the reason the span is rejected.

        The hot path of the processor: the row is unpacked into locals once (each ``s[i]`` would
        cost a subscript), and the rare dialects' branches are only reached when needed."""
        (start, end, status, trace_id, span_id, op, oi_kind, tl_kind, request_type, tool, tool2, tl_entity, data_source,
         req_model, req_model2, resp_model, oi_model, provider, in_tok, out_tok, cached, cache_write,
         cost, cost_amount, oi_cost, currency, top_score, cache_hit, finish, ttfc, error_type) = s[:_SVC]
        if not end or not start:
            return "span without start or end time"
        if end < start:
            return "span end time before start time"
        if end > MAX_TIME_NS:
            return "span end time beyond year 2262 (int64 nanoseconds)"
        bad = 0

        # kind: semconv operation, else OpenInference / Traceloop span kinds, else llm.request.type
        kind = OPERATION_KINDS.get(op) if type(op) is str else None
        if kind is None:
            if oi_kind is not None:
                kind = OPENINFERENCE_KINDS.get(oi_kind.upper(), OTHER) if type(oi_kind) is str else OTHER
            elif tl_kind is not None:
                kind = TRACELOOP_KINDS.get(tl_kind, OTHER) if type(tl_kind) is str else OTHER
            elif request_type is not None:
                kind = LLM_REQUEST_TYPES.get(request_type, OTHER) if type(request_type) is str else OTHER
            elif tool is not None:
                kind = EXECUTE_TOOL
            elif data_source is not None:
                kind = RETRIEVAL
            elif req_model is not None or resp_model is not None:
                kind = CHAT
            else:
                kind = OTHER

        if type(provider) is str and provider:
            provider = _provider_cache.get(provider) or _provider(provider)
        else:
            provider = ""

        if req_model is None:
            req_model = req_model2
        if type(req_model) is not str:
            req_model = ""
        if resp_model is None and not req_model:
            resp_model = oi_model
        if type(resp_model) is not str:
            resp_model = ""
        model = req_model or resp_model

        if kind == EXECUTE_TOOL:
            x = tool if tool is not None else tool2 if tool2 is not None else tl_entity
            target = x if type(x) is str else ""
        elif kind == RETRIEVAL:
            target = data_source if type(data_source) is str else ""
        else:
            target = model
        if len(target) > MAX_KEY_CHARS:
            target = target[:MAX_KEY_CHARS]

        # numbers: a plain int token count is the common case; anything else goes through _count
        if in_tok is not None and not (type(in_tok) is int and 0 <= in_tok <= MAX_NUMBER):
            in_tok = _count(in_tok)
            bad += in_tok is None
        if out_tok is not None and not (type(out_tok) is int and 0 <= out_tok <= MAX_NUMBER):
            out_tok = _count(out_tok)
            bad += out_tok is None
        if cached is not None:
            cached = _count(cached)
            bad += cached is None
        if cache_write is not None:
            cache_write = _count(cache_write)
            bad += cache_write is None
        # cost dialects, ranked: Gensight/OpenLIT, the semconv proposal (USD only), OpenInference
        if cost is not None and not (type(cost) is float and 0.0 <= cost <= MAX_NUMBER) \
                and (cost := _number(cost)) is False:  # a plain finite float is the common case
            bad += 1
            cost = None
        if cost_amount is not None:
            if type(currency) is str and currency.upper() not in ("", "USD"):
                bad += 1  # other currencies don't sum with USD
            elif (v := _number(cost_amount)) is False:
                bad += 1
            elif cost is None:
                cost = v
        if oi_cost is not None:
            if (v := _number(oi_cost)) is False:
                bad += 1
            elif cost is None:
                cost = v
        if cost is not None:
            cost = float(cost)
        relevance = None
        if top_score is not None:
            relevance = _measure(top_score)
            bad += relevance is None
        if cache_hit is not None and type(cache_hit) is not bool:
            if type(cache_hit) is str and cache_hit.lower() in ("true", "false"):
                cache_hit = cache_hit.lower() == "true"
            else:
                bad += 1
                cache_hit = None
        if ttfc is not None:
            ttfc = _measure(ttfc)
            bad += ttfc is None
        if finish is not None:
            if type(finish) is not str:
                finish = (_str(finish[0]) if finish else None) if type(finish) is list else _str(finish)
            if finish and len(finish) > MAX_KEY_CHARS:
                finish = finish[:MAX_KEY_CHARS]
        if error_type is not None and type(error_type) is not str:
            error_type = _str(error_type)
        if relevance is None and kind == RETRIEVAL and (docs := s[-1]) is not None:
            for x in dict(docs).values():
                v = _number(x)
                if v is not False and (relevance is None or v > relevance):
                    relevance = float(v)

        enriched = False
        if cost is None and self._pricing is not None and (in_tok is not None or out_tok is not None):
            cost = self._price(provider, resp_model or model, in_tok, out_tok, cached, cache_write, s[_TIER], start)
            enriched = cost is not None

        if error_type:
            error = True
            if len(error_type) > MAX_KEY_CHARS:
                error_type = error_type[:MAX_KEY_CHARS]
        elif status == STATUS_CODE_ERROR:
            error = True
            error_type = ERROR_TYPE_OTHER
        else:
            error = False

        tenant_value = resource_tenant
        for i in self._tenant_slots:
            if s[i] is not None:
                tenant_value = s[i]
                break
        tenant = None
        if tenant_value is not None:
            raw = _str(tenant_value)
            if raw:
                tenant = self._hash_tenant(raw)

        response_id = s[_RID]  # joins evaluation results that name the response (gen_ai.response.id)
        if response_id is not None:
            if type(response_id) is not str or not response_id:
                response_id = None
            elif len(response_id) > MAX_KEY_CHARS:
                response_id = response_id[:MAX_KEY_CHARS]
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (765 -> ~150 ns per record)
        rec = _new_record(CallRecord, (
            kind, service, provider, target, start, end, (end - start) / 1e9, in_tok, out_tok, cached, cost,
            enriched, error, error_type, finish, relevance, cache_hit, tenant, ttfc, trace_id, (), span_id,
            error_class(error_type, _http_status(s[_HTTP])) if error else None, response_id, (),
        ))
        return (rec, bad) if bad else rec

    def _price(self, provider: str, model: str, in_tok: int | None, out_tok: int | None,
               cached: int | None, cache_write: int | None, tier: Any, start_ns: int) -> float | None:
        """Cost from the pricing table at the call's start time and service tier. The quote of
        each (provider, model, tier) is cached here, so a call is a dict lookup and a few
        multiplications (``Quote.cost_usd``); an unpriced call is counted per provider and model."""
        if type(tier) is not str or tier == "auto" or len(tier) > MAX_KEY_CHARS:
            tier = None  # standard prices, as the library gives for a tier it has no price for
        if len(model) > MAX_KEY_CHARS:  # no real model name is that long: keep the cache small in bytes
            model = model[:MAX_KEY_CHARS]
        key = (provider, model, tier)
        try:
            quote = self._prices[key]
        except KeyError:
            quote = self._pricing.quote(provider, model, tier) if self._pricing is not None and model else None
            if len(self._prices) >= MAX_TENANT_CACHE:
                self._prices.clear()
            self._prices[key] = quote
        if quote is not None:
            cost = quote.cost_usd(start_ns, in_tok or 0, out_tok or 0, cached or 0, cache_write or 0)
            if cost is not None:
                return cost
        self.unpriced.count(provider, model)
        return None

    def _hash_tenant(self, raw: str) -> str:
        h = self._tenant_cache.get(raw)
        if h is None:
            h = hash_id(raw, self._hash_key)
            if len(self._tenant_cache) >= MAX_TENANT_CACHE:
                self._tenant_cache.clear()
            self._tenant_cache[raw] = h
        return h


def normalise_records(normaliser: Normaliser, requests: Sequence[Any]) -> list[CallRecord]:
    """All records of ``requests`` (convenience for tools and tests)."""
    out: list[CallRecord] = []
    for r in requests:
        out.extend(normaliser.normalise(r).records)
    return out
