"""``variant(flag, value)``: feature-flag attributes on every GenAI, tool and retrieval span inside."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from gensight.instrumentation import manual, retriever, tool, track_llm_call, variant
from gensight.instrumentation.openai import OpenAIInstrumentor
from gensight.instrumentation.variants import FEATURE_FLAG_KEY, FEATURE_FLAG_RESULT_VARIANT

KEY, VARIANT = FEATURE_FLAG_KEY, FEATURE_FLAG_RESULT_VARIANT


@pytest.fixture
def configured(tracer_provider, meter_provider, monkeypatch):
    monkeypatch.setattr(manual, "_default", None)
    return manual.configure(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _flags(exporter) -> dict[str, tuple]:
    return {s.name: (s.attributes.get(KEY), s.attributes.get(VARIANT)) for s in exporter.get_finished_spans()}


@tool("lookup")
def lookup(x: str) -> str:
    return x


@retriever("kb")
def search(q: str):
    return [({"id": "a"}, 0.5)]


def test_tool_retrieval_and_llm_spans_inside_carry_the_flag(configured, span_exporter):
    with variant("summary-model", "small"):
        lookup("a")
        search("q")
        with track_llm_call("openai", "gpt-4o-mini"):
            pass
    assert _flags(span_exporter) == {
        "execute_tool lookup": ("summary-model", "small"),
        "retrieval kb": ("summary-model", "small"),
        "chat gpt-4o-mini": ("summary-model", "small"),
    }


def test_spans_outside_the_block_carry_no_flag(configured, span_exporter):
    with variant("f", "a"):
        pass
    lookup("a")
    assert _flags(span_exporter) == {"execute_tool lookup": (None, None)}


def test_innermost_block_wins_and_outer_is_restored(configured, span_exporter):
    with variant("f", "outer"):
        with variant("g", "inner"):
            lookup("a")
        search("q")
    assert _flags(span_exporter) == {"execute_tool lookup": ("g", "inner"), "retrieval kb": ("f", "outer")}


def test_decorator_tags_a_sync_function(configured, span_exporter):
    @variant("prompt", "v2")
    def answer() -> str:
        return lookup("a")

    assert answer() == "a"
    lookup("b")  # after the call: untagged again
    spans = span_exporter.get_finished_spans()
    assert [(s.attributes.get(KEY), s.attributes.get(VARIANT)) for s in spans] == [("prompt", "v2"), (None, None)]


async def test_decorator_tags_an_async_function(configured, span_exporter):
    @variant("prompt", "v3")
    async def answer() -> str:
        await asyncio.sleep(0)
        return lookup("a")

    await answer()
    assert _flags(span_exporter) == {"execute_tool lookup": ("prompt", "v3")}


async def test_concurrent_asyncio_tasks_keep_their_own_variant(configured, span_exporter):
    async def arm(name: str) -> None:
        async with variant("exp", name):
            for _ in range(5):
                await asyncio.sleep(0)  # interleave the two tasks
                with track_llm_call("openai", f"model-{name}"):
                    await asyncio.sleep(0)

    await asyncio.gather(asyncio.create_task(arm("control")), asyncio.create_task(arm("treatment")))
    spans = span_exporter.get_finished_spans()
    assert len(spans) == 10
    assert all(s.name == f"chat model-{s.attributes[VARIANT]}" for s in spans)


async def test_task_created_inside_the_block_inherits_the_variant(configured, span_exporter):
    async def child() -> None:
        lookup("c")

    with variant("exp", "treatment"):
        task = asyncio.create_task(child())
    await task
    assert _flags(span_exporter) == {"execute_tool lookup": ("exp", "treatment")}


def test_threads_that_copy_the_context_carry_the_variant(configured, span_exporter):
    with variant("exp", "treatment"), ThreadPoolExecutor(2) as pool:
        ctx = contextvars.copy_context()
        pool.submit(ctx.run, lookup, "x").result()
    assert _flags(span_exporter) == {"execute_tool lookup": ("exp", "treatment")}


def test_a_fresh_thread_does_not_inherit_the_variant(configured, span_exporter):
    with variant("exp", "treatment"):
        t = threading.Thread(target=lookup, args=("x",))
        t.start()
        t.join()
    assert _flags(span_exporter) == {"execute_tool lookup": (None, None)}


def test_one_object_used_by_two_threads_at_once(configured, span_exporter):
    shared = variant("exp", "treatment")
    entered = threading.Barrier(2)

    def work() -> None:
        with shared:
            entered.wait(timeout=5)  # both threads inside the same object's block
            lookup("x")
        lookup("after")

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tagged = [s.attributes.get(VARIANT) for s in span_exporter.get_finished_spans()]
    assert sorted(tagged, key=str) == [None, None, "treatment", "treatment"]


def test_empty_flag_or_variant_is_rejected():
    with pytest.raises(ValueError, match="flag"):
        variant("", "a")
    with pytest.raises(ValueError, match="variant"):
        variant("f", "")


def test_openai_sdk_spans_carry_the_variant(tracer_provider, meter_provider, span_exporter, fake):
    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        with openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as client, \
                variant("model-swap", "treatment"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    finally:
        inst.uninstrument()
    (span,) = span_exporter.get_finished_spans()
    assert (span.attributes[KEY], span.attributes[VARIANT]) == ("model-swap", "treatment")
