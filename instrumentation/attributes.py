"""Every span/metric attribute name Gensight emits, in one place.

Code elsewhere imports names from here, never writes them as string literals, so a semconv
rename is a one-line change and ``docs/attributes.md`` can be checked against this module.

Two groups:

* GenAI / server / error semantic-convention names, re-exported from
  ``opentelemetry.semconv`` (the ``_incubating`` module is where the GenAI names live).
* Gensight's own names, for things the semconv does not define (yet). Each of them is listed in
  ``docs/attributes.md``; :data:`GENSIGHT_ATTRIBUTES` lists them for that check.

Operation names and provider names are plain strings (``OP_CHAT`` ... / ``PROVIDER_OPENAI`` ...)
taken from the semconv enums, so callers can pass them without touching ``Enum.value``.
"""

# ruff: noqa: F401  (this module re-exports the semconv names)
from __future__ import annotations

from opentelemetry.semconv._incubating.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_CONVERSATION_ID,
    GEN_AI_DATA_SOURCE_ID,
    GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
    GEN_AI_EVALUATION_EXPLANATION,
    GEN_AI_EVALUATION_NAME,
    GEN_AI_EVALUATION_SCORE_LABEL,
    GEN_AI_EVALUATION_SCORE_VALUE,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPENAI_REQUEST_SERVICE_TIER,
    GEN_AI_OPENAI_RESPONSE_SERVICE_TIER,
    GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_OUTPUT_TYPE,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_CHOICE_COUNT,
    GEN_AI_REQUEST_ENCODING_FORMATS,
    GEN_AI_REQUEST_FREQUENCY_PENALTY,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_PRESENCE_PENALTY,
    GEN_AI_REQUEST_SEED,
    GEN_AI_REQUEST_STOP_SEQUENCES,
    GEN_AI_REQUEST_STREAM,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_REQUEST_TOP_K,
    GEN_AI_REQUEST_TOP_P,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_ID,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_RETRIEVAL_DOCUMENTS,
    GEN_AI_RETRIEVAL_QUERY_TEXT,
    GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOKEN_TYPE,
    GEN_AI_TOOL_CALL_ARGUMENTS,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_CALL_RESULT,
    GEN_AI_TOOL_DEFINITIONS,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    GenAiOperationNameValues,
    GenAiProviderNameValues,
    GenAiTokenTypeValues,
)
from opentelemetry.semconv._incubating.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT

# -- Gensight's own attribute names (documented in docs/attributes.md) ----------------------------
GEN_AI_USAGE_COST = "gen_ai.usage.cost"
"""double, USD: what the call cost, from the pricing table. OpenLIT's name; no semconv name yet."""

GENSIGHT_RESPONSE_TOOL_CALL_NAMES = "gensight.response.tool_call.names"
"""string[]: names of the tools the model asked to call (the semconv only has them inside
``gen_ai.output.messages``, which is content and off by default; names are not content)."""

GENSIGHT_RESPONSE_TOOL_CALL_IDS = "gensight.response.tool_call.ids"
"""string[]: ids of the tool calls the model requested, in step with the names (same length;
``""`` for a name or id the provider did not send)."""

GENSIGHT_RETRIEVAL_DOCUMENT_COUNT = "gensight.retrieval.document_count"
"""int: documents a retrieval returned."""

GENSIGHT_RETRIEVAL_TOP_SCORE = "gensight.retrieval.top_score"
"""double: best relevance score among the returned documents."""

GENSIGHT_RETRIEVAL_MEAN_SCORE = "gensight.retrieval.mean_score"
"""double: mean relevance score of the returned documents."""

GENSIGHT_CACHE_HIT = "gensight.cache.hit"
"""boolean: the answer came from an application-side cache (no provider call)."""

GENSIGHT_STREAM_ENDED_BY = "gensight.stream.ended_by"
"""string: how a streamed call's span ended when it was not read to the end:
``close`` (closed early by the app) or ``gc`` (dropped unfinished)."""

GENSIGHT_ATTRIBUTES: tuple[str, ...] = (
    GEN_AI_USAGE_COST,
    GENSIGHT_RESPONSE_TOOL_CALL_NAMES,
    GENSIGHT_RESPONSE_TOOL_CALL_IDS,
    GENSIGHT_RETRIEVAL_DOCUMENT_COUNT,
    GENSIGHT_RETRIEVAL_TOP_SCORE,
    GENSIGHT_RETRIEVAL_MEAN_SCORE,
    GENSIGHT_CACHE_HIT,
    GENSIGHT_STREAM_ENDED_BY,
)

# -- values ---------------------------------------------------------------------------------------
OP_CHAT: str = GenAiOperationNameValues.CHAT.value
OP_TEXT_COMPLETION: str = GenAiOperationNameValues.TEXT_COMPLETION.value
OP_EMBEDDINGS: str = GenAiOperationNameValues.EMBEDDINGS.value
OP_RETRIEVAL: str = GenAiOperationNameValues.RETRIEVAL.value
OP_EXECUTE_TOOL: str = GenAiOperationNameValues.EXECUTE_TOOL.value
OP_INVOKE_AGENT: str = GenAiOperationNameValues.INVOKE_AGENT.value
OP_GENERATE_CONTENT: str = GenAiOperationNameValues.GENERATE_CONTENT.value

PROVIDER_OPENAI: str = GenAiProviderNameValues.OPENAI.value
PROVIDER_ANTHROPIC: str = GenAiProviderNameValues.ANTHROPIC.value
PROVIDER_AZURE_OPENAI: str = GenAiProviderNameValues.AZURE_AI_OPENAI.value

TOKEN_TYPE_INPUT: str = GenAiTokenTypeValues.INPUT.value
TOKEN_TYPE_OUTPUT: str = GenAiTokenTypeValues.OUTPUT.value

ERROR_TYPE_OTHER = "_OTHER"
"""``error.type`` when nothing better is known (semconv fallback)."""

EVENT_EVALUATION_RESULT = "gen_ai.evaluation.result"
"""Event name of one evaluation result (GenAI semconv), a log record or (older) a span event."""

FEEDBACK_EVALUATION_NAME = "user_feedback"
"""``gen_ai.evaluation.name`` of a user's feedback (``record_feedback``)."""

__all__ = [name for name in dir() if name.isupper()]
