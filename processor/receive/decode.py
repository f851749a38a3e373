"""Decode stage: bytes on the wire (or lines in a file) -> ``ExportTraceServiceRequest``.

Everything that turns untrusted bytes into protobuf lives here, so receivers and ``gensight replay``
share one set of rules and one error type.

Interface (stable; the pipeline and receivers call only these):

- ``DecodeError(message)``: every failure, with a message safe to return to the client;
  ``TooLargeError`` (a subclass) when a decompressed body exceeds its limit.
- ``decode_trace_request(data, *, encoding="protobuf"|"json", gzip=False,
  max_decompressed_bytes=...) -> ExportTraceServiceRequest``
- ``trace_request_from_protobuf(data)``, ``trace_request_from_json(data)`` (bytes or str),
  ``trace_request_from_dict(obj)``
- ``gunzip(data, max_bytes) -> bytes``: bounded decompression (zip-bomb safe).
- ``json_loads(data)``, ``fill_from_otlp_json(message, obj)``: the pieces ``lenient.py`` builds
  its tolerant decoding from (see there: strict first, then per span).
- Files of requests (the Collector ``file`` exporter's JSON lines: ``iter_json_lines``,
  ``read_lines``, ``BadLine``) are read by :mod:`gensight.processor.receive.json_lines`.
- ``metrics_request_to_json_line(request) -> str`` / ``logs_request_to_json_line(request) -> str``:
  the OTLP/JSON encoding of one request on one line (no trailing newline).
- ``message_to_otlp_json(message) -> dict``: the OTLP/JSON mapping of any OTLP message.

OTLP/JSON is *not* protobuf's canonical JSON mapping (see the OTLP specification, "JSON Protobuf
Encoding"): trace and span ids are hex strings (canonical JSON would use base64), enums are
integers, int64 values may be strings or numbers, keys are lowerCamelCase (receivers should also
accept the original snake_case names), and unknown fields must be ignored. Decoding walks the
message descriptors directly (``json_format`` is ~10x slower, which matters for replay);
encoding uses ``json_format`` and rewrites the ids to hex.

Why not reject a whole request for one bad id? We do: an id that is neither hex nor base64 makes
the request undecodable (the Collector does the same); ids of the wrong *length* are passed
through so the normaliser can reject just that span via ``partial_success``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import zlib
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf import message as _pb_message
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = [
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "DecodeError",
    "TooLargeError",
    "decode_message",
    "decode_trace_request",
    "fill_from_otlp_json",
    "gunzip",
    "json_loads",
    "logs_request_to_json_line",
    "message_from_dict",
    "message_from_json",
    "message_from_protobuf",
    "message_to_otlp_json",
    "metrics_request_to_json_line",
    "trace_request_from_dict",
    "trace_request_from_json",
    "trace_request_from_protobuf",
]

_log = logging.getLogger(__name__)
M = TypeVar("M", bound=_pb_message.Message)  # an OTLP export request message class

# A decompressed request may be at most this big: a 64 KiB gzip body can expand to gigabytes.
DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_ID_KEYS_OUT = frozenset(("traceId", "spanId", "parentSpanId"))
_CHUNK_BYTES = 64 * 1024


class DecodeError(ValueError):
    """The input could not be decoded; ``message`` is short, specific and safe to send back."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooLargeError(DecodeError):
    """The (decompressed) input exceeds a configured size limit (HTTP 413, not 400)."""


def gunzip(data: bytes, max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress gzip ``data`` (one or more members), refusing output larger than ``max_bytes``.

    Decompression is incremental with ``max_length``, so a zip bomb costs at most ``max_bytes`` of
    memory before it is refused.
    """
    out = bytearray()
    view = data
    while True:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        buf = view
        try:
            while buf:
                chunk = d.decompress(buf, max(1, max_bytes + 1 - len(out)))
                out += chunk
                if len(out) > max_bytes:
                    raise TooLargeError(f"decompressed body exceeds the limit of {max_bytes} bytes")
                buf = d.unconsumed_tail
                if d.eof:
                    break
            if not d.eof:
                # drain what zlib buffered internally
                out += d.flush()
                if len(out) > max_bytes:
                    raise TooLargeError(f"decompressed body exceeds the limit of {max_bytes} bytes")
                if not d.eof:
                    raise DecodeError("gzip body is truncated")
        except zlib.error as exc:
            raise DecodeError(f"invalid gzip body: {exc}") from None
        rest = d.unused_data
        if not rest or not rest.lstrip(b"\x00"):  # trailing zero padding is tolerated, like gzip(1)
            return bytes(out)
        if rest[:2] != _GZIP_MAGIC:
            raise DecodeError("trailing garbage after gzip body")
        view = rest


# --------------------------------------------------------------------------- requests


def message_from_protobuf(cls: type[M], data: bytes) -> M:
    """Parse binary protobuf into a new ``cls`` (any OTLP export request); invalid wire data or
    invalid UTF-8 in strings -> ``DecodeError``."""
    req = cls()
    try:
        req.ParseFromString(data)
    except _pb_message.DecodeError as exc:
        raise DecodeError(f"invalid protobuf {cls.__name__}: {exc}") from None
    except RecursionError:
        raise DecodeError(f"invalid protobuf {cls.__name__}: nesting too deep") from None
    return req


def trace_request_from_protobuf(data: bytes) -> ExportTraceServiceRequest:
    """Parse binary protobuf; invalid wire data or invalid UTF-8 in strings -> ``DecodeError``."""
    return message_from_protobuf(ExportTraceServiceRequest, data)


def _reject_constant(name: str) -> Any:
    # Python's json accepts the non-standard literals NaN/Infinity; JSON (and OTLP/JSON) does not:
    # special doubles are the strings "NaN", "Infinity", "-Infinity".
    raise ValueError(f"{name} is not valid JSON (use the string \"{name}\")")


def json_loads(data: bytes | str) -> Any:
    """``json.loads`` refusing the non-JSON literals NaN/Infinity (OTLP/JSON spells them as strings)."""
    return json.loads(data, parse_constant=_reject_constant)


def message_from_json(cls: type[M], data: bytes | str) -> M:
    """Parse one ``cls`` (any OTLP export request) in the OTLP/JSON encoding."""
    try:
        obj = json_loads(data)
    except RecursionError:
        raise DecodeError("invalid JSON: nesting too deep") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DecodeError(f"invalid JSON: {exc}") from None
    return message_from_dict(cls, obj)


def message_from_dict(cls: type[M], obj: Any) -> M:
    """Build a ``cls`` from already-parsed OTLP/JSON (hex ids, int or string enums and int64s)."""
    if not isinstance(obj, dict):
        raise DecodeError(f"OTLP/JSON request must be a JSON object, not {type(obj).__name__}")
    req = cls()
    fill_from_otlp_json(req, obj)
    return req


def trace_request_from_json(data: bytes | str) -> ExportTraceServiceRequest:
    """Parse one ExportTraceServiceRequest in the OTLP/JSON encoding."""
    return message_from_json(ExportTraceServiceRequest, data)


def trace_request_from_dict(obj: Any) -> ExportTraceServiceRequest:
    """Build a request from already-parsed OTLP/JSON (hex ids, int or string enums and int64s)."""
    return message_from_dict(ExportTraceServiceRequest, obj)


def fill_from_otlp_json(message: _pb_message.Message, obj: dict[str, Any]) -> None:
    """Merge the OTLP/JSON object ``obj`` into ``message`` (any OTLP message); ``DecodeError`` on
    any defect. ``lenient.py`` uses it to decode span by span."""
    try:
        _fill(message, obj)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("invalid OTLP/JSON: nesting too deep") from None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        raise DecodeError(f"invalid OTLP/JSON {message.DESCRIPTOR.name}: {_short(exc)}") from None


def decode_message(
    cls: type[M],
    data: bytes,
    *,
    encoding: str = "protobuf",
    gzip: bool = False,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> M:
    """Decode a request body into a ``cls``: optional gzip, then ``encoding`` = ``"protobuf"`` or
    ``"json"``."""
    if gzip:
        data = gunzip(data, max_decompressed_bytes)
    if encoding == "protobuf":
        return message_from_protobuf(cls, data)
    if encoding == "json":
        return message_from_json(cls, data)
    raise DecodeError(f"unsupported encoding {encoding!r} (expected 'protobuf' or 'json')")


def decode_trace_request(
    data: bytes,
    *,
    encoding: str = "protobuf",
    gzip: bool = False,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> ExportTraceServiceRequest:
    """Decode a traces request body: optional gzip, then ``encoding`` = ``"protobuf"`` or ``"json"``."""
    return decode_message(ExportTraceServiceRequest, data, encoding=encoding, gzip=gzip,
                          max_decompressed_bytes=max_decompressed_bytes)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "..."


# OTLP/JSON -> protobuf, driven by the message descriptors. json_format.ParseDict does the same
# generically but costs ~350 us per GenAI span here; this walks only what is present, caches the
# key -> field maps, and decodes hex ids directly (about 10x faster), which matters for replay.

_ID_FIELDS = frozenset(("trace_id", "span_id", "parent_span_id"))
_INT_TYPES = frozenset((
    FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64, FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
))
_FLOAT_TYPES = frozenset((FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT))
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_fields_cache: dict[Any, dict[str, tuple[Any, bool]]] = {}


def _fields_for(descriptor: Any) -> dict[str, tuple[Any, bool]]:
    fields = _fields_cache.get(descriptor)
    if fields is None:
        fields = {}
        for f in descriptor.fields:
            # protobuf >= 6 has is_repeated (and drops label from upb descriptors); older has label
            repeated = f.is_repeated if hasattr(f, "is_repeated") else f.label == FieldDescriptor.LABEL_REPEATED
            fields[f.name] = fields[f.json_name] = (f, repeated)
        _fields_cache[descriptor] = fields
    return fields


def _fill(msg: Any, d: dict[str, Any]) -> None:
    fields = _fields_for(msg.DESCRIPTOR)
    for key, val in d.items():
        entry = fields.get(key)
        if entry is None or val is None:
            continue  # unknown fields are ignored; null means "default"
        f, repeated = entry
        if f.message_type is not None:
            if repeated:
                if not isinstance(val, list):
                    raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an array")
                container = getattr(msg, f.name)
                for item in val:
                    if not isinstance(item, dict):
                        raise DecodeError(f"invalid OTLP/JSON: {f.full_name} items must be objects")
                    _fill(container.add(), item)
            else:
                if not isinstance(val, dict):
                    raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an object")
                sub = getattr(msg, f.name)
                sub.SetInParent()
                _fill(sub, val)
        elif repeated:
            if not isinstance(val, list):
                raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an array")
            getattr(msg, f.name).extend(_scalar(f, v) for v in val)
        else:
            value = _scalar(f, val)
            if value is not _SKIP:
                setattr(msg, f.name, value)


_SKIP = object()


def _scalar(f: Any, val: Any) -> Any:
    t = f.type
    if t in _INT_TYPES:
        if isinstance(val, bool):
            raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an integer, got {val!r}")
        if isinstance(val, int):
            return val
        if isinstance(val, str):
            try:
                return int(val)
            except ValueError:
                raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an integer, got {val[:64]!r}") from None
        if isinstance(val, float) and val.is_integer():
            return int(val)
        raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an integer, got {str(val)[:64]!r}")
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(val, str):
            raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be a string")
        return val
    if t in _FLOAT_TYPES:
        if isinstance(val, bool):
            raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be a number, got {val!r}")
        if isinstance(val, (int, float)):
            return float(val)
        if isinstance(val, str):
            special = _SPECIAL_FLOATS.get(val)
            if special is not None:
                return special
            try:
                return float(val)
            except ValueError:
                raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be a number, got {val[:64]!r}") from None
        raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be a number")
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(val, bool):
            raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be true or false")
        return val
    if t == FieldDescriptor.TYPE_ENUM:
        if isinstance(val, bool):
            raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an enum number or name")
        if isinstance(val, int):
            return val  # proto3 enums are open: unknown numbers are kept
        if isinstance(val, str):
            ev = f.enum_type.values_by_name.get(val)
            return ev.number if ev is not None else _SKIP  # unknown names are ignored, like unknown fields
        raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be an enum number or name")
    if t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(val, str):
            raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be a string")
        if f.name in _ID_FIELDS:
            return _decode_id(val, f)
        try:
            return base64.b64decode(val, validate=True)
        except (binascii.Error, ValueError):
            try:  # URL-safe alphabet / missing padding, both allowed by the proto3 JSON mapping
                return base64.urlsafe_b64decode(val + "=" * (-len(val) % 4))
            except (binascii.Error, ValueError):
                raise DecodeError(f"invalid OTLP/JSON: {f.full_name} must be base64") from None
    raise DecodeError(f"invalid OTLP/JSON: unsupported field type for {f.full_name}")


def _decode_id(value: str, f: Any) -> bytes:
    """OTLP/JSON ids are hex; protobuf canonical JSON (base64) is accepted too."""
    if not value:
        return b""
    if len(value) % 2 == 0:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        where = "span.link" if f.containing_type.name == "Link" else "span"
        raise DecodeError(f"invalid {where}.{f.json_name} {value[:64]!r}: expected a hex string") from None


# --------------------------------------------------------------------------- JSON lines


def message_to_otlp_json(message: _pb_message.Message) -> dict[str, Any]:
    """OTLP/JSON mapping of an OTLP message: camelCase keys, integer enums, hex trace/span ids."""
    obj = json_format.MessageToDict(message, use_integers_for_enums=True)
    _base64_ids_to_hex(obj)
    return obj


def metrics_request_to_json_line(request: ExportMetricsServiceRequest) -> str:
    """One ExportMetricsServiceRequest as a single OTLP/JSON line (no trailing newline)."""
    return json.dumps(message_to_otlp_json(request), separators=(",", ":"))


def logs_request_to_json_line(request: ExportLogsServiceRequest) -> str:
    """One ExportLogsServiceRequest as a single OTLP/JSON line (no trailing newline)."""
    return json.dumps(message_to_otlp_json(request), separators=(",", ":"))


def _base64_ids_to_hex(node: Any) -> None:
    # Generic walk: only OTLP id fields use these key names (attribute keys are values, not keys).
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for key, val in cur.items():
                if key in _ID_KEYS_OUT and isinstance(val, str):
                    cur[key] = base64.b64decode(val).hex()
                elif isinstance(val, (dict, list)):
                    stack.append(val)
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, (dict, list)))
