"""A small OpenAI app with no Gensight code in it: run it under ``opentelemetry-instrument``.

    opentelemetry-instrument --traces_exporter console --metrics_exporter none --logs_exporter none \
        python examples/openai_app.py

Every call below becomes a GenAI span with tokens and ``gen_ai.usage.cost``. With no
``OPENAI_BASE_URL`` set it starts Gensight's local fake provider (deterministic answers, no key,
no network); set ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` to talk to a real endpoint instead.
"""

from __future__ import annotations

import os

import openai

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def run(client: openai.OpenAI, model: str) -> None:
    question = [{"role": "user", "content": "In one sentence: why do SREs care about token cost?"}]
    reply = client.chat.completions.create(model=model, messages=question, temperature=0.2)
    print(f"chat:       {reply.usage.prompt_tokens} in / {reply.usage.completion_tokens} out tokens")

    stream = client.chat.completions.create(
        model=model, messages=question, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    print(f"stream:     {len(chunks)} chunks, usage from the final chunk: {chunks[-1].usage.completion_tokens} out")

    weather = [{"role": "user", "content": "What's the weather in Paris?"}]
    tool_reply = client.chat.completions.create(model=model, messages=weather, tools=TOOLS)
    calls = tool_reply.choices[0].message.tool_calls or []
    print(f"tool call:  {[c.function.name for c in calls]}")

    response = client.responses.create(model=model, input="Name one SLO for an LLM app.")
    print(f"responses:  {response.usage.input_tokens} in / {response.usage.output_tokens} out tokens")

    emb = client.embeddings.create(model="text-embedding-3-small", input=["latency budget", "error budget"])
    print(f"embeddings: {len(emb.data)} vectors of {len(emb.data[0].embedding)} dims")


def main() -> int:
    fake = None
    base_url = os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        from gensight.fakes import FakeProvider

        fake = FakeProvider().start()
        base_url = fake.base_url
    try:
        with openai.OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "fake-key"), max_retries=0) as client:
            run(client, os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    finally:
        if fake is not None:
            fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
