"""Repairing a protobuf ``ExportTraceServiceRequest`` by its wire framing (``lenient.py``'s
protobuf path).

The request is walked by tag and length down to each span (``resource_spans`` -> ``scope_spans``
-> ``spans``), skipping what parses strictly as a whole (a ``ResourceSpans``, a ``ScopeSpans``), so
a batch with one bad span costs a walk of that span's scope only. Each piece - a span; a ``ResourceSpans`` without its scopes; a ``ScopeSpans``
without its spans - is parsed strictly inside its real envelope (upb's nesting limit counts from
the request). A piece that fails is walked field by field with the message descriptors, every
string field whose bytes are not UTF-8 replaced by ``decode("utf-8", "replace")``; if it then
parses it is kept (repairs reported), else a span is rejected alone and a resource or scope
rejects its spans. A break in the framing itself raises ``BrokenFraming``: the request is corrupt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf import message as _pb_message
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from gensight.processor.receive.admission import Defects

__all__ = ["MAX_LABEL_CHARS", "PARSE_ERRORS", "BrokenFraming", "DefectReport", "attribute_label", "clip", "repair_request"]

# The repair walk goes no deeper than this (upb's own limit, 100 from the request, is what decides)
MAX_DEPTH = 200
MAX_LABEL_CHARS = 64  # an attribute key naming a defect's place is clipped to this
_MAX_MESSAGE_CHARS = 1024  # partial_success.error_message: names the first defects, stays small
_MAX_FIELD_NUMBER = (1 << 29) - 1
_MAX_VARINT_SHIFT = 63
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_RESOURCE_SPANS_FIELD = 1  # ExportTraceServiceRequest.resource_spans
_SCOPE_SPANS_FIELD = 2  # ResourceSpans.scope_spans
_SPANS_FIELD = 2  # ScopeSpans.spans
_LEN = 2  # wire type: length-delimited
_KEY_VALUE = KeyValue.DESCRIPTOR
_TOO_DEEP = "nested too deep"
PARSE_ERRORS = (_pb_message.DecodeError, RecursionError, ValueError)


class BrokenFraming(Exception):
    """The wire framing does not hold (truncated, bad tag, group, length beyond the end): the
    bytes are corrupt, not just one bad value, and the whole request is refused."""


class _TooDeep(Exception):
    """Nested deeper than upb parses: that piece (span, resource, scope) cannot be used."""


class DefectReport:
    """What the lenient walk did: counts and the first defect of each kind, by path."""

    def __init__(self) -> None:
        self.rejected = 0
        self.first_rejected = ""
        self.repaired = 0
        self.first_repaired = ""

    def reject(self, n: int, what: str) -> None:
        if n and not self.first_rejected:
            self.first_rejected = what
        self.rejected += n

    def repair(self, paths: list[str]) -> None:
        if paths and not self.first_repaired:
            self.first_repaired = paths[0]
        self.repaired += len(paths)

    def defects(self) -> Defects | None:
        if not self.rejected and not self.repaired:
            return None
        parts = []
        if self.rejected:
            parts.append(f"{self.rejected} span(s) rejected, first: {self.first_rejected}")
        if self.repaired:
            parts.append(f"invalid UTF-8 replaced with U+FFFD in {self.repaired} string(s), first at {self.first_repaired}")
        return Defects(self.rejected, self.repaired, clip("; ".join(parts), _MAX_MESSAGE_CHARS))


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise BrokenFraming("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > _MAX_VARINT_SHIFT:
            raise BrokenFraming("varint longer than 10 bytes")


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _fields(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(field number, wire type, field start, tag end, value start, field end) of each field."""
    while pos < end:
        start = pos
        key, pos = _varint(data, pos, end)
        number, wire_type = key >> 3, key & 7
        if not 0 < number <= _MAX_FIELD_NUMBER:
            raise BrokenFraming(f"invalid field number {number}")
        tag_end = value_start = pos
        if wire_type == 0:
            _, pos = _varint(data, pos, end)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == _LEN:
            n, value_start = _varint(data, pos, end)
            pos = value_start + n
        else:
            raise BrokenFraming(f"wire type {wire_type}")
        if pos > end:
            raise BrokenFraming("field runs past the end of its message")
        yield number, wire_type, start, tag_end, value_start, pos


def _field(data: bytes, tag_end_slice: tuple[int, int], payload: bytes) -> bytes:
    start, tag_end = tag_end_slice
    return data[start:tag_end] + _encode_varint(len(payload)) + payload


def repair_request(data: bytes, report: DefectReport) -> bytes:
    out = bytearray()
    index = 0
    for number, wire_type, start, tag_end, vstart, end in _fields(data, 0, len(data)):
        if number == _RESOURCE_SPANS_FIELD and wire_type == _LEN:
            path = f"resource_spans[{index}]"
            index += 1
            if _parsed(_AS_RESOURCE_SPANS, data[vstart:end]) is not None:
                out += data[start:end]  # sound as a whole: no need to look at its spans
                continue
            piece = _resource_spans(data, vstart, end, path, report)
            if piece is not None:
                out += _field(data, (start, tag_end), piece)
        else:
            out += data[start:end]  # unknown fields: kept as they are, as upb keeps them
    return bytes(out)


def _resource_spans(data: bytes, pos: int, end: int, path: str, report: DefectReport) -> bytes | None:
    head = bytearray()  # the resource and the other fields, checked as one ResourceSpans
    scopes: list[tuple[bytes, int]] = []
    index = 0
    for number, wire_type, start, tag_end, vstart, fend in _fields(data, pos, end):
        if number == _SCOPE_SPANS_FIELD and wire_type == _LEN:
            scope_path = f"{path}.scope_spans[{index}]"
            index += 1
            whole = _parsed(_AS_SCOPE_SPANS, data[vstart:fend])
            if whole is not None:  # sound as a whole: kept, its spans counted for the resource
                scopes.append((data[start:fend], len(whole.resource_spans[0].scope_spans[0].spans)))
                continue
            piece, kept = _scope_spans(data, vstart, fend, scope_path, report)
            if piece is not None:
                scopes.append((_field(data, (start, tag_end), piece), kept))
        else:
            head += data[start:fend]
    fixed, why = _repaired(ResourceSpans, bytes(head), path, report)
    if fixed is None:
        report.reject(sum(kept for _, kept in scopes), f"{path} (resource): {why}")
        return None
    return fixed + b"".join(piece for piece, _ in scopes)


def _scope_spans(data: bytes, pos: int, end: int, path: str, report: DefectReport) -> tuple[bytes | None, int]:
    head = bytearray()
    spans = bytearray()
    kept = index = 0
    for number, wire_type, start, tag_end, vstart, fend in _fields(data, pos, end):
        if number == _SPANS_FIELD and wire_type == _LEN:
            span_path = f"{path}.spans[{index}]"
            index += 1
            fixed, why = _repaired(Span, data[vstart:fend], span_path, report)
            if fixed is None:
                report.reject(1, f"{span_path}: {why}")
            else:
                spans += _field(data, (start, tag_end), fixed)
                kept += 1
        else:
            head += data[start:fend]
    fixed, why = _repaired(ScopeSpans, bytes(head), path, report)
    if fixed is None:
        report.reject(kept, f"{path} (scope): {why}")
        return None, 0
    return fixed + bytes(spans), kept


def _in_request(*fields: int) -> Callable[[bytes], bytes]:
    """Wraps a piece in the request envelope it came from: upb's nesting limit counts from the
    request, so a piece is checked at its real depth."""
    def wrap(piece: bytes) -> bytes:
        for number in reversed(fields):
            piece = _encode_varint(number << 3 | _LEN) + _encode_varint(len(piece)) + piece
        return piece
    return wrap


_AS_RESOURCE_SPANS = _in_request(_RESOURCE_SPANS_FIELD)
_AS_SCOPE_SPANS = _in_request(_RESOURCE_SPANS_FIELD, _SCOPE_SPANS_FIELD)
_AS_SPAN = _in_request(_RESOURCE_SPANS_FIELD, _SCOPE_SPANS_FIELD, _SPANS_FIELD)


def _parsed(wrap: Callable[[bytes], bytes], piece: bytes) -> ExportTraceServiceRequest | None:
    """The piece, wrapped in its envelope, parsed strictly; None when upb refuses it."""
    try:
        return ExportTraceServiceRequest.FromString(wrap(piece))
    except PARSE_ERRORS:
        return None


def _repaired(message_type: Any, data: bytes, path: str, report: DefectReport) -> tuple[bytes | None, str]:
    """``data`` if it parses as ``message_type``, else its strings repaired if that parses, else
    (None, why). Repairs are reported only for a piece that is kept."""
    wrap = _WRAPS[message_type]
    if _parsed(wrap, data) is not None:
        return data, ""
    fixes: list[str] = []
    try:  # BrokenFraming (corrupt framing) propagates: the whole request is refused
        fixed = _fix_strings(message_type.DESCRIPTOR, data, 0, len(data), path, fixes, 0)
    except _TooDeep as exc:
        return None, str(exc)
    try:
        ExportTraceServiceRequest.FromString(wrap(fixed))
    except PARSE_ERRORS as exc:
        why = _why(exc)
        if why != _TOO_DEEP:  # UTF-8 is repaired: what is left is corrupt framing
            raise BrokenFraming(why) from None
        return None, why
    report.repair(fixes)
    return fixed, ""


def _why(exc: BaseException) -> str:
    """upb's reason without its "Error parsing message with type ..." preamble."""
    text = str(exc).rsplit("': ", 1)[-1]
    return _TOO_DEEP if "MaxDepth" in text else clip(text)


_WRAPS = {ResourceSpans: _AS_RESOURCE_SPANS, ScopeSpans: _AS_SCOPE_SPANS, Span: _AS_SPAN}


# per message descriptor: field number -> (name, sub-message descriptor or None for a string,
# repeated, is a KeyValue) for the string and message fields, the only ones the walk looks into
_FieldInfo = tuple[str, Any, bool, bool]
_field_tables: dict[Any, dict[int, _FieldInfo]] = {}


def _field_table(descriptor: Any) -> dict[int, _FieldInfo]:
    table = _field_tables.get(descriptor)
    if table is None:
        table = {}
        for f in descriptor.fields:
            if f.type not in (_STRING, _MESSAGE):
                continue
            # protobuf >= 6 has is_repeated (and drops label from upb descriptors)
            repeated = f.is_repeated if hasattr(f, "is_repeated") else f.label == FieldDescriptor.LABEL_REPEATED
            sub = f.message_type if f.type == _MESSAGE else None
            table[f.number] = (f.name, sub, repeated, sub is _KEY_VALUE)
        _field_tables[descriptor] = table
    return table


# A defect's place, built only when one is found: a piece's path (str), or (parent, field name,
# index or None, the KeyValue's byte range or None)
_Path = Any


def _path_text(path: _Path, data: bytes) -> str:
    parts: list[str] = []
    while not isinstance(path, str):
        path, name, index, kv = path
        if index is None:
            parts.append(f".{name}")
        else:
            label = _kv_key(data, *kv) if kv is not None else None
            parts.append(f".{name}[{index if label is None else attribute_label(label)}]")
    return path + "".join(reversed(parts))


def _kv_key(data: bytes, pos: int, end: int) -> str | None:
    """The key of the KeyValue ``data[pos:end]`` (repaired), for naming a defect's path."""
    key = None
    for number, wire_type, _, _, vstart, fend in _fields(data, pos, end):
        if number == 1 and wire_type == _LEN:
            key = data[vstart:fend].decode("utf-8", "replace")
    return key


def _fix_strings(descriptor: Any, data: bytes, pos: int, end: int, path: _Path, fixes: list[str], depth: int) -> bytes:
    """The message ``data[pos:end]`` with every non-UTF-8 string field (at any depth) repaired.
    Pure-ASCII sub-messages hold no invalid UTF-8 and are copied without a look inside (a framing
    defect there is still found: the repaired piece must parse strictly)."""
    if depth > MAX_DEPTH:
        raise _TooDeep(_TOO_DEEP)
    table = _field_table(descriptor)
    view = memoryview(data)
    out = bytearray()
    seen: dict[int, int] = {}
    for number, wire_type, start, tag_end, vstart, fend in _fields(data, pos, end):
        info = table.get(number)
        if info is None or wire_type != _LEN:
            out += view[start:fend]  # unknown, scalar, packed: as they are
            continue
        name, sub, repeated, is_kv = info
        index = None
        if repeated:
            index = seen.get(number, 0)
            seen[number] = index + 1
        chunk = data[vstart:fend]
        if chunk.isascii():
            out += view[start:fend]
            continue
        where = (path, name, index, (vstart, fend) if is_kv else None)
        if sub is None:
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                fixes.append(_path_text(where, data))
                out += _field(data, (start, tag_end), chunk.decode("utf-8", "replace").encode("utf-8"))
                continue
            out += view[start:fend]
        else:
            out += _field(data, (start, tag_end), _fix_strings(sub, data, vstart, fend, where, fixes, depth + 1))
    return bytes(out)


def attribute_label(key: str) -> str:
    """An attribute's place in a path: its quoted key (clipped; valid text), which says more than
    an index."""
    return repr(clip(key, MAX_LABEL_CHARS))


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters (messages sent back stay small)."""
    return text if len(text) <= limit else text[:limit] + "..."
