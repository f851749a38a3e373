"""``NormaliseConfig.extra_attributes``: configured span/resource values land in ``CallRecord.extra``."""

from __future__ import annotations

import pytest

from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser

KEYS = ("feature_flag.result.variant", "service.version", "gen_ai.request.model", "absent.key")


@pytest.fixture(params=[True, False], ids=["c-scanner", "protobuf-api"])
def normaliser(request):
    return Normaliser(NormaliseConfig(tenant_attributes=(), extra_attributes=KEYS), None, b"k",
                      accelerate=request.param)


def test_span_value_then_resource_value_then_none_in_config_order(normaliser, otlp):
    req = otlp.request([otlp.chat(**{"feature_flag.result.variant": "treatment"}), otlp.chat()],
                       resource={"service.version": "1.4", "feature_flag.result.variant": "control"})
    records = normaliser.normalise(req).records
    assert [r.extra for r in records] == [("treatment", "1.4", "gpt-4o-mini", None),
                                          ("control", "1.4", "gpt-4o-mini", None)]


def test_non_string_values_become_text(normaliser, otlp):
    req = otlp.request([otlp.chat(**{"feature_flag.result.variant": 2})])
    assert normaliser.normalise(req).records[0].extra[0] == "2"


def test_rejected_spans_are_still_counted(normaliser, otlp):
    bad = otlp.chat(_start=otlp.T0_NS + 10, _end=otlp.T0_NS)
    result = normaliser.normalise(otlp.request([bad, otlp.chat()]))
    assert result.rejected == 1 and len(result.records) == 1


def test_without_extra_attributes_extra_stays_empty(otlp):
    plain = Normaliser(NormaliseConfig(), None, b"k")
    req = otlp.request([otlp.chat(**{"feature_flag.result.variant": "treatment"})])
    assert plain.normalise(req).records[0].extra == ()
