"""Seeded A/B streams of GenAI calls for the experiment tests (offline compare and live).

Both arms draw from the same distributions (an A/A stream) unless an effect is given: latency
lognormal (median 0.8 s, heavy right tail), cost and tokens proportional, errors Bernoulli(5 %),
time to first chunk on every call. ``arm_values`` gives plain arrays (fast, for many seeds);
``ab_requests`` gives OTLP requests whose spans carry ``feature_flag.result.variant``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_wire import key_value

T0_NS = 1_700_000_040_000_000_000
BASE_ERROR_RATE = 0.05
FLAG = "feature_flag.result.variant"


@dataclass(frozen=True)
class Effect:
    latency: float = 1.0
    cost: float = 1.0
    errors: float = 1.0


@dataclass
class Calls:
    latency_s: np.ndarray
    ttfc_s: np.ndarray
    cost_usd: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    error: np.ndarray


def draw(rng: np.random.Generator, n: int, effect: Effect = Effect()) -> Calls:
    latency = rng.lognormal(mean=np.log(0.8), sigma=0.6, size=n) * effect.latency
    inp = rng.integers(200, 1200, size=n).astype(float)
    out = rng.integers(20, 400, size=n).astype(float)
    cost = (inp * 0.15 + out * 0.6) / 1e6 * effect.cost
    error = rng.random(n) < BASE_ERROR_RATE * effect.errors
    return Calls(latency, latency * rng.uniform(0.1, 0.3, size=n), cost, inp, out, error)


def span_specs(calls: Calls, variant: str, start_ns: int, spacing_ns: int) -> list[dict[str, Any]]:
    specs = []
    for i in range(len(calls.latency_s)):
        start = start_ns + i * spacing_ns
        spec: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": int(calls.input_tokens[i]),
            "gen_ai.usage.output_tokens": int(calls.output_tokens[i]),
            "gen_ai.usage.cost": float(calls.cost_usd[i]),
            "gen_ai.response.time_to_first_chunk": float(calls.ttfc_s[i]),
            "feature_flag.key": "exp", FLAG: variant,
            "_start": start, "_end": start + int(calls.latency_s[i] * 1e9),
        }
        if calls.error[i]:
            spec["error.type"] = "Timeout"
            spec["_status"] = 2
        specs.append(spec)
    return specs


def build_request(specs: list[dict[str, Any]], service: str = "chat-app",
                  resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(key_value(k, v) for k, v in {"service.name": service, **(resource or {})}.items())
    ss = rs.scope_spans.add()
    for spec in specs:
        s = ss.spans.add()
        s.trace_id = os.urandom(16)
        s.span_id = os.urandom(8)
        s.name = "chat"
        s.kind = 3
        s.start_time_unix_nano = spec["_start"]
        s.end_time_unix_nano = spec["_end"]
        s.status.code = spec.get("_status", 0)
        s.attributes.extend(key_value(k, v) for k, v in spec.items() if not k.startswith("_"))
        for name, score, label in spec.get("_evaluations", ()):
            ev = s.events.add()
            ev.name = "gen_ai.evaluation.result"
            ev.time_unix_nano = spec["_end"]
            ev.attributes.extend([key_value("gen_ai.evaluation.name", name),
                                  key_value("gen_ai.evaluation.score.value", score),
                                  key_value("gen_ai.evaluation.score.label", label)])
    return req


def ab_requests(seed: int, n_per_arm: int, effect: Effect = Effect(), *, per_request: int = 100,
                spacing_ns: int = 100_000_000) -> list[ExportTraceServiceRequest]:
    """Control and treatment calls interleaved in event time, ``per_request`` spans a request."""
    rng = np.random.default_rng(seed)
    control = span_specs(draw(rng, n_per_arm), "control", T0_NS, 2 * spacing_ns)
    treatment = span_specs(draw(rng, n_per_arm, effect), "treatment", T0_NS + spacing_ns, 2 * spacing_ns)
    merged = sorted(control + treatment, key=lambda s: s["_end"])
    return [build_request(merged[i:i + per_request]) for i in range(0, len(merged), per_request)]
