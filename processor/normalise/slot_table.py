"""Slot rows: which attribute keys fill which slot of a span's row, and the two readers that fill them.

A row is (start_ns, end_ns, status_code, trace_id, span_id, *slots, doc_scores); the slot groups and the
rules that interpret a row are the normaliser's (``normaliser.py``). Why a module of its own: the
readers are the hot path's first half — the optional C scanner over the request bytes
(``_spanscan.c``, built by setup.py when a compiler is present) and the protobuf-API walk, which
must yield identical rows (tests/processor/normalise/test_spanscan.py) — and they know nothing of
dialects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gensight.processor.normalise.dialects import MARKER_KEYS, OI_DOC_PREFIX, OI_DOC_SCORE_SUFFIX
from gensight.processor.normalise.values import UNUSABLE, _value

try:  # the optional C accelerator (setup.py builds it when a compiler is present)
    from gensight.processor.normalise import _spanscan
except ImportError:  # pragma: no cover - depends on the build machine
    _spanscan = None  # type: ignore[assignment]  # built without a C compiler


class SlotTable:
    """Which attribute keys fill which row slot, and the two readers that fill them.

    ``groups``: the normaliser's slot groups (one slot each, keys in priority order); ``row_head``:
    how many fixed fields precede the slots in a row."""

    def __init__(self, groups: Sequence[Sequence[str]], row_head: int, tenant_attributes: Sequence[str],
                 accelerate: bool = True, extra: Sequence[str] = ()):
        keys = {k: (slot, rank) for slot, group in enumerate(groups) for rank, k in enumerate(group)}
        nslots = len(groups)
        tenant_slots = []
        for name in tenant_attributes:  # a tenant key that is also a GenAI key shares its slot
            if name not in keys:
                keys[name] = (nslots, 0)
                nslots += 1
            tenant_slots.append(row_head + keys[name][0])
        extra_slots = []
        for name in extra:  # same sharing rule; a shared key keeps its group's rank order
            if name not in keys:
                keys[name] = (nslots, 0)
                nslots += 1
            extra_slots.append(row_head + keys[name][0])
        self.row_head = row_head
        self.extra_slots = tuple(extra_slots)
        self.keys = keys
        self.nslots = nslots
        self.tenant_slots = tuple(tenant_slots)
        self.tenant_by_slot = frozenset(s - row_head for s in tenant_slots)
        self.c_table = None
        if accelerate and _spanscan is not None:
            self.c_table = _spanscan.make_table(keys, nslots, MARKER_KEYS, OI_DOC_PREFIX, OI_DOC_SCORE_SUFFIX,
                                                UNUSABLE)

    def scan(self, raw: bytes) -> list[tuple[list[tuple[int, Any]], list[tuple], int]] | None:
        """Rows from serialized request bytes in C; None when it is not built or declines."""
        if self.c_table is None:
            return None
        return _spanscan.scan(self.c_table, raw)

    def rows(self, request: Any, attributes: list[Any] | None = None
             ) -> list[tuple[list[tuple[int, Any]], list[tuple], int]]:
        """Rows from a parsed request through the protobuf API (the reference reader). With
        ``attributes``, each row's span attribute list is appended to it too (content checks)."""
        keys, n, head = self.keys, self.nslots, self.row_head
        out = []
        for rs in request.resource_spans:
            pairs = [(keys[kv.key][0], _value(kv.value)) for kv in rs.resource.attributes if kv.key in keys]
            rows = []
            skipped = 0
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attrs = {kv.key: kv for kv in span.attributes}
                    if attrs.keys().isdisjoint(MARKER_KEYS):
                        skipped += 1
                        continue
                    row: list[Any] = [span.start_time_unix_nano, span.end_time_unix_nano, span.status.code,
                                      span.trace_id, span.span_id, *([None] * n), None]
                    ranks: dict[int, int] = {}
                    for k in attrs.keys() & keys.keys():
                        slot, rank = keys[k]
                        if rank < ranks.get(slot, rank + 1):
                            ranks[slot] = rank
                            row[head + slot] = _value(attrs[k].value)
                    docs = [(k, _value(kv.value)) for k, kv in attrs.items()
                            if k.startswith(OI_DOC_PREFIX) and k.endswith(OI_DOC_SCORE_SUFFIX)]
                    if docs:
                        row[-1] = docs
                    rows.append(tuple(row))
                    if attributes is not None:
                        attributes.append(span.attributes)
            out.append((pairs, rows, skipped))
        return out
