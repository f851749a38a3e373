"""Pipeline: bounded queue → series registry → event-time windows → analysers.

``Pipeline`` owns the worker that drains the ``BoundedQueue``, caps series cardinality
(``SeriesRegistry``), closes windows on the watermark (``WindowClock``) and hands each closed
window to the analysers, then the metric builder, then the sinks."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BoundedQueue", "Pipeline", "PipelineConfig", "PipelineContext", "QueueStats", "RecordBatch", "SeriesConfig", "SeriesGroup", "SeriesRegistry", "WindowClock", "series_groups"]

_EXPORTS = {
    "Pipeline": "gensight.processor.pipeline.pipeline",
    "PipelineContext": "gensight.processor.pipeline.pipeline",
    "BoundedQueue": "gensight.processor.pipeline.queue",
    "QueueStats": "gensight.processor.pipeline.queue",
    "RecordBatch": "gensight.processor.pipeline.series",
    "SeriesConfig": "gensight.processor.pipeline.series",
    "SeriesGroup": "gensight.processor.pipeline.series",
    "SeriesRegistry": "gensight.processor.pipeline.series",
    "series_groups": "gensight.processor.pipeline.series",
    "WindowClock": "gensight.processor.pipeline.windows",
    "PipelineConfig": "gensight.processor.pipeline.windows",
}


def __getattr__(name: str) -> Any:
    """Import on first use (PEP 562): a stage's package stays cheap to import and free of cycles."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
