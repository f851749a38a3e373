"""A long-running LLM app for the compose stack: plain `openai` SDK code, no Gensight code.

Run it under `opentelemetry-instrument` and every call becomes a GenAI span (tokens, cost):

    OTEL_SERVICE_NAME=chat-assistant OPENAI_BASE_URL=http://fake-provider:8000/v1 OPENAI_API_KEY=x \
        opentelemetry-instrument python deploy/demo/workload.py --rate-per-s 2

Why not `examples/openai_app.py`: that example makes five calls and exits; dashboards, SLO burn
rates, drift and anomaly baselines need a steady stream for many minutes. Each "conversation"
here is a short agent-like flow: embed the question (retrieval step), ask a chat model with a
tool available, and when the model asks for the tool, answer with its result and call again;
one conversation in four streams its answer. Provider errors (429/500 from the fake provider's
error rate or incident) are counted and the loop goes on, as a real app's would.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from typing import Any

import openai

TOOLS = [{
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Status of a customer order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
}]
QUESTIONS = [
    "Where is my order 4411?",
    "Summarise our refund policy in two sentences.",
    "Which plan includes priority support?",
    "Draft a polite reply to a customer whose parcel is late.",
    "What changed in the last release notes?",
    "Explain the difference between the basic and pro tiers.",
]


def conversation(client: openai.OpenAI, rng: random.Random, models: list[str], embedding_model: str) -> int:
    """One user request; returns the number of API calls made."""
    question = rng.choice(QUESTIONS) + " " + " ".join(rng.choices(["please", "thanks", "asap", "briefly"], k=rng.randint(0, 3)))
    model = rng.choice(models)
    client.embeddings.create(model=embedding_model, input=[question])
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a support assistant."},
                                      {"role": "user", "content": question}]
    if rng.random() < 0.25:
        stream = client.chat.completions.create(model=model, messages=messages, stream=True,
                                                stream_options={"include_usage": True})
        for _ in stream:
            pass
        return 2
    reply = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    calls = reply.choices[0].message.tool_calls or []
    if not calls:
        return 2
    messages.append(reply.choices[0].message.model_dump(exclude_none=True))
    for call in calls:
        messages.append({"role": "tool", "tool_call_id": call.id,
                         "content": json.dumps({"status": rng.choice(["shipped", "processing", "delivered"])})})
    client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    return 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate-per-s", type=float, default=1.0, help="conversations per second (default 1)")
    parser.add_argument("--models", default=os.environ.get("DEMO_MODELS", "gpt-4o-mini,gpt-4o"),
                        help="comma-separated chat models (default gpt-4o-mini,gpt-4o)")
    parser.add_argument("--embedding-model", default="text-embedding-3-small")
    parser.add_argument("--iterations", type=int, default=0, help="stop after N conversations (0 = run until stopped)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.rate_per_s <= 0:
        parser.error("--rate-per-s must be > 0")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        parser.error("--models must name at least one model")
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rng = random.Random(args.seed)
    ok = failed = calls = 0
    # The SDK's own retries would hide the provider's errors from the spans: one attempt per call.
    with openai.OpenAI(max_retries=0, timeout=60.0) as client:
        while not stop and (args.iterations == 0 or ok + failed < args.iterations):
            try:
                calls += conversation(client, rng, models, args.embedding_model)
                ok += 1
            except openai.APIError as exc:
                failed += 1
                print(f"workload: {type(exc).__name__}: {exc}"[:200], file=sys.stderr)
            if (ok + failed) % 100 == 0:
                print(f"workload: {ok} conversations ok, {failed} failed", file=sys.stderr)
            time.sleep(rng.expovariate(args.rate_per_s))
    print(f"workload: done, {ok} conversations ok, {failed} failed, {calls} calls", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
