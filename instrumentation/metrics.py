"""The metric instruments every Gensight instrumentor records into.

Public interface::

    from gensight.instrumentation.metrics import Instruments
    inst = Instruments(meter_provider=None)   # None = the global MeterProvider
    inst.token_usage            # Histogram  gen_ai.client.token.usage            {token}
    inst.operation_duration     # Histogram  gen_ai.client.operation.duration     s
    inst.time_to_first_chunk    # Histogram  gen_ai.client.operation.time_to_first_chunk  s
    inst.cost                   # Counter    gen_ai.client.cost                   USD

Bucket boundaries are the semconv's, given as ``explicit_bucket_boundaries_advisory`` so a user
View still wins. Normally you do not record into these directly: the invocation lifecycle
(:mod:`gensight.instrumentation.lifecycle`) does it, with low-cardinality attributes only
(operation, provider, request/response model, server address/port, error type, and the tool
name / data source id for tool and retrieval operations) — never ids, users or content.
"""

from __future__ import annotations

from opentelemetry.metrics import Counter, Histogram, MeterProvider, get_meter
from opentelemetry.semconv._incubating.metrics.gen_ai_metrics import (
    GEN_AI_CLIENT_OPERATION_DURATION,
    GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    GEN_AI_CLIENT_TOKEN_USAGE,
)

from gensight._version import __version__

GEN_AI_CLIENT_COST = "gen_ai.client.cost"
"""Counter, USD: cost of GenAI calls (Gensight's own metric; the semconv has none)."""

TOKEN_BUCKETS: tuple[int, ...] = tuple(4**i for i in range(14))  # 1, 4, 16 ... 67108864
DURATION_BUCKETS_S: tuple[float, ...] = tuple(round(0.01 * 2**i, 2) for i in range(14))  # 0.01 ... 81.92

INSTRUMENTATION_SCOPE = "gensight.instrumentation"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"


class Instruments:
    """The four instruments, created once per instrumentor from one Meter."""

    __slots__ = ("token_usage", "operation_duration", "time_to_first_chunk", "cost")

    def __init__(self, meter_provider: MeterProvider | None = None, scope: str = INSTRUMENTATION_SCOPE):
        meter = get_meter(scope, __version__, meter_provider, schema_url=SCHEMA_URL)
        self.token_usage: Histogram = meter.create_histogram(
            name=GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used per GenAI call",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )
        self.operation_duration: Histogram = meter.create_histogram(
            name=GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="Duration of GenAI operations (model calls, tool calls, retrievals)",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        self.time_to_first_chunk: Histogram = meter.create_histogram(
            name=GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from request start to the first streamed chunk",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        self.cost: Counter = meter.create_counter(
            name=GEN_AI_CLIENT_COST,
            unit="USD",
            description="Cost of GenAI calls in US dollars, from the Gensight pricing table",
        )
