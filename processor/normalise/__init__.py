"""Normalise: spans of any GenAI dialect become ``CallRecord`` s.

``Normaliser`` reads each span into a slot row (``slot_table``: the optional C scanner ``_spanscan``
over the request bytes, or the protobuf-API walk over the parsed message) and interprets the rows;
``dialects`` lists every attribute name it reads, ``values`` decodes attribute values the same way
for both readers."""

from __future__ import annotations

from gensight._lazy import lazy_exports

__all__ = ["NormaliseConfig", "NormaliseResult", "Normaliser", "normalise_records"]

_EXPORTS = {
    "NormaliseConfig": "gensight.processor.normalise.normaliser",
    "NormaliseResult": "gensight.processor.normalise.normaliser",
    "Normaliser": "gensight.processor.normalise.normaliser",
    "normalise_records": "gensight.processor.normalise.normaliser",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
