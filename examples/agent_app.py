"""A RAG + tool-using support agent: run it under ``opentelemetry-instrument``.

    opentelemetry-instrument --traces_exporter console --metrics_exporter none --logs_exporter none \
        python examples/agent_app.py

What becomes telemetry, with no instrumentor code here (the entry points load them):

* ``gensight_chromadb``: each knowledge-base lookup is a ``retrieval support-kb`` span with
  document count and top/mean similarity; the query's embedding (``gensight_openai``) is an
  ``embeddings`` span *inside* it.
* ``gensight_anthropic``: each model turn is one ``chat`` span with tokens, cache tokens and cost
  (the SDK's own span is folded into ours); turns after a tool result are streamed with
  ``messages.stream``.
* ``gensight_langchain``: the LangChain ``get_weather`` tool is an ``execute_tool`` span.
* The public API (``gensight.instrumentation``): ``@tool`` on ``lookup_order``, and
  ``track_llm_call(..., cache_hit=True)`` for answers served from the app's own response cache.

With no ``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL`` it starts Gensight's local fake provider
(deterministic, no key, no network). The agent span itself (``invoke_agent support-agent``) is
plain OpenTelemetry, so every span of one question shares one trace.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import anthropic
import chromadb
import openai
from chromadb.api.types import EmbeddingFunction
from chromadb.config import Settings
from langchain_core.tools import tool as langchain_tool
from opentelemetry import trace

from gensight.instrumentation import tool, track_llm_call

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-haiku-4-5")
EMBEDDING_MODEL = "text-embedding-3-small"
KNOWLEDGE_BASE = {
    "refunds": "Refunds are issued within 5 business days after the returned item arrives.",
    "shipping": "Standard shipping takes 2-4 days; express shipping arrives the next day.",
    "warranty": "Electronics carry a two-year warranty covering manufacturing defects.",
    "weather": "Deliveries may be delayed by storms; check the weather at the destination.",
}
SYSTEM = [{"type": "text", "text": "You are a support agent for an online shop. " + "Be precise. " * 900,
           "cache_control": {"type": "ephemeral"}}]  # a long, cached system prompt
TOOLS = [
    {"name": "lookup_order", "description": "Status of an order",
     "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}},
    {"name": "get_weather", "description": "Current weather for a city",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
]


@tool("lookup_order", tool_type="datastore")
def lookup_order(order_id: str) -> dict[str, str]:
    """Status of an order."""
    return {"order_id": order_id, "status": "shipped"}


@langchain_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Light rain in {city}"


class OpenAIEmbeddings(EmbeddingFunction):  # type: ignore[misc]
    """Chroma embedding function that calls the OpenAI embeddings API."""

    def __init__(self, client: openai.OpenAI) -> None:
        self.client = client

    def __call__(self, input: list[str]) -> list[list[float]]:  # noqa: A002 - chromadb's name
        response = self.client.embeddings.create(model=EMBEDDING_MODEL, input=list(input), dimensions=16)
        return [list(d.embedding) for d in response.data]

    @staticmethod
    def name() -> str:
        return "gensight-example-openai"

    def get_config(self) -> dict[str, Any]:
        return {}


class SupportAgent:
    def __init__(self, llm: anthropic.Anthropic, kb: Any) -> None:
        self.llm = llm
        self.kb = kb
        self.cache: dict[str, tuple[str, int, int]] = {}  # the app's own response cache
        self.tracer = trace.get_tracer("examples.agent_app")

    def answer(self, question: str) -> str:
        with self.tracer.start_as_current_span(
            "invoke_agent support-agent",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-agent"},
        ):
            key = hashlib.sha256(question.encode()).hexdigest()
            if key in self.cache:
                text, tokens_in, tokens_out = self.cache[key]
                with track_llm_call("anthropic", MODEL, cache_hit=True, input_tokens=tokens_in,
                                    output_tokens=tokens_out):
                    return text
            hits = self.kb.query(query_texts=[question], n_results=2)
            context = "\n".join(hits["documents"][0])
            messages: list[dict[str, Any]] = [
                {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"}]
            tools = TOOLS if "order" in question else TOOLS[::-1]
            reply = self.llm.messages.create(model=MODEL, max_tokens=300, system=SYSTEM, tools=tools,
                                             messages=messages)
            for _ in range(3):  # bounded agent loop: run the tools, stream the next turn
                if reply.stop_reason != "tool_use":
                    break
                messages.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
                results = [self.run_tool(b) for b in reply.content if b.type == "tool_use"]
                messages.append({"role": "user", "content": results})
                with self.llm.messages.stream(model=MODEL, max_tokens=300, system=SYSTEM, tools=tools,
                                              messages=messages) as stream:
                    reply = stream.get_final_message()
            text = "".join(b.text for b in reply.content if b.type == "text")
            self.cache[key] = (text, reply.usage.input_tokens, reply.usage.output_tokens)
            return text

    def run_tool(self, block: Any) -> dict[str, Any]:
        if block.name == "get_weather":
            message = get_weather.invoke({"name": block.name, "args": block.input, "id": block.id,
                                          "type": "tool_call"})
            content = str(message.content)
        else:
            with tool(block.name, call_id=block.id, tool_type="datastore") as call:  # adds the call id
                result = lookup_order(**block.input)
                call.set_result(result)
            content = str(result)
        return {"type": "tool_result", "tool_use_id": block.id, "content": content}


def main() -> int:
    fake = None
    anthropic_url = os.environ.get("ANTHROPIC_BASE_URL")
    openai_url = os.environ.get("OPENAI_BASE_URL")
    if not anthropic_url or not openai_url:
        from gensight.fakes import FakeProvider

        fake = FakeProvider().start()
        anthropic_url, openai_url = fake.url, fake.base_url
    try:
        with openai.OpenAI(base_url=openai_url, api_key=os.environ.get("OPENAI_API_KEY", "fake"),
                           max_retries=0) as embedder, \
                anthropic.Anthropic(base_url=anthropic_url, api_key=os.environ.get("ANTHROPIC_API_KEY", "fake"),
                                    max_retries=1) as llm:
            store = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
            kb = store.get_or_create_collection("support-kb", embedding_function=OpenAIEmbeddings(embedder),
                                                metadata={"hnsw:space": "cosine"})
            kb.upsert(ids=list(KNOWLEDGE_BASE), documents=list(KNOWLEDGE_BASE.values()))
            agent = SupportAgent(llm, kb)
            for question in ("Where is my order 8812?", "Will the weather delay my parcel to Oslo?",
                             "Where is my order 8812?"):
                print(f"Q: {question}\nA: {agent.answer(question)[:80]}...")
    finally:
        if fake is not None:
            fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
