"""Lenient decoding: one bad span never costs the batch.

A Collector batches spans of many services into one request. Strict protobuf parsing (upb)
refuses the *whole* request for one string field holding invalid UTF-8, and the Collector then
drops every span of it — although the Collector itself accepted and forwarded those bytes. So the
receivers and ``gensight replay`` decode through :func:`decode_request`:

1. **Strict first** (the fast path, unchanged): ``trace_request_from_protobuf`` /
   ``trace_request_from_json``. Clean input never reaches step 2, so its throughput is the same.
2. **Lenient only when strict parsing failed**, and only when the *framing* holds:

   - protobuf (``repair.py``): the request is walked by its tag/length framing down to each span
     (``ExportTraceServiceRequest.resource_spans`` → ``ResourceSpans.scope_spans`` →
     ``ScopeSpans.spans``). Each piece (a span; a resource with its other fields; a scope) that
     upb refuses is walked field by field with the message descriptors, and every string field
     (keys, values, names, at any depth in arrays and kvlists) whose bytes are not UTF-8 is
     replaced by ``bytes.decode("utf-8", "replace")`` (each invalid sequence → U+FFFD); the piece
     is re-serialised and must then parse strictly. A span that still does not parse (nested
     past upb's limit) is **rejected individually**; a resource or scope that does not parse
     rejects its spans (they cannot be attributed). The repaired request is re-assembled and parsed
     strictly, and its bytes are what the normaliser's C scanner reads (``Decoded.raw``): the
     scanner never sees invalid UTF-8, with or without it the same records come out.
   - OTLP/JSON: a body that is not UTF-8 is read with the invalid bytes kept as lone surrogates,
     then every JSON string holding one (also a ``\\ud800`` escape) is repaired the same way. If
     the request still does not decode (a span with a wrong type, a bad id ...), it is rebuilt
     span by span: spans that fail are rejected individually, a resource or scope that fails
     rejects its spans.

   Broken framing — truncated, a length beyond the end or a bad tag anywhere in what is walked,
   not protobuf / not JSON at all, or a ``resourceSpans`` / ``scopeSpans`` / ``spans`` that is not
   a list — still refuses the whole request with the strict parser's ``DecodeError``: corrupt
   bytes are not half-accepted.

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

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gensight.processor.receive.admission import Defects
from gensight.processor.receive.decode import (
    DecodeError,
    fill_from_otlp_json,
    json_loads,
    trace_request_from_dict,
    trace_request_from_protobuf,
)
from gensight.processor.receive.json_lines import DEFAULT_MAX_LINE_BYTES, BadLine, log_bad_line, read_lines
from gensight.processor.receive.repair import (
    MAX_LABEL_CHARS,
    PARSE_ERRORS,
    BrokenFraming,
    DefectReport,
    attribute_label,
    clip,
    repair_request,
)

__all__ = ["Decoded", "decode_json", "decode_json_object", "decode_protobuf", "decode_request", "iter_decoded_lines",
           "parse_json"]


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


# --------------------------------------------------------------------------- protobuf


def decode_protobuf(data: bytes) -> Decoded:
    """Strict parse; when it fails, the lenient walk (see the module docstring)."""
    try:
        return Decoded(trace_request_from_protobuf(data), data, None)
    except DecodeError as strict:
        error = strict
    report = DefectReport()
    try:
        repaired = repair_request(data, report)
        request = ExportTraceServiceRequest.FromString(repaired)
    except BrokenFraming:
        raise error from None
    except PARSE_ERRORS:  # every piece parsed on its own: a safety net, not expected
        raise error from None
    return Decoded(request, repaired, report.defects())


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
        strict = DecodeError(f"invalid JSON: {clip(str(exc))}")
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
    report = DefectReport()
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
        return f"{path}[{attribute_label(_valid(label)) if isinstance(label, str) else key}]"
    key = clip(_valid(key), MAX_LABEL_CHARS)  # an unknown field's name may be anything
    return f"{path}.{key}" if path else key


def _valid(text: str) -> str:
    return _fix_text(text) if _SURROGATE.search(text) else text


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


def _json_span_by_span(obj: Any, report: DefectReport, strict: DecodeError) -> ExportTraceServiceRequest:
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
            if isinstance(obj, dict) and ("resourceLogs" in obj or "resource_logs" in obj):
                # evaluation results (log records) share the file with spans: ``request`` is then
                # an ExportLogsServiceRequest, decoded strictly (gensight replay)
                from gensight.processor.receive.logs import logs_request_from_dict

                yield line_no, Decoded(logs_request_from_dict(obj), None, None)  # type: ignore[arg-type]
                continue
            if isinstance(obj, dict) and not any(k in obj for k in _RESOURCE_SPANS_KEYS):
                raise DecodeError("no resourceSpans: not an ExportTraceServiceRequest line")
            decoded = decode_json_object(obj)
        except DecodeError as exc:
            report(BadLine(name, line_no, exc.message))
            continue
        yield line_no, decoded
