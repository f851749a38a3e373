"""Lenient decoding: one bad span never costs the batch.

A Collector batches spans of many services into one request. Strict protobuf parsing (upb)
refuses the *whole* request for one string field holding invalid UTF-8, and the Collector then
drops every span of it — although the Collector itself accepted and forwarded those bytes. So the
receivers and ``gensight replay`` decode through :func:`decode_request`:

1. **Strict first** (the fast path, unchanged): ``trace_request_from_protobuf`` /
   ``trace_request_from_json``. Clean input never reaches step 2, so its throughput is the same.
2. **Lenient only when strict parsing failed**, and only when the *framing* holds:

   - protobuf: the request is walked by its tag/length framing down to each span
     (``ExportTraceServiceRequest.resource_spans`` → ``ResourceSpans.scope_spans`` →
     ``ScopeSpans.spans``). Each piece (a span; a resource with its other fields; a scope) that
     upb refuses is walked field by field with the message descriptors, and every string field
     (keys, values, names, at any depth in arrays and kvlists) whose bytes are not UTF-8 is
     replaced by ``bytes.decode("utf-8", "replace")`` (each invalid sequence → U+FFFD); the piece
     is re-serialised and must then parse strictly. A span that still does not parse (its own
     bytes are broken) is **rejected individually**; a resource or scope that does not parse
     rejects its spans (they cannot be attributed). The repaired request is re-assembled and parsed
     strictly, and its bytes are what the normaliser's C scanner reads (``Decoded.raw``): the
     scanner never sees invalid UTF-8, with or without it the same records come out.
   - OTLP/JSON: a body that is not UTF-8 is read with the invalid bytes kept as lone surrogates,
     then every JSON string holding one (also a ``\\ud800`` escape) is repaired the same way. If
     the request still does not decode (a span with a wrong type, a bad id ...), it is rebuilt
     span by span: spans that fail are rejected individually, a resource or scope that fails
     rejects its spans.

   Broken framing — truncated, a length beyond the end, not protobuf / not JSON at all, or a
   ``resourceSpans`` / ``scopeSpans`` / ``spans`` that is not a list of objects — still refuses the
   whole request with the strict parser's ``DecodeError``.

Replacing (rather than dropping the attribute or the span) keeps the call counted: its duration,
tokens and cost are real, and the attribute with the bad bytes is usually one Gensight does not
even read. The result says what was done in :class:`~gensight.processor.receive.admission.Defects`
(rejected spans, repaired strings, a message naming the first defect by its path, never a value),
which the receivers pass to the consumer: rejected spans count as ``dropped`` in
``gensight.processor.spans`` and in ``partial_success.rejected_spans``; repaired strings count in
``gensight.processor.values_repaired`` and the answer's ``partial_success.error_message``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from google.protobuf import message as _pb_message
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from gensight.processor.receive.admission import Defects
from gensight.processor.receive.decode import (
    DEFAULT_MAX_LINE_BYTES,
    BadLine,
    DecodeError,
    fill_from_otlp_json,
    json_loads,
    log_bad_line,
    read_lines,
    trace_request_from_dict,
    trace_request_from_protobuf,
)

__all__ = ["Decoded", "decode_json", "decode_json_object", "decode_protobuf", "decode_request", "iter_decoded_lines"]

# The repair walk goes no deeper than this (upb's own limit, 100 from the request, is what decides)
MAX_DEPTH = 200
_MAX_FIELD_NUMBER = (1 << 29) - 1
_MAX_VARINT_SHIFT = 63
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_RESOURCE_SPANS_FIELD = 1  # ExportTraceServiceRequest.resource_spans
_SCOPE_SPANS_FIELD = 2  # ResourceSpans.scope_spans
_SPANS_FIELD = 2  # ScopeSpans.spans
_LEN = 2  # wire type: length-delimited
_MAX_LABEL_CHARS = 64  # an attribute key naming a defect's place is clipped to this
_MAX_MESSAGE_CHARS = 1024  # partial_success.error_message: names the first defects, stays small
_KEY_VALUE = KeyValue.DESCRIPTOR
_PARSE_ERRORS = (_pb_message.DecodeError, RecursionError, ValueError)


class Decoded(NamedTuple):
    """A decoded request, the protobuf bytes it parses from (repaired ones when repaired; None for
    OTLP/JSON: the normaliser serializes it), and what lenient decoding had to do (None: nothing)."""

    request: ExportTraceServiceRequest
    raw: bytes | None
    defects: Defects | None


def decode_request(data: bytes, encoding: str = "protobuf") -> Decoded:
    """A request body (already decompressed) in ``encoding`` = ``"protobuf"`` or ``"json"``."""
    if encoding == "protobuf":
        return decode_protobuf(data)
    if encoding == "json":
        return decode_json(data)
    raise DecodeError(f"unsupported encoding {encoding!r} (expected 'protobuf' or 'json')")


class _Report:
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
        return Defects(self.rejected, self.repaired, _short("; ".join(parts), _MAX_MESSAGE_CHARS))


# --------------------------------------------------------------------------- protobuf


class _Broken(Exception):
    """The wire framing does not hold (truncated, bad tag, group, length beyond the end): the
    bytes are corrupt, not just one bad value, and the whole request is refused."""


class _TooDeep(Exception):
    """Nested deeper than upb parses: that piece (span, resource, scope) cannot be used."""


def decode_protobuf(data: bytes) -> Decoded:
    """Strict parse; when it fails, the lenient walk (see the module docstring)."""
    try:
        return Decoded(trace_request_from_protobuf(data), data, None)
    except DecodeError as strict:
        error = strict
    report = _Report()
    try:
        repaired = _request(data, report)
    except _Broken:
        raise error from None
    try:
        request = ExportTraceServiceRequest.FromString(repaired)
    except _PARSE_ERRORS:  # every piece parsed on its own: a safety net, not expected
        raise error from None
    return Decoded(request, repaired, report.defects())


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise _Broken("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > _MAX_VARINT_SHIFT:
            raise _Broken("varint longer than 10 bytes")


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
            raise _Broken(f"invalid field number {number}")
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
            raise _Broken(f"wire type {wire_type}")
        if pos > end:
            raise _Broken("field runs past the end of its message")
        yield number, wire_type, start, tag_end, value_start, pos


def _field(data: bytes, tag_end_slice: tuple[int, int], payload: bytes) -> bytes:
    start, tag_end = tag_end_slice
    return data[start:tag_end] + _encode_varint(len(payload)) + payload


def _request(data: bytes, report: _Report) -> bytes:
    out = bytearray()
    index = 0
    for number, wire_type, start, tag_end, vstart, end in _fields(data, 0, len(data)):
        if number == _RESOURCE_SPANS_FIELD and wire_type == _LEN:
            piece = _resource_spans(data, vstart, end, f"resource_spans[{index}]", report)
            index += 1
            if piece is not None:
                out += _field(data, (start, tag_end), piece)
        else:
            out += data[start:end]  # unknown fields: kept as they are, as upb keeps them
    return bytes(out)


def _resource_spans(data: bytes, pos: int, end: int, path: str, report: _Report) -> bytes | None:
    head = bytearray()  # the resource and the other fields, checked as one ResourceSpans
    scopes: list[tuple[bytes, int]] = []
    index = 0
    for number, wire_type, start, tag_end, vstart, fend in _fields(data, pos, end):
        if number == _SCOPE_SPANS_FIELD and wire_type == _LEN:
            piece, kept = _scope_spans(data, vstart, fend, f"{path}.scope_spans[{index}]", report)
            index += 1
            if piece is not None:
                scopes.append((_field(data, (start, tag_end), piece), kept))
        else:
            head += data[start:fend]
    fixed, why = _repaired(ResourceSpans, bytes(head), path, report)
    if fixed is None:
        report.reject(sum(kept for _, kept in scopes), f"{path} (resource): {why}")
        return None
    return fixed + b"".join(piece for piece, _ in scopes)


def _scope_spans(data: bytes, pos: int, end: int, path: str, report: _Report) -> tuple[bytes | None, int]:
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


def _repaired(message_type: Any, data: bytes, path: str, report: _Report) -> tuple[bytes | None, str]:
    """``data`` if it parses as ``message_type``, else its strings repaired if that parses, else
    (None, why). Repairs are reported only for a piece that is kept."""
    wrap = _WRAPS[message_type]
    try:
        ExportTraceServiceRequest.FromString(wrap(data))
        return data, ""
    except _PARSE_ERRORS:
        pass
    fixes: list[str] = []
    try:  # _Broken (corrupt framing) propagates: the whole request is refused
        fixed = _fix_strings(message_type.DESCRIPTOR, data, 0, len(data), path, fixes, 0)
    except _TooDeep as exc:
        return None, str(exc)
    try:
        ExportTraceServiceRequest.FromString(wrap(fixed))
    except _PARSE_ERRORS as exc:
        return None, _why(exc)
    report.repair(fixes)
    return fixed, ""


def _why(exc: BaseException) -> str:
    """upb's reason without its "Error parsing message with type ..." preamble."""
    text = str(exc).rsplit("': ", 1)[-1]
    return "nested too deep" if "MaxDepth" in text else _short(text)


_WRAPS = {ResourceSpans: _AS_RESOURCE_SPANS, ScopeSpans: _AS_SCOPE_SPANS, Span: _AS_SPAN}


_repeated_cache: dict[Any, bool] = {}


def _is_repeated(f: Any) -> bool:
    r = _repeated_cache.get(f)
    if r is None:  # protobuf >= 6 has is_repeated (and drops label from upb descriptors)
        r = f.is_repeated if hasattr(f, "is_repeated") else f.label == FieldDescriptor.LABEL_REPEATED
        _repeated_cache[f] = r
    return r


def _kv_key(data: bytes, pos: int, end: int) -> str | None:
    """The key of the KeyValue ``data[pos:end]`` (repaired), for naming a defect's path."""
    key = None
    for number, wire_type, _, _, vstart, fend in _fields(data, pos, end):
        if number == 1 and wire_type == _LEN:
            key = data[vstart:fend].decode("utf-8", "replace")
    return key


def _fix_strings(descriptor: Any, data: bytes, pos: int, end: int, path: str, fixes: list[str], depth: int) -> bytes:
    """The message ``data[pos:end]`` with every non-UTF-8 string field (at any depth) repaired."""
    if depth > MAX_DEPTH:
        raise _TooDeep("nested too deep")
    by_number = descriptor.fields_by_number
    out = bytearray()
    seen: dict[int, int] = {}
    for number, wire_type, start, tag_end, vstart, fend in _fields(data, pos, end):
        f = by_number.get(number)
        if f is None or wire_type != _LEN or f.type not in (_STRING, _MESSAGE):
            out += data[start:fend]  # unknown, scalar, packed: as they are
            continue
        if _is_repeated(f):
            i = seen.get(number, 0)
            seen[number] = i + 1
            label = _kv_key(data, vstart, fend) if f.message_type is _KEY_VALUE else None
            where = f"{path}.{f.name}[{i if label is None else _attribute_label(label)}]"
        else:
            where = f"{path}.{f.name}"
        if f.type == _STRING:
            chunk = data[vstart:fend]
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                fixes.append(where)
                out += _field(data, (start, tag_end), chunk.decode("utf-8", "replace").encode("utf-8"))
                continue
            out += data[start:fend]
        else:
            out += _field(data, (start, tag_end),
                          _fix_strings(f.message_type, data, vstart, fend, where, fixes, depth + 1))
    return bytes(out)


# --------------------------------------------------------------------------- OTLP/JSON

# lone surrogates: from ``surrogateescape`` (invalid input bytes, U+DC80..U+DCFF) or \\uD800 escapes
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_ESCAPED_BYTE = re.compile("[\ud800-\udc7f\udd00-\udfff]")
_RESOURCE_SPANS_KEYS = ("resourceSpans", "resource_spans")
_SCOPE_SPANS_KEYS = ("scopeSpans", "scope_spans")
_SPANS_KEYS = ("spans",)


def decode_json(data: bytes | str) -> Decoded:
    """Strict OTLP/JSON; when it fails, the lenient rebuild (see the module docstring)."""
    return decode_json_object(parse_json(data))


def parse_json(data: bytes | str) -> Any:
    """JSON text -> object. Bytes that are not UTF-8 are kept as lone surrogates (repaired later);
    anything that is not JSON at all is a ``DecodeError``."""
    try:
        return json_loads(data)
    except RecursionError:
        raise DecodeError("invalid JSON: nesting too deep") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        strict = DecodeError(f"invalid JSON: {_short(exc)}")
    if isinstance(data, str):
        raise strict
    try:
        return json_loads(data.decode("utf-8-sig", "surrogateescape"))
    except (ValueError, TypeError, RecursionError):
        raise strict from None


def decode_json_object(obj: Any) -> Decoded:
    """An already-parsed OTLP/JSON request: strict, else repaired strings, else span by span."""
    try:
        return Decoded(trace_request_from_dict(obj), None, None)
    except DecodeError as exc:
        strict = exc
    if not isinstance(obj, dict):
        raise strict
    report = _Report()
    report.repair(_repair_json_strings(obj))
    if report.repaired:
        try:
            return Decoded(trace_request_from_dict(obj), None, report.defects())
        except DecodeError:
            pass
    request = _json_span_by_span(obj, report, strict)
    return Decoded(request, None, report.defects())


def _fix_text(s: str) -> str:
    """Lone surrogates -> U+FFFD; invalid input bytes (U+DC80..) decoded as ``replace`` would."""
    return _NOT_ESCAPED_BYTE.sub("\ufffd", s).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _repair_json_strings(obj: Any) -> list[str]:
    """Repairs, in place, every string value holding a lone surrogate; returns their paths, in
    document order (an explicit stack of iterators: no recursion limit to hit)."""
    fixes: list[str] = []
    stack: list[tuple[Any, Iterator[tuple[Any, Any]], str]] = [(obj, iter(_items(obj)), "")]
    while stack:
        node, items, path = stack[-1]
        entry = next(items, None)
        if entry is None:
            stack.pop()
            continue
        key, value = entry
        if isinstance(value, (dict, list)):
            stack.append((value, iter(_items(value)), _json_path(path, key, value)))
        elif isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            node[key] = _fix_text(value)
            fixes.append(_json_path(path, key, value))
    return fixes


def _items(node: Any) -> Any:
    return list(node.items()) if isinstance(node, dict) else enumerate(node)


def _json_path(path: str, key: Any, value: Any) -> str:
    if isinstance(key, int):
        label = value.get("key") if isinstance(value, dict) else None
        return f"{path}[{_attribute_label(label) if isinstance(label, str) else key}]"
    key = _fix_text(key) if _SURROGATE.search(key) else key  # an unknown field's name: clip it
    key = key if len(key) <= _MAX_LABEL_CHARS else key[:_MAX_LABEL_CHARS] + "..."
    return f"{path}.{key}" if path else key


def _attribute_label(key: str) -> str:
    """An attribute's place in a path: its quoted key (clipped), which says more than an index."""
    text = _fix_text(key) if _SURROGATE.search(key) else key
    return repr(text if len(text) <= _MAX_LABEL_CHARS else text[:_MAX_LABEL_CHARS] + "...")


def _json_list(obj: dict[str, Any], keys: tuple[str, ...], strict: DecodeError, *, of_objects: bool = True) -> list[Any]:
    """The list under the first present key (absent/null: empty). Not a list (of objects, for the
    containers): the framing is broken and the whole request is refused. A span that is not an
    object is rejected on its own by the caller."""
    for key in keys:
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, list) or (of_objects and not all(isinstance(v, dict) for v in value)):
                raise strict
            return value
    return []


def _json_span_by_span(obj: Any, report: _Report, strict: DecodeError) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for i, rs in enumerate(_json_list(obj, _RESOURCE_SPANS_KEYS, strict)):
        rs_path = f"resourceSpans[{i}]"
        rs_msg = request.resource_spans.add()
        kept_rs = 0
        for j, ss in enumerate(_json_list(rs, _SCOPE_SPANS_KEYS, strict)):
            ss_path = f"{rs_path}.scopeSpans[{j}]"
            ss_msg = rs_msg.scope_spans.add()
            kept = 0
            for k, span in enumerate(_json_list(ss, _SPANS_KEYS, strict, of_objects=False)):
                span_msg = ss_msg.spans.add()
                why = _try_fill(span_msg, span) if isinstance(span, dict) else "span must be an object"
                if why:
                    del ss_msg.spans[-1]
                    report.reject(1, f"{ss_path}.spans[{k}]: {why}")
                else:
                    kept += 1
            why = _try_fill(ss_msg, {key: v for key, v in ss.items() if key not in _SPANS_KEYS})
            if why:
                del rs_msg.scope_spans[-1]
                report.reject(kept, f"{ss_path} (scope): {why}")
            else:
                kept_rs += kept
        why = _try_fill(rs_msg, {key: v for key, v in rs.items() if key not in _SCOPE_SPANS_KEYS})
        if why:
            del request.resource_spans[-1]
            report.reject(kept_rs, f"{rs_path} (resource): {why}")
    return request


def _try_fill(message: Any, obj: dict[str, Any]) -> str:
    try:
        fill_from_otlp_json(message, obj)
    except DecodeError as exc:
        return exc.message
    return ""


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."


# --------------------------------------------------------------------------- JSON lines


def iter_decoded_lines(
    source: str | Path | IO[bytes],
    *,
    on_bad_line: Callable[[BadLine], None] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[tuple[int, Decoded]]:
    """``iter_json_lines`` decoding each line leniently: yields (line number, ``Decoded``); a line
    whose framing is broken, or that holds no ``resourceSpans``, is reported and skipped."""
    report = on_bad_line or log_bad_line
    for name, line_no, line in read_lines(source, report, max_line_bytes):
        try:
            obj = parse_json(line)
            if isinstance(obj, dict) and not any(k in obj for k in _RESOURCE_SPANS_KEYS):
                raise DecodeError("no resourceSpans: not an ExportTraceServiceRequest line")
            decoded = decode_json_object(obj)
        except DecodeError as exc:
            report(BadLine(name, line_no, exc.message))
            continue
        yield line_no, decoded
