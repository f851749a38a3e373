"""Pipeline: bounded queue → series registry → event-time windows → analysers.

``Pipeline`` owns the worker that drains the ``BoundedQueue``, caps series cardinality
(``SeriesRegistry``), closes windows on the watermark (``WindowClock``) and hands each closed
window to the analysers, then the metric builder, then the sinks."""

from __future__ import annotations

from gensight._lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
