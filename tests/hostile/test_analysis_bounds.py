"""Hostile values that decode fine but used to break analysis: each has a bound now.

* token counts / costs near the float maximum summed past it, and the SLI analyser's ``close``
  raised ``OverflowError`` on every window from then on (all series lost their metrics);
* random ``error.type`` values grew a series' cumulative counters and exported points forever;
* a 10 MB model name became an exported metric attribute.
"""

from __future__ import annotations

import random

from hostile_corpus import _Ids, genai_attrs, make_span

from gensight.processor.normalise import MAX_KEY_CHARS, NormaliseConfig, Normaliser
from gensight.processor.points import Window
from gensight.processor.records import CallRecord
from gensight.processor.sli import CALLS, MAX_ERROR_TYPES_PER_SERIES, TOKENS, SLIAnalyser

T0 = 1_700_000_040_000_000_000
IDS = _Ids(random.Random(1))


def _normalise(*spans):
    return Normaliser(NormaliseConfig(), None, b"k").normalise_spans(list(spans), "svc")


def test_token_counts_beyond_2_pow_53_are_dropped_as_bad_values():
    res = _normalise(make_span(IDS, T0, genai_attrs(input_tokens=1e308, output_tokens=2.0**60)))
    (rec,) = res.records
    assert (rec.input_tokens, rec.output_tokens) == (None, None)
    assert res.values_dropped == 2


def test_costs_beyond_2_pow_53_are_dropped_as_bad_values():
    res = _normalise(make_span(IDS, T0, genai_attrs(gen_ai__usage__cost=1e308)))
    assert res.records[0].cost_usd is None


def test_sli_keeps_exporting_after_spans_with_absurd_numbers():
    huge = genai_attrs(input_tokens=1e308, output_tokens=1e308, gen_ai__usage__cost=1e308)
    res = _normalise(make_span(IDS, T0, huge), make_span(IDS, T0, huge))
    sli = SLIAnalyser()
    w1, w2 = Window(T0 - 60_000_000_000, T0), Window(T0, T0 + 60_000_000_000)
    sli.observe(w1, res.records)
    sli.close(w1)
    sli.observe(w2, _normalise(make_span(IDS, T0 + 1_000_000_000)).records)
    points = sli.close(w2)
    tokens = {dict(p.attributes)["gen_ai.token.type"]: p.value for p in points if p.name == TOKENS}
    assert tokens == {"input": 100.0, "output": 20.0}


def test_series_key_strings_are_clipped():
    res = _normalise(make_span(IDS, T0, genai_attrs(model="m" * 1_000_000, error__type="E" * 100_000)))
    (rec,) = res.records
    assert len(rec.target) == MAX_KEY_CHARS and len(rec.error_type or "") == MAX_KEY_CHARS


def test_distinct_error_types_per_series_are_capped():
    sli = SLIAnalyser()
    window = Window(0, 60)
    records = [CallRecord("chat", "svc", "openai", "m", 1, 2, 1e-9, error=True, error_type=f"E{i}") for i in range(3000)]
    sli.observe(window, records)
    error_points = [p for p in sli.close(window) if p.name == CALLS and dict(p.attributes)["outcome"] == "error"]
    assert len(error_points) <= MAX_ERROR_TYPES_PER_SERIES + 1
    assert sum(p.value for p in error_points) == 3000
