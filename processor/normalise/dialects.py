"""Attribute names and value tables of every GenAI dialect the normaliser reads.

Why one module: analysers must never know which instrumentation wrote a span, so every name
of every dialect lives here and nowhere else.

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
"""

from __future__ import annotations

from gensight.processor.records import (
    CHAT,
    EMBEDDINGS,
    EXECUTE_TOOL,
    INVOKE_AGENT,
    RETRIEVAL,
    TEXT_COMPLETION,
)

STATUS_CODE_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
UNKNOWN_SERVICE = "unknown_service"
ERROR_TYPE_OTHER = "_OTHER"  # GenAI semconv fallback when the error class is unknown
DEFAULT_TENANT_ATTRIBUTES = ("enduser.id", "user.id")
MAX_TENANT_CACHE = 10_000
# Series-key strings (service, provider, model/tool/data source, error type, finish reason) are
# clipped to this many characters: they become exported metric attributes, and one span with a
# 10 MB model name must not make every metrics export too large for the backend to accept.
MAX_KEY_CHARS = 256
# Token counts, costs and durations above 2**53 are not exactly representable as floats, and a
# few of them sum past the float range: one analyser close then raised OverflowError on every
# window from then on. They are treated as bad values (the span is kept, the value dropped).
MAX_NUMBER = float(2**53)
# Span times past the int64 nanosecond range (year 2262) cannot be exported (OTLP consumers and
# Prometheus use signed nanoseconds; a window end there does not even fit the fixed64 field).
MAX_TIME_NS = 2**63 - 1


def clip_key(value: str) -> str:
    return value if len(value) <= MAX_KEY_CHARS else value[:MAX_KEY_CHARS]


# -- attribute names, by dialect, in the priority order they are read --------------------------
OPERATION = "gen_ai.operation.name"
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "llm.vendor")
REQUEST_MODEL_KEYS = ("gen_ai.request.model", "llm.request.model")  # llm.*: OpenLLMetry before gen_ai.*
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"  # joins evaluation results to their call
OI_MODEL = "llm.model_name"
INPUT_TOKEN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens",
                    "llm.token_count.prompt")
OUTPUT_TOKEN_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                     "llm.usage.completion_tokens", "llm.token_count.completion")
CACHE_READ_KEYS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                   "llm.token_count.prompt_details.cache_read")
CACHE_WRITE_KEYS = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
                    "llm.token_count.prompt_details.cache_write")
COST = "gen_ai.usage.cost"  # Gensight, OpenLIT (USD)
COST_AMOUNT = "gen_ai.usage.cost.amount"  # semantic-conventions-genai proposal #443
COST_CURRENCY = "gen_ai.usage.cost.currency"
OI_COST = "llm.cost.total"  # OpenInference (USD)
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name")
DATA_SOURCE = "gen_ai.data_source.id"
OI_KIND = "openinference.span.kind"
TL_KIND = "traceloop.span.kind"
TL_ENTITY = "traceloop.entity.name"
LLM_REQUEST_TYPE = "llm.request.type"
TOP_SCORE = "gensight.retrieval.top_score"
CACHE_HIT = "gensight.cache.hit"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TTFC = "gen_ai.response.time_to_first_chunk"
ERROR_TYPE = "error.type"
# the HTTP status of a failed call: classifies an uninformative error.type (``_OTHER``, ``APIError``)
HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")  # current, then pre-1.21 semconv
SERVICE_NAME = "service.name"

# A span carrying any of these keys is a GenAI span; everything else is skipped unread.
MARKER_KEYS = frozenset((
    OPERATION, *PROVIDER_KEYS, *REQUEST_MODEL_KEYS, RESPONSE_MODEL, OI_MODEL, *INPUT_TOKEN_KEYS,
    *OUTPUT_TOKEN_KEYS, *CACHE_READ_KEYS, COST, COST_AMOUNT, OI_COST, *TOOL_NAME_KEYS, DATA_SOURCE,
    OI_KIND, TL_KIND, LLM_REQUEST_TYPE, TOP_SCORE, CACHE_HIT, TTFC,
))
OI_DOC_PREFIX = "retrieval.documents."
OI_DOC_SCORE_SUFFIX = ".document.score"

# operation names (semconv + the synonyms other dialects use) -> kind
OPERATION_KINDS = {
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
OPENINFERENCE_KINDS = {
    "LLM": CHAT,
    "EMBEDDING": EMBEDDINGS,
    "TOOL": EXECUTE_TOOL,
    "RETRIEVER": RETRIEVAL,
    "AGENT": INVOKE_AGENT,
}
TRACELOOP_KINDS = {"tool": EXECUTE_TOOL, "agent": INVOKE_AGENT}
LLM_REQUEST_TYPES = {"chat": CHAT, "completion": TEXT_COMPLETION, "embedding": EMBEDDINGS}

# provider spellings seen in the wild -> GenAI semconv provider names
PROVIDER_ALIASES = {
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
