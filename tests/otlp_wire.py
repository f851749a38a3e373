"""OTLP test-input builders shared by the suites: Python values to ``AnyValue`` / ``KeyValue``,
and the protobuf wire pieces for hand-encoding what the protobuf runtime refuses to build."""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def length_delimited(field_no: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(field_no << 3 | 2) + varint(len(payload)) + payload


def key_value(key: str, value: object) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def any_value(value: object) -> AnyValue:
    """bool/int/float/bytes/str, lists (arrays) and dicts (kvlists) of them; an ``AnyValue`` as is
    (``AnyValue()`` is an unset value)."""
    if isinstance(value, AnyValue):
        return value
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[key_value(k, v) for k, v in value.items()]))
    return AnyValue(string_value=str(value))
